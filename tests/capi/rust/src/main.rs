//! Rust consumer of libsoftmax's C ABI (plain `extern "C"`, no crates): reads the real logits
//! (stories260K_logits.npy, 256 x 512 f32), checks softmax of every row against an f64
//! reference computed here, samples tokens with temperature and top-k and checks their
//! frequencies against the renormalised f64 probabilities, and checks one error path.
//! Usage: softmax_consumer <logits.npy>; exit 77 (skip) when the file is missing.
use std::ffi::CStr;
use std::os::raw::{c_char, c_void};

#[repr(C)]
struct Tensor {
    data: *mut c_void,
    dtype: i32,
    device: i32,
    rank: i64,
    shape: *const i64,
    strides: *const i64,
}

#[repr(C)]
struct SoftmaxOptions {
    struct_size: usize,
    axis: i64,
    temperature: f64,
    keepdims: i64,
}

#[repr(C)]
struct SamplingParams {
    struct_size: usize,
    temperature: f64,
    top_k: i64,
    top_p: f64,
    min_p: f64,
    method: i64,
    per_row_length: i64,
    temperature_per_row: *const f64,
    top_k_per_row: *const i64,
    top_p_per_row: *const f64,
    min_p_per_row: *const f64,
    streams: *const u64,
}

const F32: i32 = 0;
const I64: i32 = 5;
const STATUS_OK: i32 = 0;
const STATUS_INVALID_ARGUMENT: i32 = 1;

#[link(name = "softmax")]
extern "C" {
    fn softmax_version() -> *const c_char;
    fn softmax_last_error() -> *const c_char;
    fn softmax_softmax(ctx: *mut c_void, x: *const Tensor, y: *const Tensor,
                       options: *const SoftmaxOptions) -> i32;
    fn softmax_sample(ctx: *mut c_void, logits: *const Tensor, tokens: *const Tensor,
                      params: *const SamplingParams, seed: u64, offset: u64) -> i32;
}

fn tensor(data: *mut c_void, dtype: i32, shape: &[i64]) -> Tensor {
    Tensor { data, dtype, device: 0, rank: shape.len() as i64, shape: shape.as_ptr(),
             strides: std::ptr::null() }
}

fn last_error() -> String {
    unsafe { CStr::from_ptr(softmax_last_error()).to_string_lossy().into_owned() }
}

fn default_params() -> SamplingParams {
    SamplingParams { struct_size: std::mem::size_of::<SamplingParams>(), temperature: 1.0,
                     top_k: 0, top_p: 1.0, min_p: 0.0, method: 0, per_row_length: 0,
                     temperature_per_row: std::ptr::null(), top_k_per_row: std::ptr::null(),
                     top_p_per_row: std::ptr::null(), min_p_per_row: std::ptr::null(),
                     streams: std::ptr::null() }
}

/// A little-endian f32 C-order .npy file: (shape, values).
fn read_npy(bytes: &[u8]) -> Result<(Vec<i64>, Vec<f32>), String> {
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err("not a .npy file".into());
    }
    let (len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => {
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(format!("unsupported .npy version {v}")),
    };
    let header = bytes.get(start..start + len).ok_or("truncated header")?;
    let header = std::str::from_utf8(header).map_err(|_| "header is not text")?;
    if !header.contains("'descr': '<f4'") || !header.contains("'fortran_order': False") {
        return Err(format!("want little-endian f32 in C order, header {header}"));
    }
    let open = header.find("'shape': (").ok_or("no shape")? + "'shape': (".len();
    let close = open + header[open..].find(')').ok_or("bad shape")?;
    let shape: Vec<i64> = header[open..close].split(',').map(str::trim).filter(|s| !s.is_empty())
        .map(|s| s.parse::<i64>().map_err(|_| format!("bad dim '{s}'")))
        .collect::<Result<_, _>>()?;
    let count = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d as usize)).ok_or("overflow")?;
    let data = &bytes[start + len..];
    if data.len() != count * 4 {
        return Err(format!("{} data bytes for shape {:?}", data.len(), shape));
    }
    Ok((shape, data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()))
}

/// softmax(x / t) in f64.
fn reference(x: &[f32], t: f64) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
    let e: Vec<f64> = x.iter().map(|&v| ((v as f64 - m) / t).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

fn check_softmax(shape: &[i64], x: &mut [f32]) -> Result<(), String> {
    let (rows, v) = (shape[0] as usize, shape[1] as usize);
    let mut y = vec![0f32; x.len()];
    let (tx, ty) = (tensor(x.as_mut_ptr().cast(), F32, shape), tensor(y.as_mut_ptr().cast(), F32, shape));
    let st = unsafe { softmax_softmax(std::ptr::null_mut(), &tx, &ty, std::ptr::null()) };
    if st != STATUS_OK {
        return Err(format!("softmax failed: {}", last_error()));
    }
    let mut worst = 0f64;
    for r in 0..rows {
        let want = reference(&x[r * v..(r + 1) * v], 1.0);
        for (i, &p) in want.iter().enumerate() {
            let err = (y[r * v + i] as f64 - p).abs() / (p * f32::EPSILON as f64 / 2.0);
            worst = worst.max(err);
        }
    }
    println!("softmax of {rows} x {v} logits: max error {worst:.2} ulp (bound 4)");
    if worst > 4.0 { Err(format!("softmax error {worst} ulp > 4")) } else { Ok(()) }
}

fn check_sampling(x: &mut [f32], v: usize) -> Result<(), String> {
    const DRAWS: usize = 20000;
    let (t, k) = (0.8, 8usize);
    let row = &mut x[..v];
    let mut tokens = vec![-1i64; DRAWS];
    let (ls, ts) = ([1i64, v as i64], [1i64, DRAWS as i64]);
    let (tl, tt) = (tensor(row.as_mut_ptr().cast(), F32, &ls), tensor(tokens.as_mut_ptr().cast(), I64, &ts));
    let mut p = default_params();
    p.temperature = t;
    p.top_k = k as i64;
    if unsafe { softmax_sample(std::ptr::null_mut(), &tl, &tt, &p, 2024, 0) } != STATUS_OK {
        return Err(format!("sample failed: {}", last_error()));
    }
    // The k most probable tokens and their probabilities renormalised over them.
    let probs = reference(row, t);
    let mut order: Vec<usize> = (0..v).collect();
    order.sort_by(|&a, &b| probs[b].partial_cmp(&probs[a]).unwrap().then(a.cmp(&b)));
    let kept = &order[..k];
    let mass: f64 = kept.iter().map(|&i| probs[i]).sum();
    let mut counts = vec![0usize; v];
    for &tok in &tokens {
        if tok < 0 || tok as usize >= v || !kept.contains(&(tok as usize)) {
            return Err(format!("token {tok} is not among the top {k}"));
        }
        counts[tok as usize] += 1;
    }
    for &i in kept {
        let (q, f) = (probs[i] / mass, counts[i] as f64 / DRAWS as f64);
        let sigma = (q * (1.0 - q) / DRAWS as f64).sqrt();
        if (f - q).abs() > 5.0 * sigma + 1e-3 {
            return Err(format!("token {i}: frequency {f:.4}, probability {q:.4}"));
        }
    }
    println!("sampled token {} (T = {t}, top_k = {k}); {DRAWS} draws match the top-{k} \
              probabilities within 5 sigma", tokens[0]);
    Ok(())
}

fn check_error_path(x: &mut [f32]) -> Result<(), String> {
    let shape = [4i64];
    let mut y = [7f32; 4];
    let (tx, ty) = (tensor(x.as_mut_ptr().cast(), F32, &shape), tensor(y.as_mut_ptr().cast(), F32, &shape));
    let o = SoftmaxOptions { struct_size: std::mem::size_of::<SoftmaxOptions>(), axis: -1,
                             temperature: -1.0, keepdims: 0 };
    let st = unsafe { softmax_softmax(std::ptr::null_mut(), &tx, &ty, &o) };
    let msg = last_error();
    if st != STATUS_INVALID_ARGUMENT || !msg.starts_with("softmax::softmax: argument 'temperature' = -1")
        || y != [7f32; 4] {
        return Err(format!("temperature -1: status {st}, message '{msg}', y {y:?}"));
    }
    println!("error path: {msg}");
    Ok(())
}

fn run(path: &str) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{path}: {e}"))?;
    let (shape, mut x) = read_npy(&bytes)?;
    if shape.len() != 2 {
        return Err(format!("want (rows, vocab) logits, got shape {shape:?}"));
    }
    let version = unsafe { CStr::from_ptr(softmax_version()) }.to_string_lossy().into_owned();
    println!("libsoftmax {version}, logits {shape:?}");
    check_softmax(&shape, &mut x)?;
    check_sampling(&mut x, shape[1] as usize)?;
    check_error_path(&mut x)
}

fn main() {
    let path = std::env::args().nth(1).unwrap_or_default();
    if !std::path::Path::new(&path).is_file() {
        println!("SKIP: logits file '{path}' not found");
        std::process::exit(77);
    }
    if let Err(e) = run(&path) {
        eprintln!("softmax_consumer: {e}");
        std::process::exit(1);
    }
}
