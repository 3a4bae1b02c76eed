//! Device selection from strings such as `cpu`, `cuda:0`, `cubecl-cuda:1`.

use burn::tensor::Device;

use crate::error::{CocaError, Result};

/// Parses a device string. `cpu` is the pure-Rust `flex` backend (always built); `cuda:N`
/// needs the `libtorch` feature (burn `tch`); `cubecl-cuda:N` needs the `cuda` feature.
/// `libtorch-cpu` runs libtorch on the CPU (also `libtorch` feature), which checks the libtorch
/// code path on a machine without a GPU.
pub fn parse_device(spec: &str) -> Result<Device> {
    let err = |reason: &str| CocaError::Device {
        device: spec.to_string(),
        reason: reason.to_string(),
    };
    let (kind, index) = match spec.split_once(':') {
        Some((k, i)) => {
            let index: usize = i
                .parse()
                .map_err(|_| err("the index after `:` must be a non-negative integer"))?;
            (k, index)
        }
        None => (spec, 0),
    };
    match kind {
        "cpu" if !spec.contains(':') => Ok(Device::flex()),
        "libtorch-cpu" if !spec.contains(':') => libtorch_cpu().ok_or_else(|| {
            err("this build has no libtorch backend; rebuild with `--features libtorch` (see README)")
        }),
        "cuda" => cuda_libtorch(index).ok_or_else(|| {
            err("this build has no libtorch backend; rebuild with `--features libtorch` (see README)")
        }),
        "cubecl-cuda" => cuda_cubecl(index)
            .ok_or_else(|| err("this build has no CubeCL CUDA backend; rebuild with `--features cuda`")),
        _ => Err(err(
            "unknown device; expected `cpu`, `cuda:N`, `cubecl-cuda:N` or `libtorch-cpu`",
        )),
    }
}

// burn marks its tch backend deprecated in favour of CubeCL; it is still the libtorch route the
// CUDA machine is set up for.
#[cfg(feature = "libtorch")]
#[allow(deprecated)]
fn cuda_libtorch(index: usize) -> Option<Device> {
    Some(Device::libtorch_cuda(index))
}

#[cfg(not(feature = "libtorch"))]
fn cuda_libtorch(_index: usize) -> Option<Device> {
    None
}

#[cfg(feature = "libtorch")]
#[allow(deprecated)]
fn libtorch_cpu() -> Option<Device> {
    Some(Device::libtorch())
}

#[cfg(not(feature = "libtorch"))]
fn libtorch_cpu() -> Option<Device> {
    None
}

#[cfg(feature = "cuda")]
fn cuda_cubecl(index: usize) -> Option<Device> {
    Some(Device::cuda(index))
}

#[cfg(not(feature = "cuda"))]
fn cuda_cubecl(_index: usize) -> Option<Device> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_cpu_and_rejects_unknown() {
        assert!(parse_device("cpu").is_ok());
        let e = parse_device("tpu:0").unwrap_err().to_string();
        assert!(e.contains("tpu:0") && e.contains("unknown device"), "{e}");
        let e = parse_device("cuda:x").unwrap_err().to_string();
        assert!(e.contains("cuda:x"), "{e}");
    }

    #[cfg(not(feature = "libtorch"))]
    #[test]
    fn cuda_without_libtorch_is_a_clear_error() {
        let e = parse_device("cuda:0").unwrap_err().to_string();
        assert!(
            e.contains("cuda:0") && e.contains("--features libtorch"),
            "{e}"
        );
    }
}
