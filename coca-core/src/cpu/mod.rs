//! Inference kernels for the pure-Rust CPU backend where burn `flex`'s general ones leave the
//! machine idle (profiles and figures: `docs/benchmarks.md`):
//!
//! - products of a few rows with a large weight (every linear layer and the vocabulary
//!   projection while decoding), which burn's gemm packs per call and runs at a fraction of
//!   the memory bandwidth;
//! - the exact-erf GELU, which burn computes one scalar `erff` at a time on one thread;
//! - attention of one query position over cached keys/values, which burn runs as two small
//!   gemm calls per (row, head).
//!
//! Each entry point takes the fast path only for f32 tensors of the `flex` backend without
//! autodiff (inference), on a CPU with AVX-512F, and otherwise returns `None` (or computes with
//! burn), so training, other backends and other CPUs are unchanged. Setting
//! `COCA_CPU_KERNELS=off` turns the kernels off (to compare, or to rule them out).

#[cfg(target_arch = "x86_64")]
mod avx512;

use std::sync::OnceLock;

use burn::tensor::{DType, Device, Tensor, TensorData};
use burn_flex::{Flex, FlexTensor};
use rayon::prelude::*;

/// Whether the kernels run on this machine (AVX-512F, not turned off by `COCA_CPU_KERNELS`).
pub fn enabled() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let off = std::env::var("COCA_CPU_KERNELS").is_ok_and(|v| v == "off" || v == "0");
        !off && has_avx512()
    })
}

#[cfg(target_arch = "x86_64")]
fn has_avx512() -> bool {
    std::arch::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn has_avx512() -> bool {
    false
}

/// The `flex` primitive behind `t` (shared, not copied) if `t` is an f32 tensor of the plain
/// `flex` backend.
fn flex<const D: usize>(t: &Tensor<D>) -> Option<FlexTensor> {
    if t.dtype() != DType::F32 || t.device() != Device::flex() {
        return None;
    }
    t.clone().try_into_primitive::<Flex>().ok()
}

/// A strided f32 view: the buffer, the offset of element 0 and the strides, with every stride
/// non-negative.
struct View<'a> {
    data: &'a [f32],
    offset: usize,
    strides: Vec<usize>,
    shape: Vec<usize>,
}

impl<'a> View<'a> {
    fn of(t: &'a FlexTensor) -> Option<Self> {
        let layout = t.layout();
        let strides = layout
            .strides()
            .iter()
            .map(|&s| usize::try_from(s).ok())
            .collect::<Option<Vec<_>>>()?;
        let shape: Vec<usize> = layout.shape().iter().copied().collect();
        let data: &[f32] = t.storage();
        // The furthest element must lie inside the buffer.
        let last = layout.start_offset()
            + shape
                .iter()
                .zip(&strides)
                .map(|(&n, &s)| n.saturating_sub(1) * s)
                .sum::<usize>();
        (shape.iter().all(|&n| n > 0) && last < data.len()).then_some(Self {
            data,
            offset: layout.start_offset(),
            strides,
            shape,
        })
    }

    fn ptr(&self) -> *const f32 {
        // In bounds: checked in `of`.
        self.data[self.offset..].as_ptr()
    }
}

/// An f32 tensor of `flex` from a host buffer (no copy).
fn tensor<const D: usize>(values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
    Tensor::from_data(TensorData::new(values, shape), &Device::flex())
}

/// A raw pointer shared by the tasks of one kernel call: inputs they read, or the output
/// buffer they write disjoint parts of.
#[derive(Clone, Copy)]
struct Ptr(*mut f32);
// SAFETY: every task writes its own elements only (callers split the buffer by column/row).
unsafe impl Send for Ptr {}
unsafe impl Sync for Ptr {}
impl Ptr {
    fn get(self) -> *mut f32 {
        self.0
    }
}

/// Splits `0..n` into ranges of at least `min` (rounded to `align`) for the worker threads.
fn ranges(n: usize, min: usize, align: usize) -> Vec<(usize, usize)> {
    let tasks = (rayon::current_num_threads() * 4).max(1);
    let size = n.div_ceil(tasks).max(min).next_multiple_of(align.max(1));
    (0..n)
        .step_by(size)
        .map(|s| (s, (s + size).min(n)))
        .collect()
}

/// Runs `f` over the ranges, in parallel when the work is large enough to pay for it.
fn for_ranges(ranges: &[(usize, usize)], work: usize, f: impl Fn((usize, usize)) + Sync) {
    if ranges.len() > 1 && work >= 1 << 16 {
        ranges.par_iter().for_each(|&r| f(r));
    } else {
        ranges.iter().for_each(|&r| f(r));
    }
}

/// `x [..., in] W^T + b` for `weight [out, in]` (PyTorch's layout), when the fast path applies.
pub fn linear_rows<const D: usize>(
    x: &Tensor<D>,
    weight: &Tensor<2>,
    bias: Option<&Tensor<1>>,
) -> Option<Tensor<D>> {
    if !enabled() {
        return None;
    }
    let (xf, wf) = (flex(x)?.to_contiguous(), flex(weight)?);
    let bf = match bias {
        Some(b) => Some(flex(b)?),
        None => None,
    };
    let (xv, wv) = (View::of(&xf)?, View::of(&wf)?);
    let [n, k] = [wv.shape[0], wv.shape[1]];
    let dims = x.dims();
    if dims[D - 1] != k || wv.strides[1] != 1 {
        return None;
    }
    let bv = match &bf {
        Some(b) => {
            let v = View::of(b)?;
            if v.shape[0] != n || v.strides[0] != 1 {
                return None;
            }
            Some(v)
        }
        None => None,
    };
    let m: usize = dims[..D - 1].iter().product();
    let mut y = vec![0f32; m * n];
    let out = Ptr(y.as_mut_ptr());
    let (xp, wp, ldw) = (
        Ptr(xv.ptr().cast_mut()),
        Ptr(wv.ptr().cast_mut()),
        wv.strides[0],
    );
    let bp = bv.as_ref().map(|b| Ptr(b.ptr().cast_mut()));
    for_ranges(&ranges(n, 16, 4), m * n * k, |cols| {
        // SAFETY: AVX-512F checked by `enabled`; `x` is `[m, k]` contiguous, `weight` has `n`
        // rows of `k` at stride `ldw` and `bias` `n` values (checked above); each task writes
        // its own columns of `y [m, n]`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx512::rows_times_nk(
                xp.get(),
                k,
                m,
                k,
                wp.get(),
                ldw,
                bp.map(|b| b.get().cast_const()),
                cols,
                out.get(),
                n,
            );
        }
    });
    let mut out_dims = dims;
    out_dims[D - 1] = n;
    Some(tensor(y, [m, n]).reshape(out_dims))
}

/// `x [m, k] @ p [k, n]` for a few rows `x`, when the fast path applies.
pub fn rows_matmul(x: &Tensor<2>, p: &Tensor<2>) -> Option<Tensor<2>> {
    if !enabled() {
        return None;
    }
    let (xf, pf) = (flex(x)?.to_contiguous(), flex(p)?);
    let (xv, pv) = (View::of(&xf)?, View::of(&pf)?);
    let ([m, k], [k2, n]) = ([xv.shape[0], xv.shape[1]], [pv.shape[0], pv.shape[1]]);
    if k != k2 || pv.strides[1] != 1 {
        return None;
    }
    let mut y = vec![0f32; m * n];
    let out = Ptr(y.as_mut_ptr());
    let (xp, pp, ldp) = (
        Ptr(xv.ptr().cast_mut()),
        Ptr(pv.ptr().cast_mut()),
        pv.strides[0],
    );
    for_ranges(&ranges(n, 64, 64), m * n * k, |cols| {
        // SAFETY: AVX-512F checked by `enabled`; `x` is `[m, k]` contiguous, `p` has `k` rows
        // of `n` at stride `ldp` (checked above); each task writes its own columns of `y`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx512::rows_times_kn(xp.get(), k, m, k, pp.get(), ldp, cols, out.get(), n);
        }
    });
    Some(tensor(y, [m, n]))
}

/// The exact-erf GELU: the fast kernel when it applies, burn's otherwise.
pub fn gelu<const D: usize>(x: Tensor<D>) -> Tensor<D> {
    let Some(t) = enabled().then(|| flex(&x)).flatten() else {
        return burn::tensor::activation::gelu(x);
    };
    // `t` shares `x`'s buffer; with `x` gone it may be the only holder.
    drop(x);
    // In place when nothing else holds the buffer, else on a contiguous copy.
    let mut t = if t.is_unique() && t.layout().is_contiguous() && t.layout().start_offset() == 0 {
        t
    } else {
        t.to_contiguous()
    };
    let n = t.layout().num_elements();
    let data: &mut [f32] = &mut t.storage_mut()[..n];
    let chunk = 1 << 14;
    let run = |c: &mut [f32]| {
        // SAFETY: AVX-512F checked by `enabled`.
        #[cfg(target_arch = "x86_64")]
        unsafe {
            avx512::gelu_in_place(c)
        }
    };
    if n > chunk {
        data.par_chunks_mut(chunk).for_each(run);
    } else {
        run(data);
    }
    Tensor::from_primitive::<Flex>(t)
}

/// Attention of one query position: `q [B, H, 1, dh]`, `k`, `v [B, H, L, dh]` (views with unit
/// stride in `dh`), no mask. Returns the heads merged, `[B, 1, H * dh]`.
pub fn attend_one(q: &Tensor<4>, k: &Tensor<4>, v: &Tensor<4>) -> Option<Tensor<3>> {
    if !enabled() {
        return None;
    }
    let [b, h, lq, dh] = q.dims();
    let len = k.dims()[2];
    if lq != 1 || dh > 128 || k.dims() != [b, h, len, dh] || v.dims() != [b, h, len, dh] {
        return None;
    }
    let (qf, kf, vf) = (flex(q)?.to_contiguous(), flex(k)?, flex(v)?);
    let (qv, kv, vv) = (View::of(&qf)?, View::of(&kf)?, View::of(&vf)?);
    if kv.strides[3] != 1 || vv.strides[3] != 1 {
        return None;
    }
    let mut y = vec![0f32; b * h * dh];
    let out = Ptr(y.as_mut_ptr());
    let (qp, kp, vp) = (
        Ptr(qv.ptr().cast_mut()),
        Ptr(kv.ptr().cast_mut()),
        Ptr(vv.ptr().cast_mut()),
    );
    let scale = (dh as f32).powf(-0.5);
    let (ks, vs) = (kv.strides.clone(), vv.strides.clone());
    let run = |(s, e): (usize, usize)| {
        let mut scores = vec![0f32; len];
        for bh in s..e {
            let (bi, hi) = (bh / h, bh % h);
            // SAFETY: AVX-512F checked by `enabled`; the offsets address row `bi`, head `hi` of
            // the views checked in `View::of`; each (row, head) writes its own `dh` outputs.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                avx512::attend_one(
                    qp.get().add(bh * dh),
                    kp.get().add(bi * ks[0] + hi * ks[1]),
                    ks[2],
                    vp.get().add(bi * vs[0] + hi * vs[1]),
                    vs[2],
                    len,
                    dh,
                    scale,
                    &mut scores,
                    out.get().add(bh * dh),
                );
            }
        }
    };
    for_ranges(&ranges(b * h, 1, 1), b * h * len * dh * 4, run);
    Some(tensor(y, [b, 1, h * dh]))
}

#[cfg(test)]
mod tests;
