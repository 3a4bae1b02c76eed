//! AVX-512F kernels on raw f32 buffers. Every function here is `unsafe`: the caller checks that
//! the CPU has AVX-512F and that each pointer covers the rows, columns and strides it names.

use std::arch::x86_64::*;

/// Lanes of one `__m512`.
pub const LANES: usize = 16;

/// The first `n` (0..=16) lanes.
#[inline(always)]
fn mask(n: usize) -> __mmask16 {
    if n >= LANES {
        0xffff
    } else {
        ((1u32 << n) - 1) as __mmask16
    }
}

/// A few rows times a weight in PyTorch's layout: for `r < m` and `o0 <= o < o1`,
/// `out[r * ldo + o] = bias[o] + sum_k x[r * ldx + k] * w[o * ldw + k]`.
///
/// Each block of 4 weight rows is read once (prefetched two blocks ahead) and multiplied with
/// 4 rows of `x` at a time (16 accumulators) while `x` stays in L1.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn rows_times_nk(
    x: *const f32,
    ldx: usize,
    m: usize,
    k: usize,
    w: *const f32,
    ldw: usize,
    bias: Option<*const f32>,
    (o0, o1): (usize, usize),
    out: *mut f32,
    ldo: usize,
) {
    unsafe {
        let full = k / LANES * LANES;
        let tail = mask(k - full);
        let load = |p: *const f32, kc: usize| {
            if kc < full {
                _mm512_loadu_ps(p.add(kc))
            } else {
                _mm512_maskz_loadu_ps(tail, p.add(kc))
            }
        };
        let b = |o: usize| bias.map_or(0.0, |b| *b.add(o));
        let mut o = o0;
        while o + 4 <= o1 {
            let wp: [*const f32; 4] = std::array::from_fn(|i| w.wrapping_add((o + i) * ldw));
            let mut r = 0;
            while r + 4 <= m {
                let xp: [*const f32; 4] = std::array::from_fn(|j| x.wrapping_add((r + j) * ldx));
                let mut acc = [_mm512_setzero_ps(); 16];
                // One step of 16 `k`: 4 weight and 4 `x` vectors, 16 products.
                macro_rules! step {
                    ($kc:expr, $load:expr) => {{
                        let kc = $kc;
                        let wv = [
                            $load(wp[0], kc),
                            $load(wp[1], kc),
                            $load(wp[2], kc),
                            $load(wp[3], kc),
                        ];
                        if r == 0 {
                            // The weight streams from memory: ask for the rows two blocks
                            // ahead (a prefetch never faults, so the address may lie past the
                            // end).
                            for i in 8..12 {
                                let ahead = w.wrapping_add((o + i) * ldw + kc);
                                _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
                            }
                        }
                        for j in 0..4 {
                            let xv = $load(xp[j], kc);
                            for i in 0..4 {
                                acc[i * 4 + j] = _mm512_fmadd_ps(wv[i], xv, acc[i * 4 + j]);
                            }
                        }
                    }};
                }
                let mut kc = 0;
                while kc < full {
                    step!(kc, |p: *const f32, kc| _mm512_loadu_ps(p.add(kc)));
                    kc += LANES;
                }
                if kc < k {
                    step!(kc, |p: *const f32, kc| _mm512_maskz_loadu_ps(
                        tail,
                        p.add(kc)
                    ));
                }
                for i in 0..4 {
                    for j in 0..4 {
                        *out.add((r + j) * ldo + o + i) =
                            _mm512_reduce_add_ps(acc[i * 4 + j]) + b(o + i);
                    }
                }
                r += 4;
            }
            while r < m {
                let xp = x.add(r * ldx);
                let mut acc = [_mm512_setzero_ps(); 4];
                let mut kc = 0;
                while kc < k {
                    let xv = load(xp, kc);
                    for i in 0..4 {
                        acc[i] = _mm512_fmadd_ps(load(wp[i], kc), xv, acc[i]);
                    }
                    kc += LANES;
                }
                for (i, a) in acc.iter().enumerate() {
                    *out.add(r * ldo + o + i) = _mm512_reduce_add_ps(*a) + b(o + i);
                }
                r += 1;
            }
            o += 4;
        }
        while o < o1 {
            let wp = w.add(o * ldw);
            for r in 0..m {
                let xp = x.add(r * ldx);
                let mut acc = _mm512_setzero_ps();
                let mut kc = 0;
                while kc < k {
                    acc = _mm512_fmadd_ps(load(wp, kc), load(xp, kc), acc);
                    kc += LANES;
                }
                *out.add(r * ldo + o) = _mm512_reduce_add_ps(acc) + b(o);
            }
            o += 1;
        }
    }
}

/// A few rows times a matrix stored `[k, n]` (used as `x @ p`): for `r < m` and
/// `c0 <= c < c1`, `out[r * ldo + c] = sum_k x[r * ldx + k] * p[k * ldp + c]`, summed in order
/// of `k` (the order burn's gemm sums in).
///
/// Blocks of 64 columns times 4 rows (16 accumulators), one broadcast of `x` per row and `k`;
/// the next blocks' parts of each row of `p` are prefetched.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn rows_times_kn(
    x: *const f32,
    ldx: usize,
    m: usize,
    k: usize,
    p: *const f32,
    ldp: usize,
    (c0, c1): (usize, usize),
    out: *mut f32,
    ldo: usize,
) {
    unsafe {
        let mut c = c0;
        while c < c1 {
            let width = (c1 - c).min(4 * LANES);
            let vecs = width.div_ceil(LANES);
            let masks = [
                mask(width),
                mask(width.saturating_sub(LANES)),
                mask(width.saturating_sub(2 * LANES)),
                mask(width.saturating_sub(3 * LANES)),
            ];
            let mut r = 0;
            while r < m {
                let rows = (m - r).min(4);
                let mut acc = [_mm512_setzero_ps(); 16];
                for kk in 0..k {
                    let pr = p.add(kk * ldp + c);
                    if r == 0 {
                        // Rows of `p` lie far apart: ask for this row's part two blocks ahead
                        // (a prefetch never faults, so the address may lie past the end).
                        for q in 0..4 {
                            let ahead = pr.wrapping_add(8 * LANES + q * LANES);
                            _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
                        }
                    }
                    let mut pv = [_mm512_setzero_ps(); 4];
                    for (q, v) in pv.iter_mut().enumerate().take(vecs) {
                        *v = _mm512_maskz_loadu_ps(masks[q], pr.add(q * LANES));
                    }
                    for j in 0..rows {
                        let xv = _mm512_set1_ps(*x.add((r + j) * ldx + kk));
                        for q in 0..4 {
                            acc[j * 4 + q] = _mm512_fmadd_ps(pv[q], xv, acc[j * 4 + q]);
                        }
                    }
                }
                for j in 0..rows {
                    for q in 0..vecs {
                        _mm512_mask_storeu_ps(
                            out.add((r + j) * ldo + c + q * LANES),
                            masks[q],
                            acc[j * 4 + q],
                        );
                    }
                }
                r += 4;
            }
            c += width;
        }
    }
}

/// `exp` on 16 lanes (Cephes' `expf`: `x = n ln 2 + r`, a degree-6 polynomial for `e^r`, then
/// `2^n`); about 1 ulp, inputs below -87.3 give 0.
#[target_feature(enable = "avx512f")]
#[inline]
pub unsafe fn exp(x: __m512) -> __m512 {
    let x = _mm512_max_ps(
        _mm512_min_ps(x, _mm512_set1_ps(88.376_26)),
        _mm512_set1_ps(-87.336_55),
    );
    let n = _mm512_roundscale_ps::<{ _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC }>(
        _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::LOG2_E)),
    );
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693_359_4), x);
    let r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.121_944_4e-4), r);
    let mut y = _mm512_set1_ps(1.987_569_1e-4);
    for c in [
        1.398_199_9e-3,
        8.333_452e-3,
        4.166_579_6e-2,
        1.666_666_5e-1,
        0.5,
    ] {
        y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(c));
    }
    let r2 = _mm512_mul_ps(r, r);
    let y = _mm512_add_ps(_mm512_fmadd_ps(y, r2, r), _mm512_set1_ps(1.0));
    _mm512_scalef_ps(y, n)
}

/// Exact-erf GELU in place, `x / 2 (1 + erf(x / sqrt 2))`, with erf as PyTorch's CPU kernels
/// compute it (Abramowitz & Stegun 7.1.26: `1 - t P(t) e^{-z^2}`, `t = 1 / (1 + 0.3275911 |z|)`,
/// absolute error below 1.5e-7).
#[target_feature(enable = "avx512f")]
pub unsafe fn gelu_in_place(data: &mut [f32]) {
    unsafe {
        let half = _mm512_set1_ps(0.5);
        let one = _mm512_set1_ps(1.0);
        let sign_bit = _mm512_set1_ps(-0.0);
        let p = _mm512_set1_ps(0.327_591_1);
        let coef = [
            1.061_405_4,
            -1.453_152,
            1.421_413_8,
            -0.284_496_72,
            0.254_829_6,
        ];
        let n = data.len();
        let ptr = data.as_mut_ptr();
        let mut i = 0;
        while i < n {
            let m = mask(n - i);
            let x = _mm512_maskz_loadu_ps(m, ptr.add(i));
            let z = _mm512_mul_ps(x, _mm512_set1_ps(std::f32::consts::FRAC_1_SQRT_2));
            let sign = _mm512_and_ps(z, sign_bit);
            let az = _mm512_andnot_ps(sign_bit, z);
            let t = _mm512_div_ps(one, _mm512_fmadd_ps(p, az, one));
            let mut poly = _mm512_set1_ps(coef[0]);
            for &c in &coef[1..] {
                poly = _mm512_fmadd_ps(poly, t, _mm512_set1_ps(c));
            }
            let e = exp(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_mul_ps(az, az)));
            let erf_abs = _mm512_fnmadd_ps(_mm512_mul_ps(t, poly), e, one);
            let erf = _mm512_or_ps(erf_abs, sign);
            let y = _mm512_mul_ps(_mm512_mul_ps(half, x), _mm512_add_ps(one, erf));
            _mm512_mask_storeu_ps(ptr.add(i), m, y);
            i += LANES;
        }
    }
}

/// Softmax attention of one query over `len` keys/values of width `dh`:
/// `out = sum_j softmax_j(scale q . k_j) v_j`. Rows `k_j = k + j * ldk`, `v_j = v + j * ldv`;
/// `scores` is scratch of at least `len` floats.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
pub unsafe fn attend_one(
    q: *const f32,
    k: *const f32,
    ldk: usize,
    v: *const f32,
    ldv: usize,
    len: usize,
    dh: usize,
    scale: f32,
    scores: &mut [f32],
    out: *mut f32,
) {
    unsafe {
        let vecs = dh.div_ceil(LANES);
        let tail = mask(dh - (vecs - 1) * LANES);
        let m_of = |q: usize| if q + 1 == vecs { tail } else { 0xffff };
        let chunks = vecs.min(8);
        let mut qv = [_mm512_setzero_ps(); 8];
        for (c, v) in qv.iter_mut().enumerate().take(chunks) {
            *v = _mm512_maskz_loadu_ps(m_of(c), q.add(c * LANES));
        }
        let mut max = f32::NEG_INFINITY;
        for (j, s) in scores.iter_mut().enumerate().take(len) {
            let kj = k.add(j * ldk);
            let mut acc = _mm512_setzero_ps();
            for (c, &qc) in qv.iter().enumerate().take(chunks) {
                acc = _mm512_fmadd_ps(qc, _mm512_maskz_loadu_ps(m_of(c), kj.add(c * LANES)), acc);
            }
            *s = _mm512_reduce_add_ps(acc) * scale;
            max = max.max(*s);
        }
        let mut sum = _mm512_setzero_ps();
        let maxv = _mm512_set1_ps(max);
        let mut j = 0;
        while j < len {
            let m = mask(len - j);
            let s = _mm512_maskz_loadu_ps(m, scores.as_ptr().add(j));
            let e = _mm512_maskz_mov_ps(m, exp(_mm512_sub_ps(s, maxv)));
            _mm512_mask_storeu_ps(scores.as_mut_ptr().add(j), m, e);
            sum = _mm512_add_ps(sum, e);
            j += LANES;
        }
        let inv = 1.0 / _mm512_reduce_add_ps(sum);
        let mut acc = [_mm512_setzero_ps(); 8];
        for (j, &pj) in scores.iter().enumerate().take(len) {
            let vj = v.add(j * ldv);
            let pv = _mm512_set1_ps(pj);
            for (c, a) in acc.iter_mut().enumerate().take(chunks) {
                *a = _mm512_fmadd_ps(pv, _mm512_maskz_loadu_ps(m_of(c), vj.add(c * LANES)), *a);
            }
        }
        let invv = _mm512_set1_ps(inv);
        for (c, a) in acc.iter().enumerate().take(chunks) {
            _mm512_mask_storeu_ps(out.add(c * LANES), m_of(c), _mm512_mul_ps(*a, invv));
        }
    }
}
