// tests/capi/capi_large_vocab_test.cc: the C functions of the row statistics
// (softmax/row_stats.hpp) and the large-vocabulary losses (sampled, hierarchical and adaptive
// softmax) against the C++ functions they wrap, bit for bit, with an independent value check
// per family, one error path each (status, the C++ message, the outputs untouched) and the
// struct_size rules of the new options structs.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "tests/capi/capi_test_util.hpp"

namespace {

using namespace capi_test;  // NOLINT(google-build-using-namespace)

TEST(CapiRowStatsTest, SlicesMergedAndFinishedMatchCppAndTheWholeRow) {
  const int64_t rows = 3, n = 50, cut = 20;
  Buf<float> x(Random(rows * n, 3.0f, 21), {rows, n});
  std::vector<float> left(rows * cut), right(rows * (n - cut));
  for (int64_t r = 0; r < rows; ++r) {
    std::copy_n(x.v.begin() + r * n, cut, left.begin() + r * cut);
    std::copy_n(x.v.begin() + r * n + cut, n - cut, right.begin() + r * (n - cut));
  }
  Buf<float> xl(left, {rows, cut}), xr(right, {rows, n - cut});
  int64_t shape[3] = {-1, -1, -1};
  ASSERT_EQ(softmax_softmax_stats_shape(xl.shape.data(), 2, -1, shape), SOFTMAX_STATUS_OK);
  EXPECT_EQ(Shape(shape, shape + 3), softmax::softmax_stats_shape(xl.shape, -1));
  EXPECT_EQ(Shape(shape, shape + 3), (Shape{rows, 1, SOFTMAX_STATS_FIELDS}));
  softmax_options_t o;
  softmax_options_init(&o);
  o.temperature = 0.8;
  softmax::SoftmaxOptions co;
  co.temperature = 0.8;
  const Shape ss{rows, 1, SOFTMAX_STATS_FIELDS}, ms{rows, 2, SOFTMAX_STATS_FIELDS};
  Buf<double> sl(ss), sr(ss), merged(ms), wsl(ss), wsr(ss), wmerged(ms);
  ASSERT_EQ(softmax_softmax_stats(nullptr, xl.c(), nullptr, sl.c(), &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  ASSERT_EQ(softmax_softmax_stats(nullptr, xr.c(), nullptr, sr.c(), &o), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_merge_stats(nullptr, sl.c(), sr.c(), merged.c()), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::softmax_stats(xl.ccpp(), wsl.cpp(), co);
  softmax::softmax_stats(xr.ccpp(), wsr.cpp(), co);
  softmax::merge_stats(wsl.ccpp(), wsr.ccpp(), wmerged.cpp());
  EXPECT_TRUE(SameBits(merged.v, wmerged.v));
  EXPECT_EQ(merged.v[SOFTMAX_STAT_COUNT], cut);
  EXPECT_EQ(merged.v[SOFTMAX_STATS_FIELDS + SOFTMAX_STAT_TEMPERATURE], 0.8);
  // Refined statistics (the second pass) and the finishing ops, C == C++.
  Buf<double> rl(ss), wrl(ss);
  ASSERT_EQ(softmax_softmax_stats(nullptr, xl.c(), merged.c(), rl.c(), &o), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::softmax_stats(xl.ccpp(), wmerged.ccpp(), wrl.cpp(), co);
  EXPECT_TRUE(SameBits(rl.v, wrl.v));
  Buf<float> yl({rows, cut}), wyl({rows, cut}), ll({rows, cut}), wll({rows, cut});
  Buf<float> lse({rows}), wlse({rows});
  ASSERT_EQ(softmax_softmax_from_stats(nullptr, xl.c(), merged.c(), yl.c(), nullptr),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  ASSERT_EQ(softmax_log_softmax_from_stats(nullptr, xl.c(), merged.c(), ll.c(), nullptr),
            SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_logsumexp_from_stats(nullptr, merged.c(), lse.c(), nullptr), SOFTMAX_STATUS_OK);
  softmax::softmax_from_stats(xl.ccpp(), wmerged.ccpp(), wyl.cpp());
  softmax::log_softmax_from_stats(xl.ccpp(), wmerged.ccpp(), wll.cpp());
  softmax::logsumexp_from_stats(wmerged.ccpp(), wlse.cpp());
  EXPECT_TRUE(SameBits(yl.v, wyl.v));
  EXPECT_TRUE(SameBits(ll.v, wll.v));
  EXPECT_TRUE(SameBits(lse.v, wlse.v));
  // Against the whole row: the slice's softmax within softmax's bound, logsumexp too.
  Buf<float> whole({rows, n}), wlse1({rows});
  ASSERT_EQ(softmax_softmax(nullptr, x.c(), whole.c(), &o), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_logsumexp(nullptr, x.c(), wlse1.c(), &o), SOFTMAX_STATUS_OK);
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_NEAR(lse.v[r], wlse1.v[r], 1e-5 * (1 + std::fabs(wlse1.v[r])));
    for (int64_t i = 0; i < cut; ++i) {
      EXPECT_NEAR(yl.v[r * cut + i], whole.v[r * n + i], 1e-6);
    }
  }
  // One slice holding the whole row reproduces logsumexp bit for bit (an aligned slice).
  const Shape ws{rows, 1, SOFTMAX_STATS_FIELDS};
  Buf<double> sw(ws);
  ASSERT_EQ(softmax_softmax_stats(nullptr, x.c(), nullptr, sw.c(), &o), SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_logsumexp_from_stats(nullptr, sw.c(), lse.c(), nullptr), SOFTMAX_STATUS_OK);
  EXPECT_TRUE(SameBits(lse.v, wlse1.v));
  // Error: merging statistics of different temperatures; nothing written.
  softmax_options_t o2 = o;
  o2.temperature = 1.0;
  ASSERT_EQ(softmax_softmax_stats(nullptr, xr.c(), nullptr, sr.c(), &o2), SOFTMAX_STATUS_OK);
  softmax::softmax_stats(xr.ccpp(), wsr.cpp(), {});
  merged.Fill(-2.0);
  EXPECT_EQ(softmax_merge_stats(nullptr, sl.c(), sr.c(), merged.c()),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(),
            CppError([&] { softmax::merge_stats(wsl.ccpp(), wsr.ccpp(), wmerged.cpp()); }));
  EXPECT_TRUE(merged.All(-2.0));
  EXPECT_EQ(softmax_softmax_stats_shape(xl.shape.data(), 2, 2, shape),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(), CppError([&] { softmax::softmax_stats_shape(xl.shape, 2); }));
}

// A small sampled-softmax problem.
struct Sampled {
  static constexpr int64_t kClasses = 40, kD = 6, kN = 5, kTrue = 2, kSampled = 8;
  Buf<float> w{Random(kClasses * kD, 0.5f, 31), {kClasses, kD}};
  Buf<float> bias{Random(kClasses, 0.5f, 32), {kClasses}};
  Buf<float> x{Random(kN * kD, 1.0f, 33), {kN, kD}};
  Buf<int64_t> labels{std::vector<int64_t>{1, 7, 3, 3, 0, 39, 12, 5, 20, 21}, {kN, kTrue}};
  softmax_sampled_softmax_options_t c{};
  softmax::SampledSoftmaxOptions cpp;
  Sampled() {
    softmax_sampled_softmax_options_init(&c);
    c.num_sampled = cpp.num_sampled = kSampled;
    c.num_classes = cpp.num_classes = kClasses;
    c.num_true = cpp.num_true = kTrue;
    c.unique = 1;
    cpp.unique = true;
    c.seed = cpp.seed = uint64_t{1} << 40;
    c.offset = cpp.offset = 3;
  }
};

TEST(CapiLargeVocabTest, SampledSoftmaxMatchesCpp) {
  Sampled s;
  const int64_t n = Sampled::kN, d = Sampled::kD, ns = Sampled::kSampled;
  const int64_t cap = Sampled::kClasses;
  Buf<float> loss({n}), te({n, Sampled::kTrue}), se({ns}), gx({n, d});
  Buf<int64_t> sampled({ns}), rows({cap}, -1);
  Buf<float> values({cap, d}, 0.25f), gb({cap}, 0.25f);
  int64_t tries = -1, count = -1;
  ASSERT_EQ(softmax_sampled_softmax_loss(nullptr, s.w.c(), s.bias.c(), s.labels.c(), s.x.c(), &s.c,
                                         loss.c(), sampled.c(), te.c(), se.c(), &tries, gx.c(),
                                         rows.c(), values.c(), gb.c(), &count),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  s.cpp.compute_grad = true;
  const softmax::SampledSoftmaxResult r =
      softmax::sampled_softmax_loss(s.w.ccpp(), s.bias.ccpp(), s.labels.ccpp(), s.x.ccpp(), s.cpp);
  EXPECT_TRUE(SameBits(loss.v, r.loss));
  EXPECT_EQ(sampled.v, r.samples.sampled);
  EXPECT_TRUE(SameBits(te.v, r.samples.true_expected_count));
  EXPECT_TRUE(SameBits(se.v, r.samples.sampled_expected_count));
  EXPECT_EQ(tries, r.samples.num_tries);
  EXPECT_TRUE(SameBits(gx.v, r.grad_inputs));
  ASSERT_EQ(count, static_cast<int64_t>(r.grad_weights.rows.size()));
  EXPECT_EQ(std::vector<int64_t>(rows.v.begin(), rows.v.begin() + count), r.grad_weights.rows);
  EXPECT_TRUE(SameBits(std::vector<float>(values.v.begin(), values.v.begin() + count * d),
                       r.grad_weights.values));
  EXPECT_TRUE(
      SameBits(std::vector<float>(gb.v.begin(), gb.v.begin() + count), r.grad_weights.bias));
  EXPECT_EQ(rows.v[count], -1);  // past count: untouched
  EXPECT_EQ(values.v[count * d], 0.25f);
  // Independent: unique samples are distinct, and each loss is a cross-entropy, so >= 0 when
  // remove_accidental_hits leaves the true logits among the columns (loss >= -log(1) with the
  // 1/n label split: loss_i >= lse - mean >= 0).
  std::vector<int64_t> sorted = sampled.v;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(std::adjacent_find(sorted.begin(), sorted.end()), sorted.end());
  for (float l : loss.v) EXPECT_GE(l, 0.0f);
  // Candidate sampling alone and P(k), C == C++.
  Buf<int64_t> cs({ns}, -1);
  Buf<float> cte({n, Sampled::kTrue});
  int64_t ctries = -1;
  ASSERT_EQ(
      softmax_sample_candidates(nullptr, s.labels.c(), &s.c, cs.c(), cte.c(), nullptr, &ctries),
      SOFTMAX_STATUS_OK)
      << softmax_last_error();
  const softmax::CandidateSample cr = softmax::sample_candidates(s.labels.ccpp(), s.cpp);
  EXPECT_EQ(cs.v, cr.sampled);
  EXPECT_TRUE(SameBits(cte.v, cr.true_expected_count));
  EXPECT_EQ(ctries, cr.num_tries);
  double p = -1;
  ASSERT_EQ(softmax_candidate_probability(3, &s.c, &p), SOFTMAX_STATUS_OK);
  EXPECT_EQ(p, softmax::candidate_probability(3, s.cpp));
  EXPECT_NEAR(p, std::log(5.0 / 4.0) / std::log(41.0), 1e-15);  // log-uniform P(3)
  // Error: a capacity below the touched rows; nothing written (count and buffers included).
  Buf<int64_t> small_rows({2}, -1);
  Buf<float> small_values({2, d}, 0.5f);
  loss.Fill(-1.0f);
  count = -7;
  EXPECT_EQ(softmax_sampled_softmax_loss(nullptr, s.w.c(), s.bias.c(), s.labels.c(), s.x.c(), &s.c,
                                         loss.c(), nullptr, nullptr, nullptr, nullptr, nullptr,
                                         small_rows.c(), small_values.c(), nullptr, &count),
            SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("argument 'grad_weight_rows' = (2,)"),
            std::string::npos)
      << softmax_last_error();
  EXPECT_TRUE(loss.All(-1.0f) && small_rows.All(-1) && small_values.All(0.5f));
  EXPECT_EQ(count, -7);
  // Error from the C++ op: a label outside [0, num_classes).
  s.labels.v[3] = Sampled::kClasses;
  EXPECT_EQ(softmax_sampled_softmax_loss(nullptr, s.w.c(), s.bias.c(), s.labels.c(), s.x.c(), &s.c,
                                         loss.c(), nullptr, nullptr, nullptr, nullptr, nullptr,
                                         nullptr, nullptr, nullptr, nullptr),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  s.cpp.compute_grad = false;
  EXPECT_EQ(softmax_last_error(), CppError([&] {
              softmax::sampled_softmax_loss(s.w.ccpp(), s.bias.ccpp(), s.labels.ccpp(), s.x.ccpp(),
                                            s.cpp);
            }));
  EXPECT_TRUE(loss.All(-1.0f));
}

TEST(CapiLargeVocabTest, SampledOptionsStructSize) {
  EXPECT_EQ(sizeof(softmax_sampled_softmax_options_t), 14 * 8u);
  EXPECT_EQ(sizeof(softmax_hierarchical_options_t), 3 * 8u);
  EXPECT_EQ(sizeof(softmax_adaptive_options_t), 2 * 8u);
  const softmax::SampledSoftmaxOptions d;
  softmax_sampled_softmax_options_t o;
  softmax_sampled_softmax_options_init(&o);
  EXPECT_EQ(o.num_true, d.num_true);
  EXPECT_EQ(o.sampler, static_cast<int64_t>(d.sampler));
  EXPECT_EQ(o.distortion, d.distortion);
  EXPECT_EQ(o.unique != 0, d.unique);
  EXPECT_EQ(o.remove_accidental_hits != 0, d.remove_accidental_hits);
  EXPECT_EQ(o.subtract_log_q != 0, d.subtract_log_q);
  EXPECT_EQ(o.seed, d.seed);
  EXPECT_EQ(o.offset, d.offset);
  // An older caller whose struct ends after num_true: the sampler and the rest take defaults.
  Sampled s;
  softmax_sampled_softmax_options_t old = s.c;
  old.struct_size = offsetof(softmax_sampled_softmax_options_t, sampler);
  old.sampler = 99;  // past struct_size: not read
  old.unique = 1;
  double p = -1;
  ASSERT_EQ(softmax_candidate_probability(5, &old, &p), SOFTMAX_STATUS_OK) << softmax_last_error();
  EXPECT_EQ(p, softmax::candidate_probability(5, s.cpp));
  // A larger struct with a nonzero tail is rejected.
  struct Newer {
    softmax_sampled_softmax_options_t known;
    double future;
  } newer{};
  newer.known = s.c;
  newer.known.struct_size = sizeof(Newer);
  newer.future = 1.0;
  p = -1;
  EXPECT_EQ(softmax_candidate_probability(5, &newer.known, &p), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.struct_size' = 120"),
            std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(p, -1);
  newer.future = 0.0;
  EXPECT_EQ(softmax_candidate_probability(5, &newer.known, &p), SOFTMAX_STATUS_OK);
  // A bad sampler value names the field.
  s.c.sampler = 3;
  EXPECT_EQ(softmax_candidate_probability(5, &s.c, &p), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.sampler' = 3"), std::string::npos);
}

TEST(CapiLargeVocabTest, HierarchicalSoftmaxMatchesCpp) {
  const int64_t v = 10, d = 5, n = 4;
  const std::vector<int64_t> counts{50, 3, 7, 7, 20, 1, 9, 30, 2, 11};
  softmax_hierarchical_tree_t* tree = nullptr;
  ASSERT_EQ(softmax_huffman_tree(counts.data(), v, &tree), SOFTMAX_STATUS_OK)
      << softmax_last_error();
  const softmax::HierarchicalTree ct = softmax::huffman_tree(counts);
  int64_t classes = 0, depth = 0;
  ASSERT_EQ(softmax_hierarchical_tree_info(tree, &classes, &depth), SOFTMAX_STATUS_OK);
  EXPECT_EQ(classes, v);
  EXPECT_EQ(depth, ct.max_depth());
  for (int64_t k = 0; k < v; ++k) {
    std::vector<int32_t> nodes(depth, -9);
    std::vector<uint8_t> codes(depth, 9);
    int64_t dk = -1;
    ASSERT_EQ(softmax_hierarchical_tree_path(tree, k, nodes.data(), codes.data(), depth, &dk),
              SOFTMAX_STATUS_OK);
    ASSERT_EQ(dk, ct.depth(k));
    EXPECT_TRUE(std::equal(ct.paths(k).begin(), ct.paths(k).end(), nodes.begin()));
    EXPECT_TRUE(std::equal(ct.codes(k).begin(), ct.codes(k).end(), codes.begin()));
  }
  Buf<float> h(Random(n * d, 1.0f, 41), {n, d});
  Buf<float> nw(Random((v - 1) * d, 0.5f, 42), {v - 1, d});
  Buf<float> nb(Random(v - 1, 0.5f, 43), {v - 1});
  Buf<int32_t> targets(std::vector<int32_t>{0, 5, 9, 5}, {n});
  softmax_hierarchical_options_t o;
  softmax_hierarchical_options_init(&o);
  o.reduction = SOFTMAX_REDUCTION_NONE;
  o.grad_scale = 0.5;
  Buf<float> loss({n}), gh({n, d}), values({v - 1, d}), gb({v - 1});
  Buf<int64_t> rows({v - 1});
  int64_t count = -1;
  ASSERT_EQ(
      softmax_hierarchical_softmax_loss(nullptr, h.c(), targets.c(), tree, nw.c(), nb.c(), &o,
                                        loss.c(), gh.c(), rows.c(), values.c(), gb.c(), &count),
      SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::HierarchicalOptions co;
  co.reduction = softmax::Reduction::kNone;
  co.grad_scale = 0.5;
  co.compute_grad = true;
  const softmax::HierarchicalLossResult r =
      softmax::hierarchical_softmax_loss(h.ccpp(), targets.ccpp(), ct, nw.ccpp(), nb.ccpp(), co);
  EXPECT_TRUE(SameBits(loss.v, r.loss));
  EXPECT_TRUE(SameBits(gh.v, r.grad_hidden));
  ASSERT_EQ(count, static_cast<int64_t>(r.grad_nodes.rows.size()));
  EXPECT_EQ(std::vector<int64_t>(rows.v.begin(), rows.v.begin() + count), r.grad_nodes.rows);
  EXPECT_TRUE(SameBits(std::vector<float>(values.v.begin(), values.v.begin() + count * d),
                       r.grad_nodes.values));
  EXPECT_TRUE(SameBits(std::vector<float>(gb.v.begin(), gb.v.begin() + count), r.grad_nodes.bias));
  // log_prob: C == C++, rows sum to 1, and the loss is -log_prob at the target.
  Buf<float> lp({n, v}, 7.0f);
  ASSERT_EQ(softmax_hierarchical_log_prob(nullptr, h.c(), tree, nw.c(), nb.c(), lp.c()),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  EXPECT_TRUE(SameBits(lp.v, softmax::hierarchical_log_prob(h.ccpp(), ct, nw.ccpp(), nb.ccpp())));
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t k = 0; k < v; ++k) sum += std::exp(static_cast<double>(lp.v[i * v + k]));
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_NEAR(loss.v[i], -lp.v[i * v + targets.v[i]], 1e-5);
  }
  // predict (top 3), and the mean loss as a scalar (rank 0) without gradients.
  const int64_t k = 3;
  Buf<float> plp({n, k});
  Buf<int64_t> pcl({n, k});
  ASSERT_EQ(softmax_hierarchical_predict(nullptr, h.c(), tree, nw.c(), nb.c(), k, plp.c(), pcl.c()),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  const softmax::TopKClasses pr =
      softmax::hierarchical_predict(h.ccpp(), ct, nw.ccpp(), nb.ccpp(), k);
  EXPECT_EQ(pcl.v, pr.classes);
  EXPECT_TRUE(SameBits(plp.v, pr.log_probs));
  for (int64_t i = 0; i < n; ++i) {  // the best class is the argmax of log_prob
    const auto best = std::max_element(lp.v.begin() + i * v, lp.v.begin() + (i + 1) * v);
    EXPECT_EQ(pcl.v[i * k], best - (lp.v.begin() + i * v));
  }
  Buf<float> mean({});
  ASSERT_EQ(
      softmax_hierarchical_softmax_loss(nullptr, h.c(), targets.c(), tree, nw.c(), nullptr, nullptr,
                                        mean.c(), nullptr, nullptr, nullptr, nullptr, nullptr),
      SOFTMAX_STATUS_OK)
      << softmax_last_error();
  EXPECT_TRUE(SameBits(mean.v, softmax::hierarchical_softmax_loss(h.ccpp(), targets.ccpp(), ct,
                                                                  nw.ccpp(), std::nullopt)
                                   .loss));
  // Errors: a target outside [0, V) (the C++ message), a path buffer too small (nothing written).
  targets.v[2] = static_cast<int32_t>(v);
  loss.Fill(3.0f);
  EXPECT_EQ(
      softmax_hierarchical_softmax_loss(nullptr, h.c(), targets.c(), tree, nw.c(), nb.c(), &o,
                                        loss.c(), nullptr, nullptr, nullptr, nullptr, nullptr),
      SOFTMAX_STATUS_INVALID_ARGUMENT);
  co.compute_grad = false;
  EXPECT_EQ(softmax_last_error(), CppError([&] {
              softmax::hierarchical_softmax_loss(h.ccpp(), targets.ccpp(), ct, nw.ccpp(), nb.ccpp(),
                                                 co);
            }));
  EXPECT_TRUE(loss.All(3.0f));
  std::vector<int32_t> nodes(1, -9);
  int64_t dk = -1;
  EXPECT_EQ(softmax_hierarchical_tree_path(tree, 5, nodes.data(), nullptr, 1, &dk),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(nodes[0], -9);
  // A class id outside [0, V): the message names this function.
  EXPECT_EQ(softmax_hierarchical_tree_path(tree, -1, nodes.data(), nullptr, 1, &dk),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("hierarchical_tree_path: argument 'k' = -1"),
            std::string::npos)
      << softmax_last_error();
  EXPECT_EQ(dk, -1);
  softmax_hierarchical_tree_destroy(tree);
  // Trees from children and balanced trees: the same as C++.
  ASSERT_EQ(softmax_balanced_tree(v, &tree), SOFTMAX_STATUS_OK);
  const softmax::HierarchicalTree bt = softmax::balanced_tree(v);
  std::vector<int32_t> children;
  for (int64_t j = 0; j < v - 1; ++j) {
    children.push_back(bt.child(j, 0));
    children.push_back(bt.child(j, 1));
  }
  softmax_hierarchical_tree_t* from_children = nullptr;
  ASSERT_EQ(softmax_hierarchical_tree_create(children.data(), 2 * (v - 1), &from_children),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  Buf<float> lp1({n, v}), lp2({n, v});
  ASSERT_EQ(softmax_hierarchical_log_prob(nullptr, h.c(), tree, nw.c(), nb.c(), lp1.c()),
            SOFTMAX_STATUS_OK);
  ASSERT_EQ(softmax_hierarchical_log_prob(nullptr, h.c(), from_children, nw.c(), nb.c(), lp2.c()),
            SOFTMAX_STATUS_OK);
  EXPECT_TRUE(SameBits(lp1.v, lp2.v));
  EXPECT_TRUE(SameBits(lp1.v, softmax::hierarchical_log_prob(h.ccpp(), bt, nw.ccpp(), nb.ccpp())));
  softmax_hierarchical_tree_destroy(tree);
  softmax_hierarchical_tree_destroy(from_children);
  children[0] = 5;  // a child id not below its parent: not a tree
  softmax_hierarchical_tree_t* bad = nullptr;
  EXPECT_EQ(softmax_hierarchical_tree_create(children.data(), 2 * (v - 1), &bad),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(), CppError([&] { softmax::HierarchicalTree t(children); }));
  EXPECT_EQ(bad, nullptr);
  EXPECT_EQ(softmax_balanced_tree(1, &bad), SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_EQ(softmax_last_error(), CppError([&] { softmax::balanced_tree(1); }));
}

TEST(CapiLargeVocabTest, AdaptiveSoftmaxMatchesCpp) {
  const int64_t n = 6, d = 5, c0 = 4, c1 = 8, classes = 12, h0 = 3, h1 = 2;
  const std::vector<int64_t> cutoffs{c0, c1};
  Buf<float> x(Random(n * d, 1.0f, 51), {n, d});
  Buf<float> hw(Random((c0 + 2) * d, 0.5f, 52), {c0 + 2, d});
  Buf<float> hb(Random(c0 + 2, 0.5f, 53), {c0 + 2});
  Buf<float> p0(Random(h0 * d, 0.5f, 54), {h0, d}),
      o0(Random((c1 - c0) * h0, 0.5f, 55), {c1 - c0, h0});
  Buf<float> p1(Random(h1 * d, 0.5f, 56), {h1, d}),
      o1(Random((classes - c1) * h1, 0.5f, 57), {classes - c1, h1});
  Buf<int64_t> target(std::vector<int64_t>{0, 5, 11, 3, 8, 6}, Shape{n});
  const softmax_tensor_t projections[2] = {p0.t, p1.t}, outputs[2] = {o0.t, o1.t};
  const std::vector<softmax::AdaptiveTail> tails{{p0.ccpp(), o0.ccpp()}, {p1.ccpp(), o1.ccpp()}};
  softmax_adaptive_options_t o;
  softmax_adaptive_options_init(&o);
  o.grad_scale = 2.0;
  Buf<float> out({n}), gx({n, d}), ghw({c0 + 2, d}), ghb({c0 + 2});
  Buf<float> gp0({h0, d}), go0({c1 - c0, h0}), gp1({h1, d}), go1({classes - c1, h1});
  const softmax_tensor_t gproj[2] = {gp0.t, gp1.t}, gout[2] = {go0.t, go1.t};
  double loss = 0;
  ASSERT_EQ(softmax_adaptive_log_softmax_with_loss(
                nullptr, x.c(), target.c(), hw.c(), hb.c(), projections, outputs, 2, cutoffs.data(),
                2, &o, out.c(), &loss, gx.c(), ghw.c(), ghb.c(), gproj, gout),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::AdaptiveSoftmaxOptions co;
  co.grad_scale = 2.0;
  co.compute_grad = true;
  const softmax::AdaptiveSoftmaxResult r = softmax::adaptive_log_softmax_with_loss(
      x.ccpp(), target.ccpp(), hw.ccpp(), tails, cutoffs, hb.ccpp(), co);
  EXPECT_TRUE(SameBits(out.v, r.output));
  EXPECT_EQ(loss, r.loss);
  EXPECT_TRUE(SameBits(gx.v, r.grad_input));
  EXPECT_TRUE(SameBits(ghw.v, r.grad_head_weight));
  EXPECT_TRUE(SameBits(ghb.v, r.grad_head_bias));
  EXPECT_TRUE(SameBits(gp0.v, r.grad_tail_projection[0]));
  EXPECT_TRUE(SameBits(go0.v, r.grad_tail_output[0]));
  EXPECT_TRUE(SameBits(gp1.v, r.grad_tail_projection[1]));
  EXPECT_TRUE(SameBits(go1.v, r.grad_tail_output[1]));
  // log_prob: C == C++; each row sums to 1, the output is log_prob at the target and the loss
  // its negated mean; predict is the argmax.
  Buf<float> lp({n, classes});
  ASSERT_EQ(softmax_adaptive_log_prob(nullptr, x.c(), hw.c(), hb.c(), projections, outputs, 2,
                                      cutoffs.data(), 2, lp.c()),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  EXPECT_TRUE(
      SameBits(lp.v, softmax::adaptive_log_prob(x.ccpp(), hw.ccpp(), tails, cutoffs, hb.ccpp())));
  Buf<int64_t> pred({n}, -1);
  ASSERT_EQ(softmax_adaptive_predict(nullptr, x.c(), hw.c(), hb.c(), projections, outputs, 2,
                                     cutoffs.data(), 2, pred.c()),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  EXPECT_EQ(pred.v, softmax::adaptive_predict(x.ccpp(), hw.ccpp(), tails, cutoffs, hb.ccpp()));
  double mean = 0;
  for (int64_t i = 0; i < n; ++i) {
    double sum = 0;
    for (int64_t k = 0; k < classes; ++k)
      sum += std::exp(static_cast<double>(lp.v[i * classes + k]));
    EXPECT_NEAR(sum, 1.0, 1e-5);
    EXPECT_NEAR(out.v[i], lp.v[i * classes + target.v[i]], 1e-5);
    mean -= out.v[i] / static_cast<double>(n);
    const auto best =
        std::max_element(lp.v.begin() + i * classes, lp.v.begin() + (i + 1) * classes);
    EXPECT_EQ(pred.v[i], best - (lp.v.begin() + i * classes));
  }
  EXPECT_NEAR(loss, mean, 1e-6);
  // Errors: a target outside [0, n_classes) (the C++ message; nothing written), and a gradient
  // of a missing head bias.
  target.v[1] = classes;
  out.Fill(4.0f);
  gx.Fill(4.0f);
  loss = 4.0;
  EXPECT_EQ(softmax_adaptive_log_softmax_with_loss(
                nullptr, x.c(), target.c(), hw.c(), hb.c(), projections, outputs, 2, cutoffs.data(),
                2, nullptr, out.c(), &loss, gx.c(), nullptr, nullptr, nullptr, nullptr),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  co.compute_grad = true;
  EXPECT_EQ(softmax_last_error(), CppError([&] {
              softmax::adaptive_log_softmax_with_loss(x.ccpp(), target.ccpp(), hw.ccpp(), tails,
                                                      cutoffs, hb.ccpp(), co);
            }));
  EXPECT_TRUE(out.All(4.0f) && gx.All(4.0f));
  EXPECT_EQ(loss, 4.0);
  target.v[1] = 5;
  EXPECT_EQ(softmax_adaptive_log_softmax_with_loss(nullptr, x.c(), target.c(), hw.c(), nullptr,
                                                   projections, outputs, 2, cutoffs.data(), 2,
                                                   nullptr, out.c(), nullptr, nullptr, nullptr,
                                                   ghb.c(), nullptr, nullptr),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'grad_head_bias'"), std::string::npos);
  EXPECT_TRUE(out.All(4.0f));
  // The output shape is checked against the result: a (N, n_classes - 1) log_prob is refused.
  Buf<float> narrow({n, classes - 1}, 6.0f);
  EXPECT_EQ(softmax_adaptive_log_prob(nullptr, x.c(), hw.c(), hb.c(), projections, outputs, 2,
                                      cutoffs.data(), 2, narrow.c()),
            SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("'log_probs'"), std::string::npos);
  EXPECT_TRUE(narrow.All(6.0f));
  // num_tails and num_cutoffs must agree before the tail arrays are read: 5 tails claimed with
  // arrays of 2 is refused without reading past them (ASan checks that in the sanitizer job).
  EXPECT_EQ(softmax_adaptive_log_prob(nullptr, x.c(), hw.c(), hb.c(), projections, outputs, 5,
                                      cutoffs.data(), 2, lp.c()),
            SOFTMAX_STATUS_SHAPE_MISMATCH);
  EXPECT_NE(std::string(softmax_last_error()).find("'num_tails' = 5"), std::string::npos)
      << softmax_last_error();
  // A count whose arrays would exceed the address space (num_cutoffs agreeing) is no length.
  const int64_t huge = PTRDIFF_MAX / static_cast<int64_t>(sizeof(softmax_tensor_t)) + 1;
  EXPECT_EQ(softmax_adaptive_log_prob(nullptr, x.c(), hw.c(), hb.c(), projections, outputs, huge,
                                      cutoffs.data(), huge, lp.c()),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'num_tails'"), std::string::npos)
      << softmax_last_error();
}

}  // namespace

namespace {

using namespace capi_test;  // NOLINT(google-build-using-namespace)

// struct_size of the hierarchical and adaptive options: an older (smaller) struct gives the tail
// its defaults (grad_scale 1 here), a newer one with nonzero bytes past this library's is refused.
TEST(CapiLargeVocabTest, HierarchicalAndAdaptiveOptionsStructSize) {
  const int64_t v = 6, d = 3, n = 3;
  softmax_hierarchical_tree_t* tree = nullptr;
  ASSERT_EQ(softmax_balanced_tree(v, &tree), SOFTMAX_STATUS_OK);
  const softmax::HierarchicalTree ct = softmax::balanced_tree(v);
  Buf<float> h(Random(n * d, 1.0f, 61), {n, d});
  Buf<float> nw(Random((v - 1) * d, 0.5f, 62), {v - 1, d});
  Buf<int64_t> targets(std::vector<int64_t>{0, 4, 5}, Shape{n});
  softmax_hierarchical_options_t o;
  softmax_hierarchical_options_init(&o);
  o.struct_size = offsetof(softmax_hierarchical_options_t, grad_scale);
  o.reduction = SOFTMAX_REDUCTION_SUM;
  o.grad_scale = 0.25;  // past struct_size: the default 1 applies
  Buf<float> loss({}), gh({n, d}), wgh({n, d});
  ASSERT_EQ(
      softmax_hierarchical_softmax_loss(nullptr, h.c(), targets.c(), tree, nw.c(), nullptr, &o,
                                        loss.c(), gh.c(), nullptr, nullptr, nullptr, nullptr),
      SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::HierarchicalOptions co;
  co.reduction = softmax::Reduction::kSum;
  co.compute_grad = true;
  const softmax::HierarchicalLossResult r =
      softmax::hierarchical_softmax_loss(h.ccpp(), targets.ccpp(), ct, nw.ccpp(), std::nullopt, co);
  EXPECT_TRUE(SameBits(loss.v, r.loss));
  EXPECT_TRUE(SameBits(gh.v, r.grad_hidden));
  struct NewerH {
    softmax_hierarchical_options_t known;
    int64_t future;
  } nh{};
  softmax_hierarchical_options_init(&nh.known);
  nh.known.struct_size = sizeof(NewerH);
  nh.future = 2;
  loss.Fill(8.0f);
  EXPECT_EQ(softmax_hierarchical_softmax_loss(nullptr, h.c(), targets.c(), tree, nw.c(), nullptr,
                                              &nh.known, loss.c(), nullptr, nullptr, nullptr,
                                              nullptr, nullptr),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.struct_size' = 32"), std::string::npos)
      << softmax_last_error();
  EXPECT_TRUE(loss.All(8.0f));
  o.struct_size = sizeof(o);
  o.reduction = 3;
  EXPECT_EQ(
      softmax_hierarchical_softmax_loss(nullptr, h.c(), targets.c(), tree, nw.c(), nullptr, &o,
                                        loss.c(), nullptr, nullptr, nullptr, nullptr, nullptr),
      SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.reduction' = 3"), std::string::npos);
  EXPECT_TRUE(loss.All(8.0f));
  softmax_hierarchical_tree_destroy(tree);

  // Adaptive: struct_size 8 (struct_size only) keeps grad_scale at 1.
  const int64_t c0 = 2, classes = 4, h0 = 2;
  const std::vector<int64_t> cutoffs{c0};
  Buf<float> x(Random(n * d, 1.0f, 63), {n, d});
  Buf<float> hw(Random((c0 + 1) * d, 0.5f, 64), {c0 + 1, d});
  Buf<float> p0(Random(h0 * d, 0.5f, 65), {h0, d});
  Buf<float> o0(Random((classes - c0) * h0, 0.5f, 66), {classes - c0, h0});
  Buf<int64_t> target(std::vector<int64_t>{0, 3, 2}, Shape{n});
  const std::vector<softmax::AdaptiveTail> tails{{p0.ccpp(), o0.ccpp()}};
  softmax_adaptive_options_t ao;
  softmax_adaptive_options_init(&ao);
  ao.struct_size = 8;
  ao.grad_scale = 3.0;
  Buf<float> gx({n, d});
  ASSERT_EQ(softmax_adaptive_log_softmax_with_loss(
                nullptr, x.c(), target.c(), hw.c(), nullptr, &p0.t, &o0.t, 1, cutoffs.data(), 1,
                &ao, nullptr, nullptr, gx.c(), nullptr, nullptr, nullptr, nullptr),
            SOFTMAX_STATUS_OK)
      << softmax_last_error();
  softmax::AdaptiveSoftmaxOptions aco;
  aco.compute_grad = true;
  EXPECT_TRUE(
      SameBits(gx.v, softmax::adaptive_log_softmax_with_loss(x.ccpp(), target.ccpp(), hw.ccpp(),
                                                             tails, cutoffs, std::nullopt, aco)
                         .grad_input));
  struct NewerA {
    softmax_adaptive_options_t known;
    double future;
  } na{};
  softmax_adaptive_options_init(&na.known);
  na.known.struct_size = sizeof(NewerA);
  na.future = 0.5;
  gx.Fill(1.25f);
  EXPECT_EQ(softmax_adaptive_log_softmax_with_loss(
                nullptr, x.c(), target.c(), hw.c(), nullptr, &p0.t, &o0.t, 1, cutoffs.data(), 1,
                &na.known, nullptr, nullptr, gx.c(), nullptr, nullptr, nullptr, nullptr),
            SOFTMAX_STATUS_INVALID_ARGUMENT);
  EXPECT_NE(std::string(softmax_last_error()).find("'options.struct_size' = 24"), std::string::npos)
      << softmax_last_error();
  EXPECT_TRUE(gx.All(1.25f));
}

}  // namespace
