//! Export of a trained run to the ONNX model the element runs, through the engine's writer
//! ([`nlcl::onnx::write_model`]), so the exported graph is built from the same [`ModelSpec`].

use std::path::PathBuf;

use anyhow::{Context, bail};
use nlcl::onnx::{ExportConfig, Weights, meta, write_model};
use nlcl::spec::{BACK_PREFIX, ModelSpec, RAIN_PREFIX};

use crate::checkpoint::{Checkpoint, checkpoint_path};

/// What the exported model is for (recorded as `nlcl.task`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Task {
    /// Rain removal.
    Derain,
    /// Haze removal (same method, hazy vs clean images).
    Dehaze,
}

impl Task {
    /// The metadata value.
    pub fn as_str(&self) -> &'static str {
        match self {
            Task::Derain => "derain",
            Task::Dehaze => "dehaze",
        }
    }
}

/// Options of `nlcl export` / `nlcl-train export`.
#[derive(Debug, Clone, clap::Args)]
pub struct ExportArgs {
    /// Run folder (its last.safetensors) or a checkpoint file.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Output ONNX file.
    #[arg(short = 'o', long = "output", value_name = "MODEL.onnx")]
    pub output: PathBuf,
    /// Task recorded in the metadata.
    #[arg(long, value_enum, default_value_t = Task::Derain)]
    pub task: Task,
    /// Also export the rain-layer generator as output `rain`.
    #[arg(long)]
    pub with_rain: bool,
    /// Evaluation numbers to record (`nlcl.eval`), e.g. "Rain100L 27.9/0.85".
    #[arg(long)]
    pub eval: Option<String>,
    /// This model's rain-meter threshold in levels (`nlcl.rain_threshold`): the mean
    /// |input - output| between its dry and rainy frames (bench/auto-bypass.sh prints both);
    /// nlclderain's auto-bypass uses it unless rain-threshold is set.
    #[arg(long, value_name = "LEVELS")]
    pub rain_threshold: Option<f64>,
    /// Dead zone in 8-bit levels (`nlcl.dead_zone`): where the network would change a pixel
    /// by less than about this much, the change is faded out (a half at LEVELS, 0.9 at three
    /// times it), so dry frames pass untouched and steady while streaks, tens of levels, are
    /// removed as before. 0 = none.
    #[arg(long, value_name = "LEVELS", default_value_t = 0.0)]
    pub dead_zone: f32,
    /// Write the float16 variant: half-precision weights and arithmetic (half the file; GPU
    /// tensor cores), float32 input and outputs as always. Metadata `nlcl.precision=float16`.
    #[arg(long)]
    pub float16: bool,
}

/// The generator weights (`back.*` and, with `with_rain`, `rain.*`) of a checkpoint, checked
/// against the spec's conv list; their moving averages where the run kept them (`--ema`).
pub fn generator_weights(
    ck: &Checkpoint,
    spec: &ModelSpec,
    with_rain: bool,
) -> anyhow::Result<Weights> {
    let mut w = Weights::new();
    let mut prefixes = vec![BACK_PREFIX];
    if with_rain {
        prefixes.push(RAIN_PREFIX);
    }
    for prefix in prefixes {
        for conv in spec.convs() {
            for part in ["weight", "bias"] {
                let name = format!("{prefix}{}.{part}", conv.name);
                let Some((shape, data)) = ck.inference_tensor(&name) else {
                    if prefix == RAIN_PREFIX {
                        bail!(
                            "--with-rain: the checkpoint has no rain generator ({name} missing; CUT runs have none)"
                        );
                    }
                    bail!("checkpoint lacks {name}");
                };
                w.insert(name, shape.to_vec(), data.to_vec())?;
            }
        }
    }
    Ok(w)
}

/// Builds the ONNX model bytes for a checkpoint.
pub fn export_bytes(
    ck: &Checkpoint,
    task: Task,
    with_rain: bool,
    eval: Option<&str>,
    rain_threshold: Option<f64>,
    dead_zone: f32,
) -> anyhow::Result<Vec<u8>> {
    let spec = ck.spec()?;
    let weights = generator_weights(ck, &spec, with_rain)?;
    let mut metadata = vec![
        (meta::TASK.to_string(), task.as_str().to_string()),
        (meta::STEPS.to_string(), ck.step().to_string()),
    ];
    // The options and data recipe pass through under the same keys.
    for key in [meta::TRAINER, meta::DATA] {
        if let Some(v) = ck.metadata.get(key) {
            metadata.push((key.to_string(), v.clone()));
        }
    }
    if let Some(e) = eval {
        metadata.push((meta::EVAL.to_string(), e.to_string()));
    }
    if let Some(t) = rain_threshold {
        if !nlcl::rain_meter::is_valid_threshold(t) {
            bail!("--rain-threshold {t}: must be a number of levels in [0, 255]");
        }
        metadata.push((meta::RAIN_THRESHOLD.to_string(), t.to_string()));
    }
    let config = ExportConfig {
        spec,
        include_rain: with_rain,
        metadata,
        dead_zone,
    };
    Ok(write_model(&config, &weights)?)
}

/// Exports a run's last checkpoint (or a checkpoint file) as an ONNX model.
pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let path = checkpoint_path(&args.run);
    let ck = Checkpoint::load(&path)?;
    let mut bytes = export_bytes(
        &ck,
        args.task,
        args.with_rain,
        args.eval.as_deref(),
        args.rain_threshold,
        args.dead_zone,
    )?;
    if args.float16 {
        bytes = nlcl::onnx::float16::to_float16(&bytes)?;
    }
    std::fs::write(&args.output, &bytes)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "wrote {} ({} bytes, {}{} at step {}, from {})",
        args.output.display(),
        bytes.len(),
        ck.arch().unwrap_or("?"),
        if args.float16 { " float16" } else { "" },
        ck.step(),
        path.display()
    );
    Ok(())
}
