// src/core/candidate_sampler.cc: log-uniform, uniform and unigram candidate samplers with
// TensorFlow's probabilities, draws and expected counts, on Philox counters.
#include "src/core/candidate_sampler.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "softmax/error.hpp"
#include "src/core/large_vocab_util.hpp"
#include "src/core/philox.hpp"

namespace softmax {
namespace {

struct Sampler {
  CandidateSampler kind = CandidateSampler::kLogUniform;
  int64_t v = 0;
  double log_range = 0;     // log1p(V), log-uniform
  std::vector<double> cdf;  // unigram: running sums of unigrams^distortion
  int64_t reachable = 0;    // classes of nonzero probability
  int64_t last_nonzero = 0;

  double prob(int64_t k) const {
    switch (kind) {
      case CandidateSampler::kLogUniform:
        return std::log((static_cast<double>(k) + 2.0) / (static_cast<double>(k) + 1.0)) /
               log_range;
      case CandidateSampler::kUniform: return 1.0 / static_cast<double>(v);
      case CandidateSampler::kUnigram: {
        const auto u = static_cast<std::size_t>(k);
        return (cdf[u] - (k == 0 ? 0.0 : cdf[u - 1])) / cdf.back();
      }
    }
    return 0;
  }
  // One class from a uniform u in (0, 1).
  int64_t draw(double u) const {
    switch (kind) {
      case CandidateSampler::kLogUniform:
        return (static_cast<int64_t>(std::exp(u * log_range)) - 1) % v;
      case CandidateSampler::kUniform:
        return std::min(static_cast<int64_t>(u * static_cast<double>(v)), v - 1);
      case CandidateSampler::kUnigram: {
        const auto it = std::upper_bound(cdf.begin(), cdf.end(), u * cdf.back());
        return it == cdf.end() ? last_nonzero : static_cast<int64_t>(it - cdf.begin());
      }
    }
    return 0;
  }
};

Sampler make_sampler(const char* op, const SampledSoftmaxOptions& o) {
  if (o.num_classes < 1) {
    throw Error(ErrorKind::kInvalidArgument, op, "num_classes", std::to_string(o.num_classes),
                "must be >= 1");
  }
  Sampler s;
  s.kind = o.sampler;
  s.v = o.num_classes;
  s.reachable = o.num_classes;
  s.log_range = std::log1p(static_cast<double>(o.num_classes));
  if (o.sampler != CandidateSampler::kUnigram) return s;
  if (static_cast<int64_t>(o.unigrams.size()) != o.num_classes) {
    throw Error(ErrorKind::kShapeMismatch, op, "unigrams",
                "length " + std::to_string(o.unigrams.size()),
                "must have num_classes = " + std::to_string(o.num_classes) + " entries");
  }
  detail::check_finite(op, "distortion", o.distortion);
  s.cdf.resize(o.unigrams.size());
  double run = 0;
  s.reachable = 0;
  for (std::size_t k = 0; k < o.unigrams.size(); ++k) {
    const double u = o.unigrams[k];
    if (!(u >= 0) || !std::isfinite(u)) {
      throw Error(ErrorKind::kInvalidArgument, op, "unigrams[" + std::to_string(k) + "]",
                  std::to_string(u), "must be finite and >= 0");
    }
    const double w = u == 0 ? 0.0 : std::pow(u, o.distortion);
    if (w > 0) {
      ++s.reachable;
      s.last_nonzero = static_cast<int64_t>(k);
    }
    run += w;
    s.cdf[k] = run;
  }
  if (!(run > 0) || !std::isfinite(run)) {
    throw Error(ErrorKind::kInvalidArgument, op, "unigrams", "sum " + std::to_string(run),
                "unigrams^distortion must have a finite sum > 0");
  }
  return s;
}

// TensorFlow's ExpectedCountHelper.
double expected_count(double p, int64_t num_sampled, int64_t num_tries) {
  if (num_tries == num_sampled) return p * static_cast<double>(num_sampled);
  return -std::expm1(static_cast<double>(num_tries) * std::log1p(-p));
}

}  // namespace

namespace detail {

void check_sampled_counts(const char* op, const SampledSoftmaxOptions& o) {
  if (o.num_classes < 1) {
    throw Error(ErrorKind::kInvalidArgument, op, "num_classes", std::to_string(o.num_classes),
                "must be >= 1");
  }
  if (o.num_sampled < 1 || o.num_sampled >= int64_t{0xFFFFFFFF}) {
    throw Error(ErrorKind::kInvalidArgument, op, "num_sampled", std::to_string(o.num_sampled),
                "must be in [1, 2^32 - 1) (one Philox draw index per sample)");
  }
  if (o.num_true < 1) {
    throw Error(ErrorKind::kInvalidArgument, op, "num_true", std::to_string(o.num_true),
                "must be >= 1");
  }
}

CandidateSample draw_candidates(const char* op, const std::vector<int64_t>& true_ids,
                                const SampledSoftmaxOptions& o) {
  check_sampled_counts(op, o);
  const Sampler s = make_sampler(op, o);
  if (o.unique && o.num_sampled > s.reachable) {
    throw Error(ErrorKind::kInvalidArgument, op, "num_sampled", std::to_string(o.num_sampled),
                "must be <= " + std::to_string(s.reachable) +
                    (o.sampler == CandidateSampler::kUnigram
                         ? " (the classes of nonzero unigram probability) with unique=True"
                         : " (num_classes) with unique=True"));
  }
  CandidateSample out;
  const auto ns = static_cast<std::size_t>(o.num_sampled);
  out.sampled.resize(ns);
  if (!o.unique) {
    for (std::size_t i = 0; i < ns; ++i) {
      out.sampled[i] = s.draw(philox_open01(o.seed, o.offset, 0, static_cast<uint32_t>(i)));
    }
    out.num_tries = o.num_sampled;
  } else {
    const int64_t max_tries =
        std::min<int64_t>(64 * o.num_sampled + (int64_t{1} << 20), int64_t{0xFFFFFFFF});
    std::vector<unsigned char> seen(static_cast<std::size_t>(o.num_classes), 0);
    int64_t tries = 0;
    for (std::size_t i = 0; i < ns; ++i) {
      int64_t k;
      do {
        if (tries == max_tries) {
          throw Error(ErrorKind::kInvalidArgument, op, "num_sampled", std::to_string(o.num_sampled),
                      "unique sampling did not find that many distinct classes in " +
                          std::to_string(max_tries) + " draws; use fewer samples or unique=False");
        }
        k = s.draw(philox_open01(o.seed, o.offset, 0, static_cast<uint32_t>(tries++)));
      } while (seen[static_cast<std::size_t>(k)]);
      seen[static_cast<std::size_t>(k)] = 1;
      out.sampled[i] = k;
    }
    out.num_tries = tries;
  }
  out.sampled_expected_count.resize(ns);
  for (std::size_t i = 0; i < ns; ++i) {
    out.sampled_expected_count[i] =
        static_cast<float>(expected_count(s.prob(out.sampled[i]), o.num_sampled, out.num_tries));
  }
  out.true_expected_count.resize(true_ids.size());
  for (std::size_t i = 0; i < true_ids.size(); ++i) {
    out.true_expected_count[i] =
        static_cast<float>(expected_count(s.prob(true_ids[i]), o.num_sampled, out.num_tries));
  }
  return out;
}

}  // namespace detail

double candidate_probability(int64_t k, const SampledSoftmaxOptions& o) {
  const char* op = "candidate_probability";
  const Sampler s = make_sampler(op, o);
  if (k < 0 || k >= o.num_classes) {
    throw Error(ErrorKind::kInvalidArgument, op, "k", std::to_string(k),
                "must be a class id in [0, " + std::to_string(o.num_classes) + ")");
  }
  return s.prob(k);
}

CandidateSample sample_candidates(ConstTensorView true_classes, const SampledSoftmaxOptions& o) {
  const char* op = "sample_candidates";
  detail::check_sampled_counts(op, o);
  detail::check_view(op, "true_classes", true_classes);
  if (true_classes.rank() != 2) {
    throw Error(ErrorKind::kShapeMismatch, op, "true_classes",
                "shape " + detail::shape_str(true_classes.shape), "must be (N, num_true)");
  }
  const int64_t n = true_classes.shape[0];
  const std::vector<int64_t> ids =
      detail::read_class_ids(op, "true_classes", true_classes, {n, o.num_true}, o.num_classes);
  return detail::draw_candidates(op, ids, o);
}

}  // namespace softmax
