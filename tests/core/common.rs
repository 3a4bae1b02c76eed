//! Fixture access and tensor comparison shared by the tests.

use std::collections::BTreeMap;

use coca_core::burn::tensor::{Device, Tensor, TensorData};

#[path = "../support/fixture.rs"]
mod support_fixture;
pub use support_fixture::{fixture, test_data};

#[path = "../support/compare.rs"]
mod support_compare;
pub use support_compare::{Closeness, Tol, assert_close, assert_close_shaped};

/// The device of the numerical tests: `$COCA_TEST_DEVICE` (e.g. `cuda:0` in a
/// `--features libtorch` build), default `cpu`.
pub fn test_device() -> Device {
    let spec = std::env::var("COCA_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    coca_core::device::parse_device(&spec).unwrap_or_else(|e| panic!("COCA_TEST_DEVICE: {e}"))
}

/// Whether the numerical tests run on the default CPU device.
fn on_cpu() -> bool {
    matches!(
        std::env::var("COCA_TEST_DEVICE").as_deref(),
        Ok("cpu") | Err(_)
    )
}

/// Parity tolerance of activations, features and losses (f32): `1e-4 + 1e-4 * |ref|` on the
/// CPU, ten times that on other devices (GPU kernels such as TF32 matmuls and fused attention
/// round differently).
pub fn parity_tolerance() -> Tol {
    if on_cpu() {
        Tol::new(1e-4, 1e-4)
    } else {
        Tol::new(1e-3, 1e-3)
    }
}

/// Parity tolerance of gradients, `atol` as a fraction of the tensor's largest reference
/// value: many gradient values are tiny (255 of the 256 rows of `grad.visual.attn_pool.query`
/// are below 6e-5 while its largest is 0.09), so the absolute part must be small enough that
/// an all-zero row fails; the relative part carries the rest.
pub fn gradient_tolerance() -> Tol {
    if on_cpu() {
        Tol::new(1e-5, 1e-3)
    } else {
        Tol::new(1e-4, 1e-2)
    }
}

/// Every tensor of a safetensors file as `(shape, f32 values)`.
pub fn read_reference(path: &std::path::Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    st.tensors()
        .into_iter()
        .map(|(name, view)| {
            let values: Vec<f32> = match view.dtype() {
                safetensors::Dtype::F32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                    .collect(),
                safetensors::Dtype::I64 => view
                    .data()
                    .chunks_exact(8)
                    .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                safetensors::Dtype::I32 => view
                    .data()
                    .chunks_exact(4)
                    .map(|c| i32::from_le_bytes(c.try_into().unwrap()) as f32)
                    .collect(),
                other => panic!("unexpected dtype {other:?} for {name}"),
            };
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// Values of a float tensor as f32.
pub fn values<const D: usize>(t: Tensor<D>) -> (Vec<usize>, Vec<f32>) {
    let data: TensorData = t.into_data().convert::<f32>();
    (data.shape().to_vec(), data.try_to_vec::<f32>().unwrap())
}
