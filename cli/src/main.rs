//! `nlcl`: derain images, evaluate models, show what a model file is.
//!
//! Inference commands need only ONNX Runtime; `train` and `export` need the `train` feature
//! (libtorch).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod bench;
mod eval;
mod images;

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
    /// ONNX model; the built-in default model when omitted.
    #[arg(long, short = 'm')]
    pub model: Option<PathBuf>,
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
    pub fn open(&self) -> Result<Model> {
        let options = SessionOptions {
            provider: Provider::from_name(&self.provider)?,
            device_id: self.device_id,
            threads: self.threads,
            ..SessionOptions::default()
        };
        let model = Model::open_or_default(self.model.as_deref(), &options)?;
        if let Some(reason) = &model.info().fallback {
            eprintln!("warning: {reason}");
        }
        Ok(model)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Derain image files or folders of images; writes the results (and side-by-side sheets).
    Derain {
        /// Image files (PNG, JPEG) or folders of them.
        #[arg(required = true)]
        inputs: Vec<PathBuf>,
        /// Output folder.
        #[arg(long, short = 'o')]
        out: PathBuf,
        /// Also write NAME-side-by-side.png (input | derained).
        #[arg(long)]
        side_by_side: bool,
        #[command(flatten)]
        model: ModelArgs,
    },
    /// Y-PSNR / SSIM of a model on paired images, and do-no-harm on clean images.
    Eval(eval::EvalArgs),
    /// Show a model file's architecture, outputs and provenance metadata.
    Info {
        /// ONNX model; the built-in default model when omitted.
        model: Option<PathBuf>,
    },
    /// Benchmarks: the element vs the bare session and vs a Python loop, conversion vs memcpy.
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
    },
    /// Train NLCL generators on unpaired rainy and clean images (needs libtorch).
    #[cfg(feature = "train")]
    Train(nlcl_train::TrainArgs),
    /// Export a training run's generator(s) as an ONNX model.
    #[cfg(feature = "train")]
    Export(nlcl_train::ExportArgs),
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Derain {
            inputs,
            out,
            side_by_side,
            model,
        } => derain(&inputs, &out, side_by_side, &model),
        Command::Eval(args) => eval::run(&args),
        Command::Info { model } => info(model.as_deref()),
        Command::Bench(args) => bench::run(&args),
        Command::RenderRain { inputs, out, seed } => render_rain(&inputs, &out, seed),
        #[cfg(feature = "train")]
        Command::Train(args) => nlcl_train::train(&args),
        #[cfg(feature = "train")]
        Command::Export(args) => nlcl_train::export(&args),
    }
}

fn derain(
    inputs: &[PathBuf],
    out: &Path,
    side_by_side: bool,
    model_args: &ModelArgs,
) -> Result<()> {
    let files = images::collect(inputs)?;
    if files.is_empty() {
        bail!("no PNG or JPEG images found in {inputs:?}");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut model = model_args.open()?;
    let bar = images::progress(files.len() as u64, "derain");
    let started = std::time::Instant::now();
    let mut failed = 0usize;
    let mut pixels = 0usize;
    for file in &files {
        bar.set_message(
            file.file_name()
                .map(|n| n.to_string_lossy().to_string())
                .unwrap_or_default(),
        );
        let result = (|| -> Result<()> {
            let img = images::load_rgb(file)?;
            let (w, h) = (img.width() as usize, img.height() as usize);
            let clean = model.derain_rgb8(img.as_raw(), w, h)?;
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default();
            let clean_img = image::RgbImage::from_raw(w as u32, h as u32, clean)
                .context("output buffer size")?;
            let dst = out.join(format!("{stem}.png"));
            clean_img
                .save(&dst)
                .with_context(|| format!("writing {}", dst.display()))?;
            if side_by_side {
                let sheet = images::side_by_side(&[&img, &clean_img]);
                let dst = out.join(format!("{stem}-side-by-side.png"));
                sheet
                    .save(&dst)
                    .with_context(|| format!("writing {}", dst.display()))?;
            }
            pixels += w * h;
            Ok(())
        })();
        if let Err(e) = result {
            bar.suspend(|| eprintln!("skipped {}: {e:#}", file.display()));
            failed += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    println!(
        "derained {} of {} images ({:.1} Mpixel) in {:.1} s with {} on {}; results in {}{}",
        files.len() - failed,
        files.len(),
        pixels as f64 / 1e6,
        secs,
        model.info().origin,
        model.info().provider,
        out.display(),
        if failed > 0 {
            format!("; {failed} skipped (see above)")
        } else {
            String::new()
        }
    );
    if failed == files.len() {
        bail!("no image could be derained");
    }
    Ok(())
}

fn render_rain(inputs: &[PathBuf], out: &Path, seed: u64) -> Result<()> {
    use nlcl::render::{RainStyle, render_rain};
    let files = images::collect(inputs)?;
    if files.is_empty() {
        bail!("no PNG or JPEG images found in {inputs:?}");
    }
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let mut rng = nlcl::rng::Rng::new(seed);
    let style = RainStyle::default();
    for file in &files {
        let img = images::load_rgb(file)?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let n = w * h;
        let mut planes = vec![0f32; 3 * n];
        for (i, p) in img.pixels().enumerate() {
            for c in 0..3 {
                planes[c * n + i] = p.0[c] as f32 / 255.0;
            }
        }
        render_rain(&mut planes, w, h, &style, &mut rng);
        let rainy = image::RgbImage::from_fn(w as u32, h as u32, |x, y| {
            let i = y as usize * w + x as usize;
            image::Rgb(std::array::from_fn(|c| {
                (planes[c * n + i] * 255.0).round() as u8
            }))
        });
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_default();
        let dst = out.join(format!("{stem}.png"));
        rainy
            .save(&dst)
            .with_context(|| format!("writing {}", dst.display()))?;
    }
    println!(
        "rendered rain on {} images into {}",
        files.len(),
        out.display()
    );
    Ok(())
}

fn info(path: Option<&Path>) -> Result<()> {
    let (origin, bytes) = match path {
        Some(p) => (
            p.display().to_string(),
            std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
        ),
        None => (
            "built-in default model".to_string(),
            nlcl::DEFAULT_MODEL
                .context("this build has no built-in default model")?
                .to_vec(),
        ),
    };
    let metadata =
        nlcl::onnx::read_metadata(&bytes).with_context(|| format!("reading {origin}"))?;
    println!("model: {origin} ({:.1} KiB)", bytes.len() as f64 / 1024.0);
    if let Some((_, tag)) = metadata.iter().find(|(k, _)| k == nlcl::onnx::meta::ARCH)
        && let Ok(spec) = nlcl::ModelSpec::from_tag(tag)
    {
        println!(
            "architecture: {tag} (width {}, depth {}, unshuffle {}, global residual {}), {} parameters per generator, {:.1} kMAC per pixel",
            spec.width,
            spec.depth,
            spec.unshuffle,
            spec.global_residual,
            spec.parameter_count(),
            spec.macs_per_pixel() as f64 / 1e3
        );
    }
    for (k, v) in &metadata {
        println!("{k}: {v}");
    }
    Ok(())
}
