//! Each kernel against burn's own computation of the same thing, over shapes with remainders
//! (rows not a multiple of 4, widths not a multiple of 16 or 64) and strided inputs. Where the
//! kernels do not run (no AVX-512F), each entry point must say so (`None`) rather than compute.

use burn::tensor::activation::gelu;
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Device, Distribution, Tensor};

use super::*;

fn randn<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
}

fn max_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    assert_eq!(a.dims(), b.dims());
    (a - b).abs().max().into_scalar()
}

/// `Some(result)` where the kernels run; asserts `None` is only returned where they don't.
fn expect<T>(got: Option<T>) -> Option<T> {
    assert_eq!(
        got.is_some(),
        enabled(),
        "fast path taken iff the kernels are enabled"
    );
    got
}

#[test]
fn linear_rows_matches_burn() {
    let device = Device::flex();
    for (rows, k, n) in [
        (1, 64, 8),
        (3, 40, 10),
        (5, 512, 2048),
        (16, 2048, 512),
        (64, 33, 7),
    ] {
        let x = randn([rows, 1, k], &device);
        let w = randn([n, k], &device);
        let b = randn([n], &device);
        let want = burn::tensor::module::linear(x.clone(), w.clone().transpose(), Some(b.clone()));
        if let Some(got) = expect(linear_rows(&x, &w, Some(&b))) {
            let tol = 1e-5 * (k as f32).sqrt();
            assert!(max_diff(got, want) < tol, "rows {rows}, k {k}, n {n}");
        }
    }
}

#[test]
fn linear_rows_reads_a_narrowed_weight_and_no_bias() {
    // The q/k/v parts of a fused `in_proj_weight` are row ranges of it.
    let device = Device::flex();
    let fused = randn([3 * 48, 48], &device);
    let x = randn([2, 7, 48], &device);
    for part in 0..3 {
        let w = fused.clone().narrow(0, part * 48, 48);
        let want = burn::tensor::module::linear(x.clone(), w.clone().transpose(), None);
        if let Some(got) = expect(linear_rows(&x, &w, None)) {
            assert!(max_diff(got, want) < 1e-4, "part {part}");
        }
    }
}

#[test]
fn rows_matmul_matches_burn() {
    let device = Device::flex();
    for (rows, k, n) in [(1, 32, 64), (6, 50, 100), (16, 512, 1000), (9, 17, 5)] {
        let x = randn([rows, k], &device);
        let p = randn([k, n], &device);
        let want = x.clone().matmul(p.clone());
        if let Some(got) = expect(rows_matmul(&x, &p)) {
            assert!(max_diff(got, want) < 1e-4, "rows {rows}, k {k}, n {n}");
        }
    }
}

#[test]
fn gelu_matches_burn_exact_erf() {
    let device = Device::flex();
    // Wide range, both signs, a length with a remainder, and the far tails.
    let x = randn([3, 7001], &device) * 4.0;
    let tails = Tensor::<1>::from_floats([-40.0, -9.0, -5.5, 0.0, 1e-8, 5.5, 9.0, 40.0], &device);
    for x in [x.reshape([21003]), tails] {
        let data = x.to_data();
        let want = gelu(Tensor::<1>::from_data(data.clone(), &device));
        // A tensor nothing else holds: computed in place.
        let got = super::gelu(Tensor::<1>::from_data(data, &device));
        assert!(max_diff(got, want) < 1e-6);
    }
}

#[test]
fn gelu_keeps_an_input_that_is_still_held() {
    let device = Device::flex();
    let x = randn([4, 300], &device);
    let kept = x.clone();
    let before = kept.clone().into_data();
    let _ = super::gelu(x);
    kept.into_data().assert_eq(&before, true);
}

#[test]
fn attend_one_matches_burn() {
    let device = Device::flex();
    for (b, h, len, dh) in [
        (2, 8, 1, 64),
        (3, 2, 37, 64),
        (1, 4, 255, 40),
        (2, 1, 16, 128),
    ] {
        let q = randn([b, h, 1, dh], &device);
        // Keys/values as views into a larger buffer (the key/value cache's layout).
        let kb = randn([b, h, len + 5, dh], &device);
        let vb = randn([b, h, len + 5, dh], &device);
        let k = kb.slice([0..b, 0..h, 0..len, 0..dh]);
        let v = vb.slice([0..b, 0..h, 0..len, 0..dh]);
        let want = attention(
            q.clone(),
            k.clone(),
            v.clone(),
            None,
            None,
            AttentionModuleOptions::default(),
        )
        .swap_dims(1, 2)
        .reshape([b, 1, h * dh]);
        if let Some(got) = expect(attend_one(&q, &k, &v)) {
            assert!(max_diff(got, want) < 1e-5, "b {b} h {h} len {len} dh {dh}");
        }
    }
}

#[test]
fn autodiff_tensors_take_burns_path() {
    let device = Device::flex().autodiff();
    let x = randn([2, 16], &device).require_grad();
    let w = randn([8, 16], &device);
    assert!(linear_rows(&x, &w, None).is_none());
    assert!(rows_matmul(&x, &w.clone().transpose()).is_none());
    // GELU on a tracked tensor still has a gradient.
    let y = super::gelu(x.clone()).sum();
    let grads = y.backward();
    assert!(x.grad(&grads).is_some());
}
