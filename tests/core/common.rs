//! Fixture access and tensor comparison shared by the tests.

use std::collections::BTreeMap;

use coca_core::burn::tensor::{Device, Tensor, TensorData};

#[path = "../support/fixture.rs"]
mod support_fixture;
pub use support_fixture::{fixture, test_data};

/// The device of the numerical tests: `$COCA_TEST_DEVICE` (e.g. `cuda:0` in a
/// `--features libtorch` build), default `cpu`.
pub fn test_device() -> Device {
    let spec = std::env::var("COCA_TEST_DEVICE").unwrap_or_else(|_| "cpu".into());
    coca_core::device::parse_device(&spec).unwrap_or_else(|e| panic!("COCA_TEST_DEVICE: {e}"))
}

/// Parity tolerance (max abs, f32): 1e-4 on the CPU, 1e-3 on other devices (GPU kernels
/// such as TF32 matmuls and fused attention round differently).
pub fn parity_tolerance() -> f32 {
    match std::env::var("COCA_TEST_DEVICE").as_deref() {
        Ok("cpu") | Err(_) => 1e-4,
        Ok(_) => 1e-3,
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

/// Maximum absolute difference, after checking shapes.
pub fn max_abs_diff(
    name: &str,
    got: &(Vec<usize>, Vec<f32>),
    want: &(Vec<usize>, Vec<f32>),
) -> f32 {
    assert_eq!(got.0, want.0, "{name}: shape");
    got.1
        .iter()
        .zip(&want.1)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}
