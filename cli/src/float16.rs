//! `nlcl float16`: writes the half-precision variant of a model (any of the family, or a file
//! exported by `nlcl export`), for GPUs: half the file, tensor-core convolutions, the same
//! float32 input and outputs.

use std::path::Path;

use anyhow::{Context, Result};
use nlcl::family::ModelSource;

/// Converts `model` (a name or a file; the built-in `lite` when absent) and writes `out`.
pub fn run(model: Option<&str>, out: &Path) -> Result<()> {
    let source = model.map(ModelSource::parse).unwrap_or_default();
    let (bytes, origin) = source.bytes()?;
    let half =
        nlcl::onnx::float16::to_float16(&bytes).with_context(|| format!("converting {origin}"))?;
    std::fs::write(out, &half).with_context(|| format!("writing {}", out.display()))?;
    println!(
        "wrote {} ({:.1} KiB, float16 variant of {origin}, {:.1} KiB)",
        out.display(),
        half.len() as f64 / 1024.0,
        bytes.len() as f64 / 1024.0
    );
    Ok(())
}
