//! Reading and writing open_clip state dicts.
//!
//! Loading is strict: every parameter of the model must be found with its exact shape, and
//! every tensor of the file must be used, unless the caller names prefixes to skip. Failures list
//! the offending keys. Writing produces an `open_clip_model.safetensors` that open_clip loads.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::store::ModuleSnapshot;
use burn::store::bridge;
use burn::tensor::{AllocationProperty, Bool, Bytes, DType, Device, Int, Tensor, TensorData};

use crate::error::{CocaError, Result};
use crate::model::Coca;

/// Keys stored as 0-d scalars by PyTorch and as `[1]` tensors here.
const SCALAR_KEYS: [&str; 1] = ["logit_scale"];

/// Parameter names and f32 values of a checkpoint, in open_clip naming (no `module.` prefix).
pub type StateDict = BTreeMap<String, TensorData>;

/// The file formats a checkpoint may come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointFormat {
    /// `open_clip_model.safetensors`.
    Safetensors,
    /// `open_clip_pytorch_model.bin` (`torch.save` zip archive or legacy pickle).
    Pytorch,
}

/// Detects the format from the first bytes of the file (not its extension).
pub fn detect_format(path: &Path) -> Result<CheckpointFormat> {
    let mut head = [0u8; 9];
    let mut file = std::fs::File::open(path).map_err(|e| CocaError::io(path, e))?;
    let n = file.read(&mut head).map_err(|e| CocaError::io(path, e))?;
    let head = &head[..n];
    if head.starts_with(b"PK\x03\x04") || head.first() == Some(&0x80) {
        return Ok(CheckpointFormat::Pytorch);
    }
    if n == 9 && head[8] == b'{' {
        return Ok(CheckpointFormat::Safetensors);
    }
    Err(checkpoint_err(
        path,
        "not a safetensors file nor a PyTorch checkpoint (unrecognised header)",
    ))
}

fn checkpoint_err(path: &Path, reason: impl Into<String>) -> CocaError {
    CocaError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Reads every tensor of a checkpoint as f32, stripping a leading `module.` from the names.
pub fn read_state_dict(path: &Path) -> Result<StateDict> {
    let raw = match detect_format(path)? {
        CheckpointFormat::Safetensors => read_safetensors(path)?,
        CheckpointFormat::Pytorch => read_pytorch(path)?,
    };
    let mut out = StateDict::new();
    for (name, data) in raw {
        let key = name.strip_prefix("module.").unwrap_or(&name).to_string();
        let data = match data.dtype() {
            DType::F32 => data,
            DType::F64 | DType::F16 | DType::BF16 => data.convert::<f32>(),
            other => {
                return Err(checkpoint_err(
                    path,
                    format!("tensor `{name}` has unsupported dtype {other:?}"),
                ));
            }
        };
        if out.insert(key.clone(), data).is_some() {
            return Err(checkpoint_err(
                path,
                format!("key `{key}` appears twice (with and without `module.`)"),
            ));
        }
    }
    if out.is_empty() {
        return Err(checkpoint_err(path, "contains no tensors"));
    }
    Ok(out)
}

/// The float dtypes a safetensors file can hold here, both ways (`None`: not a float dtype
/// this crate reads or writes).
pub fn dtype_from_safetensors(dtype: safetensors::Dtype) -> Option<DType> {
    match dtype {
        safetensors::Dtype::F32 => Some(DType::F32),
        safetensors::Dtype::F16 => Some(DType::F16),
        safetensors::Dtype::BF16 => Some(DType::BF16),
        safetensors::Dtype::F64 => Some(DType::F64),
        _ => None,
    }
}

/// See [`dtype_from_safetensors`].
pub fn dtype_to_safetensors(dtype: DType) -> Option<safetensors::Dtype> {
    match dtype {
        DType::F32 => Some(safetensors::Dtype::F32),
        DType::F16 => Some(safetensors::Dtype::F16),
        DType::BF16 => Some(safetensors::Dtype::BF16),
        DType::F64 => Some(safetensors::Dtype::F64),
        _ => None,
    }
}

fn read_safetensors(path: &Path) -> Result<Vec<(String, TensorData)>> {
    let file = std::fs::File::open(path).map_err(|e| CocaError::io(path, e))?;
    // SAFETY: the map is read-only. f32 tensors keep referring to it (zero-copy: the pages are
    // read from the page cache when first used, and a tensor that is written to copies itself
    // first); a checkpoint truncated or rewritten in place by another process while a model
    // loaded from it is alive is outside the contract, as for any memory-mapped reader.
    // Exports never do that: they write a new file and rename it over the old one.
    let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| CocaError::io(path, e))?;
    let shared = bytes::Bytes::from_owner(map);
    let st = safetensors::SafeTensors::deserialize(&shared)
        .map_err(|e| checkpoint_err(path, format!("invalid safetensors file: {e}")))?;
    let mut out = Vec::new();
    for (name, view) in st.tensors() {
        let dtype = dtype_from_safetensors(view.dtype()).ok_or_else(|| {
            checkpoint_err(
                path,
                format!("tensor `{name}` has unsupported dtype {:?}", view.dtype()),
            )
        })?;
        let data = view.data();
        let bytes = if dtype == DType::F32 && (data.as_ptr() as usize).is_multiple_of(4) {
            // No copy: a window of the mapped file.
            Bytes::from_shared(shared.slice_ref(data), AllocationProperty::File)
        } else {
            // Other dtypes are converted to f32 anyway (and a misaligned f32 tensor cannot be
            // viewed in place): one copy into the buffer the tensor is built from.
            Bytes::from_bytes_vec(data.to_vec())
        };
        let data = TensorData::try_from_bytes(bytes, view.shape().to_vec(), dtype)
            .map_err(|e| checkpoint_err(path, format!("tensor `{name}`: {e}")))?;
        out.push((name, data));
    }
    Ok(out)
}

fn read_pytorch(path: &Path) -> Result<Vec<(String, TensorData)>> {
    let reader = burn::store::pytorch_reader::PytorchReader::new(path)
        .map_err(|e| checkpoint_err(path, format!("cannot read PyTorch checkpoint: {e}")))?;
    let mut out = Vec::new();
    for (name, tensor) in reader.into_tensors() {
        let pack = bridge::from_pytorch(tensor);
        let data = bridge::into_data(pack).map_err(|e| {
            checkpoint_err(
                path,
                format!("tensor `{name}` is unreadable (truncated file?): {e}"),
            )
        })?;
        out.push((name, data));
    }
    Ok(out)
}

/// Options for [`load_state_dict`].
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Key prefixes that may be absent from the file (those parameters keep their current values).
    pub allow_missing: Vec<String>,
    /// Key prefixes of the file that may be left unused.
    pub allow_unused: Vec<String>,
}

/// What a strict load found wrong.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LoadReport {
    pub missing: Vec<String>,
    pub unused: Vec<String>,
    /// `(key, expected shape, found shape)`.
    pub misshaped: Vec<(String, Vec<usize>, Vec<usize>)>,
}

impl LoadReport {
    fn is_ok(&self) -> bool {
        self.missing.is_empty() && self.unused.is_empty() && self.misshaped.is_empty()
    }

    fn describe(&self) -> String {
        let mut parts = Vec::new();
        let list = |keys: &[String]| {
            let shown: Vec<_> = keys.iter().take(20).map(String::as_str).collect();
            let more = keys.len().saturating_sub(20);
            format!(
                "{}{}",
                shown.join(", "),
                if more > 0 {
                    format!(" (+{more} more)")
                } else {
                    String::new()
                }
            )
        };
        if !self.missing.is_empty() {
            parts.push(format!(
                "{} missing key(s): {}",
                self.missing.len(),
                list(&self.missing)
            ));
        }
        if !self.unused.is_empty() {
            parts.push(format!(
                "{} unexpected key(s): {}",
                self.unused.len(),
                list(&self.unused)
            ));
        }
        if !self.misshaped.is_empty() {
            let shown: Vec<_> = self
                .misshaped
                .iter()
                .take(20)
                .map(|(k, e, f)| format!("{k} (model {e:?}, file {f:?})"))
                .collect();
            parts.push(format!(
                "{} misshaped key(s): {}",
                self.misshaped.len(),
                shown.join(", ")
            ));
        }
        parts.join("; ")
    }
}

/// The model's parameters as `(open_clip key, shape)`, without initialising any of them.
pub fn expected_keys(model: &Coca) -> Vec<(String, Vec<usize>)> {
    let mut visitor = KeyVisitor::default();
    model.visit(&mut visitor);
    visitor.keys
}

/// Collects parameter paths and shapes like `ModuleSnapshot::collect`, but from
/// `Param::lazy_shape`, so that lazily initialised parameters stay uninitialised.
#[derive(Default)]
struct KeyVisitor {
    path: Vec<String>,
    keys: Vec<(String, Vec<usize>)>,
}

impl KeyVisitor {
    fn record(&mut self, shape: burn::tensor::Shape) {
        let name = self.path.join(".");
        let shape = if SCALAR_KEYS.contains(&name.as_str()) {
            vec![]
        } else {
            shape.to_vec()
        };
        self.keys.push((name, shape));
    }
}

impl ModuleVisitor for KeyVisitor {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.record(param.lazy_shape());
    }

    fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
        self.record(param.lazy_shape());
    }

    fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
        self.record(param.lazy_shape());
    }
}

/// Loads `state` into `model` strictly; `path` names the source in errors.
pub fn load_state_dict(
    model: Coca,
    state: StateDict,
    path: &Path,
    options: &LoadOptions,
) -> Result<Coca> {
    let has_prefix =
        |key: &str, prefixes: &[String]| prefixes.iter().any(|p| key.starts_with(p.as_str()));
    let expected = expected_keys(&model);
    let mut report = LoadReport::default();
    let mut tensors = BTreeMap::new();
    let mut state = state;
    for (key, shape) in &expected {
        match state.remove(key) {
            None => {
                if !has_prefix(key, &options.allow_missing) {
                    report.missing.push(key.clone());
                }
            }
            Some(data) => {
                let found = data.shape().to_vec();
                if &found != shape {
                    report.misshaped.push((key.clone(), shape.clone(), found));
                    continue;
                }
                let data = if shape.is_empty() {
                    reshape_data(data, vec![1])
                } else {
                    data
                };
                tensors.insert(key.clone(), data);
            }
        }
    }
    report.unused = state
        .into_keys()
        .filter(|k| !has_prefix(k, &options.allow_unused))
        .collect();
    if !report.is_ok() {
        return Err(checkpoint_err(
            path,
            format!("does not match the model: {}", report.describe()),
        ));
    }
    Ok(model.map(&mut Loader {
        path: Vec::new(),
        tensors,
    }))
}

/// Moves each tensor of a checked state dict into the parameter of the same path (no copy:
/// `Tensor::from_data` keeps the buffer it is given), keeping the parameter's id and autodiff
/// setting. Parameters without a tensor (allowed missing) keep their current value.
struct Loader {
    path: Vec<String>,
    tensors: BTreeMap<String, TensorData>,
}

impl Loader {
    fn take(&mut self) -> Option<TensorData> {
        self.tensors.remove(&self.path.join("."))
    }
}

/// `param` with the loader's tensor for the current path, if it has one.
macro_rules! load_param {
    ($loader:expr, $param:expr) => {{
        let param = $param;
        match $loader.take() {
            Some(data) => {
                let device: Device = param.lazy_device();
                let id = param.id;
                // The file's dtype, not the device's default: f32 weights stay f32 on a bf16
                // device (the trainer's master weights; `precision::for_device` casts later).
                let dtype = data.dtype();
                param.transform_for_load(Tensor::from_data(data, (&device, dtype)), id)
            }
            None => param,
        }
    }};
}

impl ModuleMapper for Loader {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        load_param!(self, param)
    }

    fn map_int<const D: usize>(&mut self, param: Param<Tensor<D, Int>>) -> Param<Tensor<D, Int>> {
        load_param!(self, param)
    }

    fn map_bool<const D: usize>(
        &mut self,
        param: Param<Tensor<D, Bool>>,
    ) -> Param<Tensor<D, Bool>> {
        load_param!(self, param)
    }
}

fn reshape_data(data: TensorData, shape: Vec<usize>) -> TensorData {
    let dtype = data.dtype();
    let (bytes, _, _) = data.into_parts();
    TensorData::from_bytes(bytes, shape, dtype)
}

/// The model's weights as an open_clip state dict (f32, scalars back to 0-d).
pub fn state_dict(model: &Coca) -> Result<StateDict> {
    let mut out = StateDict::new();
    for t in model.clone().collect(None, None, false) {
        let name = t.name.clone();
        let data = bridge::into_data(t)
            .map_err(|e| CocaError::Invalid(format!("cannot read parameter `{name}`: {e}")))?
            .convert::<f32>();
        let data = if SCALAR_KEYS.contains(&name.as_str()) {
            reshape_data(data, vec![])
        } else {
            data
        };
        out.insert(name, data);
    }
    Ok(out)
}

/// Writes tensors as a safetensors file atomically (temporary file, then rename).
pub fn write_safetensors(
    path: &Path,
    tensors: &StateDict,
    metadata: Option<BTreeMap<String, String>>,
) -> Result<()> {
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(name, data)| {
            safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                data.shape().to_vec(),
                data.as_bytes(),
            )
            .map(|v| (name.clone(), v))
            .map_err(|e| CocaError::Invalid(format!("tensor `{name}`: {e}")))
        })
        .collect::<Result<_>>()?;
    let metadata = metadata.map(|m| m.into_iter().collect());
    let bytes = safetensors::serialize(views, metadata)
        .map_err(|e| CocaError::Invalid(format!("cannot serialise {}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}

/// Writes `bytes` to `path` through a temporary file in the same directory and a rename, so a
/// crash never leaves a half-written file under the final name.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| CocaError::io(dir, e))?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp: PathBuf = dir.join(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(CocaError::io(path, e));
    }
    Ok(())
}

/// Saves the model as `open_clip_model.safetensors`-compatible weights.
pub fn save_open_clip(model: &Coca, path: &Path) -> Result<()> {
    write_safetensors(path, &state_dict(model)?, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::CocaConfig;

    /// The lazy key listing names exactly what burn's snapshot collects, and leaves a fresh
    /// model uninitialised.
    #[test]
    fn expected_keys_match_snapshot_and_stay_lazy() {
        let device = burn::tensor::Device::flex();
        let model = Coca::new(&CocaConfig::tiny(), &device);
        let keys = expected_keys(&model);
        assert!(!model.visual.conv1.weight.is_initialized());
        let collected: Vec<(String, Vec<usize>)> = model
            .collect(None, None, false)
            .into_iter()
            .map(|t| {
                let shape = if SCALAR_KEYS.contains(&t.name.as_str()) {
                    vec![]
                } else {
                    t.shape.to_vec()
                };
                (t.name, shape)
            })
            .collect();
        assert!(!keys.is_empty());
        assert_eq!(keys, collected);
    }
}
