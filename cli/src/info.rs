//! `nlcl info`: what a model file is (origin, architecture, metadata) and whether ONNX Runtime
//! accepts it under the model contract (input `rainy`, output `clean`, `[N,3,H,W]` float32).

use std::io::Write;

use anyhow::{Context, Result, bail};
use nlcl::family::ModelSource;
use nlcl::runtime::{Model, RuntimeError, SessionOptions};

/// Prints the report; a model that breaks the contract is an error saying what is wrong.
pub fn run(model: Option<&str>) -> Result<()> {
    let source = model.map(ModelSource::parse).unwrap_or_default();
    let (bytes, origin) = source.bytes()?;
    let metadata =
        nlcl::onnx::read_metadata(&bytes).with_context(|| format!("reading {origin}"))?;
    let mut report = format!("model: {origin} ({:.1} KiB)\n", bytes.len() as f64 / 1024.0);
    if let Some((_, tag)) = metadata.iter().find(|(k, _)| k == nlcl::onnx::meta::ARCH)
        && let Ok(spec) = nlcl::ModelSpec::from_tag(tag)
    {
        report += &format!(
            "architecture: {tag} (width {}, depth {}, unshuffle {}, global residual {}, instance norm {}, detail radius {}), {} parameters per generator, {:.1} kMAC per pixel\n",
            spec.width,
            spec.depth,
            spec.unshuffle,
            spec.global_residual,
            spec.instance_norm,
            spec.detail_radius,
            spec.parameter_count(),
            spec.macs_per_pixel() as f64 / 1e3
        );
    }
    for (k, v) in &metadata {
        report += &format!("{k}: {v}\n");
    }
    let contract = match Model::from_bytes(&bytes, &origin, &SessionOptions::default()) {
        Ok(m) => {
            let info = m.info();
            let sizes = match info.fixed_size {
                Some((h, w)) => format!("fixed to {w}x{h}"),
                None => format!("any size, padded to a multiple of {}", info.size_multiple),
            };
            let outputs = if info.has_rain {
                "clean and rain"
            } else {
                "clean"
            };
            Ok(format!(
                "contract: ok (input rainy, outputs {outputs}; frames {sizes}; batch {})\n",
                info.fixed_batch
                    .map_or("any".to_string(), |n| format!("fixed to {n}"))
            ))
        }
        Err(e @ RuntimeError::LibraryNotFound { .. }) => Ok(format!(
            "contract: not checked, ONNX Runtime is needed for that ({e})\n"
        )),
        Err(e) => Err(e),
    };
    match &contract {
        Ok(line) => report += line,
        Err(e) => report += &format!("contract: BROKEN: {e}\n"),
    }
    // `nlcl info | head -1` closes the pipe early: that is not an error.
    let mut out = std::io::stdout().lock();
    match out.write_all(report.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            return Err(e).context("writing to standard output");
        }
        _ => {}
    }
    if let Err(e) = contract {
        bail!("{origin} cannot be used by nlcl: {e}");
    }
    Ok(())
}
