//! Float precision of weights and of the numerics that need f32.
//!
//! A device's default float dtype (f32, or bf16 after `device.configure(FloatDType::BF16)`) is
//! the dtype tensors are created with, but weights loaded from a file keep the file's dtype
//! (burn-store preserves it). [`for_device`] casts a module to the device's dtype before it
//! runs there; [`cast_params`] casts to any dtype (the trainer keeps f32 master weights of a
//! bf16 model this way). Losses upcast their logits with [`f32`], as PyTorch's autocast does.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{Device, FloatDType, Tensor};

/// Casts every float parameter of `module` to `dtype`, keeping parameter ids and whether each
/// tracks gradients; a cast parameter is a fresh leaf (not linked to any graph).
pub fn cast_params<M: Module>(module: M, dtype: FloatDType) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|t| {
                if t.dtype() == dtype.into() {
                    return t;
                }
                let tracked = t.is_require_grad();
                let t = t.cast(dtype).detach();
                if tracked { t.require_grad() } else { t }
            })
        }
    }
    module.map(&mut Cast(dtype))
}

/// The float dtype tensors are created with on `device`.
pub fn device_dtype(device: &Device) -> FloatDType {
    device.settings().float_dtype
}

/// Casts `module`'s weights to the float dtype of `device` (a no-op for f32 weights on an f32
/// device): weights read from f32 files stay f32 on a bf16 device until cast.
pub fn for_device<M: Module>(module: M, device: &Device) -> M {
    cast_params(module, device_dtype(device))
}

/// `t` in f32 (a no-op when it is already): softmax and log-softmax of losses run in f32
/// whatever the compute dtype.
pub fn f32<const D: usize>(t: Tensor<D>) -> Tensor<D> {
    t.cast(FloatDType::F32)
}
