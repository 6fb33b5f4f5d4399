//! `nlcl`: derain images, evaluate models, show what a model file is.
//!
//! Inference commands need only ONNX Runtime; `train`, `export` and `adapt` hand training over
//! to the `nlcl-train` program (libtorch), so this one never needs libtorch to start.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod adapt;
#[cfg(feature = "gstreamer")]
mod bench;
mod derain;
mod eval;
mod float16;
mod images;
mod info;
mod int8;
mod rain_fit;
#[cfg(feature = "gstreamer")]
mod relay;
#[cfg(feature = "gstreamer")]
mod signals;
mod trainer;
#[cfg(feature = "gstreamer")]
mod video;
mod video_files;

use nlcl::family::ModelSource;
use nlcl::runtime::{Model, Provider, SessionOptions};

#[derive(Parser)]
#[command(
    name = "nlcl",
    version,
    about = "Remove rain from images and video with NLCL models"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Options shared by every command that runs a model.
#[derive(clap::Args, Clone)]
pub struct ModelArgs {
    /// Model: `lite` (built in, the default), `standard` or `full` (the model family, see
    /// models/MODELS.md), or an ONNX file.
    #[arg(long, short = 'm', value_name = "NAME|FILE")]
    pub model: Option<String>,
    /// An ONNX model file (as `--model FILE`, also for a file named like a model of the family).
    #[arg(long, value_name = "FILE", conflicts_with = "model")]
    pub model_file: Option<PathBuf>,
    /// Execution provider: cpu, cuda or tensorrt.
    #[arg(long, default_value = "cpu")]
    pub provider: String,
    /// GPU ordinal for cuda / tensorrt.
    #[arg(long, default_value_t = 0)]
    pub device_id: i32,
    /// Intra-op threads (0 = one per physical core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
}

impl ModelArgs {
    /// The model asked for: `--model-file`, else `--model`, else the built-in `lite`.
    pub fn source(&self) -> ModelSource {
        match (&self.model_file, &self.model) {
            (Some(file), _) => ModelSource::File(file.clone()),
            (None, Some(m)) => ModelSource::parse(m),
            (None, None) => ModelSource::default(),
        }
    }

    pub fn open(&self) -> Result<Model> {
        let (threads, lowered) = nlcl::runtime::bound_threads(self.threads);
        if let Some(msg) = lowered {
            eprintln!("warning: {msg} (--threads)");
        }
        let options = SessionOptions {
            provider: Provider::from_name(&self.provider)?,
            device_id: self.device_id,
            threads,
            ..SessionOptions::default()
        };
        let model = Model::open_source(&self.source(), &options)?;
        if let Some(reason) = &model.info().fallback {
            eprintln!("warning: {reason}");
        }
        Ok(model)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Derain images and videos (files or folders); writes PNGs, H.264 MP4s, side-by-sides.
    Derain(derain::DerainArgs),
    /// Y-PSNR / SSIM of a model on paired images, and do-no-harm on clean images.
    Eval(eval::EvalArgs),
    /// Show a model file's architecture, outputs and provenance metadata.
    Info {
        /// `lite` (the default), `standard`, `full`, or an ONNX file.
        #[arg(value_name = "NAME|FILE")]
        model: Option<String>,
    },
    /// Write a model's float16 variant (for GPUs: half the file, half-precision arithmetic;
    /// float32 input and outputs as always).
    Float16 {
        /// `lite` (the default), `standard`, `full`, or an ONNX file written by nlcl.
        #[arg(value_name = "NAME|FILE")]
        model: Option<String>,
        /// Output ONNX file.
        #[arg(short = 'o', long = "output", value_name = "MODEL.onnx")]
        output: PathBuf,
    },
    /// Write a model's INT8 variant (integer convolutions on the CPU), calibrated on images
    /// like those it will see (rainy and dry frames of the camera, or photos of such scenes).
    Int8 {
        /// `lite` (the default), `standard`, `full`, or an ONNX file written by nlcl.
        #[arg(value_name = "NAME|FILE")]
        model: Option<String>,
        /// Calibration images: files or folders (repeatable).
        #[arg(long, required = true, num_args = 1.., value_name = "IMAGES")]
        calibration: Vec<PathBuf>,
        /// Each activation is quantized over the range holding this percentage of its
        /// calibration values (the rarest extremes saturate); 100 = the whole range.
        #[arg(long, default_value_t = 99.99)]
        percentile: f64,
        /// Output ONNX file.
        #[arg(short = 'o', long = "output", value_name = "MODEL.onnx")]
        output: PathBuf,
    },
    /// Benchmarks: the element vs the bare session and vs a Python loop, conversion vs memcpy.
    #[cfg(feature = "gstreamer")]
    Bench(bench::BenchArgs),
    /// Render synthetic rain on images (streaks of varied angle, length and density).
    RenderRain {
        /// Image files or folders.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder (PNG, same names).
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Seed of the random rain; the same seed gives the same rain.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Renderer style: `realistic` (light and heavy rain, accumulation veil, drops, dark
        /// streaks on bright sky), `light` (light streaks only), `mixed` (each image light or
        /// realistic at even odds), `classic` (untapered noise-and-motion-blur streaks, the
        /// recipe of most synthetic deraining sets) or `broad` (a third each: classic, light,
        /// realistic).
        #[arg(long, default_value = "realistic")]
        style: String,
        /// Share of the heavy-rain images rendered as sharp downpours (dense thin unblurred
        /// streaks; the trainer's --rain-sharp-downpour). Default: the style's (none).
        #[arg(long, value_name = "P")]
        sharp_downpour: Option<f32>,
        /// Render straight streaks drawn from these ranges instead of a style, in the form
        /// `nlcl adapt` writes its fit (`rain-fit.txt`), e.g. `angle=-5:10 length=10:40
        /// coverage=0.005:0.02 brightness=0.08:0.2 blur=0:1`: rain of one kind, to test a fit
        /// or a model on.
        #[arg(long, value_name = "RANGES", conflicts_with = "style")]
        streaks: Option<String>,
        /// Render haze instead of rain (atmospheric scattering over a depth proxy, see
        /// `nlcl::haze`; --style is then unused): dehazing validation sets and samples.
        #[arg(long)]
        haze: bool,
        /// Write a paired set for `nlcl eval --pairs`: OUT/input/NAME.png (rainy) and
        /// OUT/target/NAME.png (the original).
        #[arg(long)]
        pairs: bool,
        /// Also write a contact sheet to this PNG: one row per image, original | rendered.
        #[arg(long, value_name = "PNG")]
        sheet: Option<PathBuf>,
    },
    /// Train NLCL generators (runs `nlcl-train train`, which needs libtorch; see its --help).
    #[command(disable_help_flag = true)]
    Train {
        /// Arguments of `nlcl-train train`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<std::ffi::OsString>,
    },
    /// Export a training run as an ONNX model (runs `nlcl-train export`).
    #[command(disable_help_flag = true)]
    Export {
        /// Arguments of `nlcl-train export`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true, num_args = 0..)]
        args: Vec<std::ffi::OsString>,
    },
    /// Fine-tune a model to one camera from its own rainy (and optionally dry) footage, with no
    /// ground truth (training runs in `nlcl-train`, which needs libtorch).
    Adapt(adapt::AdaptArgs),
    /// Serve a source (RTSP camera, file, HTTP stream) derained over RTSP as H.264; clients
    /// share one derain pass, and a dropped source is reconnected while they stay connected.
    #[cfg(feature = "gstreamer")]
    Relay(relay::RelayArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Derain(args) => derain::run(&args),
        Command::Eval(args) => eval::run(&args),
        Command::Info { model } => info::run(model.as_deref()),
        Command::Float16 { model, output } => float16::run(model.as_deref(), &output),
        Command::Int8 {
            model,
            calibration,
            percentile,
            output,
        } => int8::run(model.as_deref(), &calibration, percentile, &output),
        #[cfg(feature = "gstreamer")]
        Command::Bench(args) => bench::run(&args),
        Command::RenderRain {
            inputs,
            out,
            seed,
            style,
            sharp_downpour,
            streaks,
            haze,
            pairs,
            sheet,
        } => {
            let mut style = rain_style(&style, sharp_downpour)?;
            if let Some(text) = streaks {
                style.fitted = nlcl::synthetic_rain::parse_streak_ranges_list(&text)
                    .with_context(|| format!("--streaks {text:?}"))?;
                style.fitted_share = 1.0;
            }
            render_rain(&inputs, &out, seed, &style, haze, pairs, sheet.as_deref())
        }
        Command::Train { args } => trainer::run(std::iter::once("train".into()).chain(args)),
        Command::Export { args } => trainer::run(std::iter::once("export".into()).chain(args)),
        Command::Adapt(args) => adapt::run(&args),
        #[cfg(feature = "gstreamer")]
        Command::Relay(args) => relay::run(&args),
    }
}

/// The renderer style `render-rain`'s options name.
fn rain_style(name: &str, sharp_downpour: Option<f32>) -> Result<nlcl::synthetic_rain::RainStyle> {
    use nlcl::synthetic_rain::RainStyle;
    let mut style = RainStyle::by_name(name).with_context(|| {
        format!(
            "--style {name:?}: expected one of {}",
            RainStyle::NAMES.join(", ")
        )
    })?;
    if let Some(p) = sharp_downpour {
        if !(0.0..=1.0).contains(&p) {
            bail!("--sharp-downpour {p}: must be a probability in [0, 1]");
        }
        style.sharp_downpour = p;
    }
    Ok(style)
}

fn render_rain(
    inputs: &[PathBuf],
    out: &Path,
    seed: u64,
    style: &nlcl::synthetic_rain::RainStyle,
    haze: bool,
    pairs: bool,
    sheet: Option<&Path>,
) -> Result<()> {
    use nlcl::synthetic_rain::render_rain;
    let files = images::collect(inputs)?;
    if files.is_empty() {
        bail!("no PNG or JPEG images found in {inputs:?}");
    }
    let (rainy_dir, target_dir) = if pairs {
        (out.join("input"), Some(out.join("target")))
    } else {
        (out.to_path_buf(), None)
    };
    for d in std::iter::once(&rainy_dir).chain(&target_dir) {
        std::fs::create_dir_all(d).with_context(|| format!("creating {}", d.display()))?;
    }
    let mut rng = nlcl::rng::Rng::new(seed);
    let mut written = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for file in &files {
        let img = images::load_rgb(file)?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut planes = images::to_planar(&img);
        if haze {
            nlcl::haze::render_haze(
                &mut planes,
                w,
                h,
                &nlcl::haze::HazeStyle::default(),
                &mut rng,
            );
        } else {
            render_rain(&mut planes, w, h, style, &mut rng);
        }
        let rainy = images::from_planar(&planes, w, h);
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        // Inputs from different folders may share a name: never let one overwrite another.
        let mut name = format!("{stem}.png");
        if !written.insert(name.clone()) {
            let parent = file
                .parent()
                .and_then(|p| p.file_name())
                .map(|p| p.to_string_lossy().to_string())
                .unwrap_or_default();
            name = format!("{parent}_{stem}.png");
            if !written.insert(name.clone()) {
                bail!(
                    "two inputs would both be written as {name}: {}",
                    file.display()
                );
            }
        }
        let dst = rainy_dir.join(&name);
        rainy
            .save(&dst)
            .with_context(|| format!("writing {}", dst.display()))?;
        if let Some(t) = &target_dir {
            let dst = t.join(&name);
            img.save(&dst)
                .with_context(|| format!("writing {}", dst.display()))?;
        }
        if sheet.is_some() {
            rows.push(images::side_by_side(&[&img, &rainy]));
        }
    }
    if let Some(path) = sheet {
        images::write_rows(&rows, path)?;
    }
    println!(
        "rendered {} on {} images into {}",
        if haze { "haze" } else { "rain" },
        files.len(),
        out.display()
    );
    Ok(())
}
