//! `nlcl eval`: Y-PSNR / SSIM on paired folders, do-no-harm on clean images (both scored by
//! the engine's evaluator, [`nlcl::evaluate`], which `nlcl-train eval` shares), and video
//! steadiness.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nlcl::evaluate::{self, DoNoHarm, Event, PairScores, Rgb8};
use nlcl::temporal::ChangeSmoother;

use crate::ModelArgs;
use crate::images;

#[derive(clap::Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Folder with `input/` and `target/` (or `rain/` and `norain/`) holding same-named images.
    #[arg(long)]
    pub pairs: Option<PathBuf>,
    /// Folder of rain-free images: measures do-no-harm, PSNR(model(x), x).
    #[arg(long)]
    pub clean: Option<PathBuf>,
    /// Folder of consecutive video frames (sorted by name): video steadiness, the mean
    /// frame-to-frame change of the output against that of the input (repeatable).
    #[arg(long, value_name = "DIR")]
    pub frames: Vec<PathBuf>,
    /// Where the per-image CSV and the PNG sheets go.
    #[arg(long, short = 'o', default_value = "nlcl-eval")]
    pub out: PathBuf,
    /// Rows in the side-by-side sheet.
    #[arg(long, default_value_t = 4)]
    pub sheet_rows: usize,
    /// Carry the model's change over still samples from image to image, as the element's
    /// `temporal-smoothing` property does (0 = off, up to 0.99). For folders of frames of one
    /// clip: each folder's images are taken in name order as consecutive frames.
    #[arg(long, default_value_t = 0.0, value_name = "CARRY")]
    pub temporal_smoothing: f32,
    /// With --temporal-smoothing: the input change (levels) at which the carry halves, as the
    /// element's `motion-threshold`.
    #[arg(long, default_value_t = nlcl::temporal::DEFAULT_MOTION_LEVELS, value_name = "LEVELS")]
    pub motion_threshold: f32,
}

impl EvalArgs {
    /// A fresh smoother for one folder (off unless --temporal-smoothing is given).
    fn smoother(&self) -> Result<ChangeSmoother> {
        Ok(ChangeSmoother::new(
            self.temporal_smoothing,
            self.motion_threshold,
        )?)
    }
}

pub fn run(args: &EvalArgs) -> Result<()> {
    if args.pairs.is_none() && args.clean.is_none() && args.frames.is_empty() {
        bail!("give --pairs DIR, --clean DIR and/or --frames DIR");
    }
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    args.smoother()?;
    let mut model = args.model.open()?;
    println!(
        "model: {} on {}",
        model.info().origin,
        model.info().provider
    );
    if let Some(dir) = &args.pairs {
        let mut smoother = args.smoother()?;
        let (s, worst) = eval_pairs(&mut model, &mut smoother, dir, &args.out, args.sheet_rows)?;
        println!(
            "pairs {}: input  Y-PSNR {:.2} dB  SSIM {:.4}\n{:width$}  output Y-PSNR {:.2} dB  SSIM {:.4}  (gain {:+.2} dB, {:+.4})",
            dir.display(),
            s.input_psnr,
            s.input_ssim,
            "",
            s.output_psnr,
            s.output_ssim,
            s.output_psnr - s.input_psnr,
            s.output_ssim - s.input_ssim,
            width = format!("pairs {}:", dir.display()).len()
        );
        // A mean hides a model that ruins one image (thin bright lines taken for streaks).
        if let Some((name, gain)) = worst {
            println!("  worst image: {name} (gain {gain:+.2} dB)");
        }
    }
    if let Some(dir) = &args.clean {
        let (d, worst) = eval_clean(&mut model, &mut args.smoother()?, dir, &args.out)?;
        println!(
            "do-no-harm {}: PSNR(model(x), x) Y {:.2} dB, RGB {:.2} dB; mean colour shift \
             R {:+.2} G {:+.2} B {:+.2} levels",
            dir.display(),
            d.psnr_y,
            d.psnr_rgb,
            d.shift[0],
            d.shift[1],
            d.shift[2]
        );
        if let Some((name, psnr)) = worst {
            println!("  worst image: {name} (Y {psnr:.2} dB)");
        }
    }
    for dir in &args.frames {
        let s = eval_frames(&mut model, &mut args.smoother()?, dir)?;
        println!(
            "steadiness {}: mean frame-to-frame change input {:.3}, output {:.3} levels \
             (output/input {:.3}; below 1 = steadier than the input) over {} frames",
            dir.display(),
            s.input,
            s.output,
            s.output / s.input.max(1e-9),
            s.frames
        );
    }
    println!("per-image CSV and sheets in {}", args.out.display());
    Ok(())
}

/// Mean absolute change between consecutive frames (8-bit levels, all channels).
#[derive(Debug, Clone, Copy)]
pub struct Steadiness {
    pub input: f64,
    pub output: f64,
    pub frames: usize,
}

/// Derains a folder of consecutive frames one at a time (as the element does) and compares how
/// much the output changes from frame to frame with how much the input does: rain flickers, so
/// a good model's output is steadier than its rainy input, and on dry footage no less steady.
/// `smoother` runs on each output in turn, as in the element.
pub fn eval_frames(
    model: &mut nlcl::runtime::Model,
    smoother: &mut ChangeSmoother,
    dir: &Path,
) -> Result<Steadiness> {
    let files = images::collect(&[dir.to_path_buf()])?;
    if files.len() < 2 {
        bail!("{}: at least two frames are needed", dir.display());
    }
    let mean_abs = |a: &[u8], b: &[u8]| {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(x.abs_diff(*y)))
            .sum::<f64>()
            / a.len().max(1) as f64
    };
    let bar = images::progress(files.len() as u64, "steadiness");
    let (mut prev_in, mut prev_out): (Option<image::RgbImage>, Option<Vec<u8>>) = (None, None);
    let (mut din, mut dout, mut pairs) = (0.0, 0.0, 0usize);
    for path in &files {
        let img = images::load_rgb(path)?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let mut out = model.derain_rgb8(img.as_raw(), w, h)?;
        smoother.smooth_bytes(img.as_raw(), &mut out);
        if let (Some(pi), Some(po)) = (&prev_in, &prev_out) {
            if pi.dimensions() != img.dimensions() {
                bail!("{}: frames differ in size", path.display());
            }
            din += mean_abs(pi.as_raw(), img.as_raw());
            dout += mean_abs(po, &out);
            pairs += 1;
        }
        prev_in = Some(img);
        prev_out = Some(out);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let k = pairs as f64;
    Ok(Steadiness {
        input: din / k,
        output: dout / k,
        frames: files.len(),
    })
}

/// Derains one image and smooths it against the images before it.
fn derain_in_turn(
    model: &mut nlcl::runtime::Model,
    smoother: &mut ChangeSmoother,
    img: &Rgb8,
) -> Result<Vec<u8>> {
    let mut out = model.derain_rgb8(&img.data, img.width, img.height)?;
    smoother.smooth_bytes(&img.data, &mut out);
    Ok(out)
}

fn pair_dirs(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    evaluate::pair_folders(dir).with_context(|| {
        format!(
            "{} has neither input/ + target/ nor rain/ + norain/ folders",
            dir.display()
        )
    })
}

fn load_rgb8(path: &Path) -> Result<Rgb8> {
    let img = images::load_rgb(path)?;
    Ok(Rgb8 {
        width: img.width() as usize,
        height: img.height() as usize,
        data: img.into_raw(),
    })
}

/// The image with the lowest score offered so far (the worst image under a mean).
#[derive(Default)]
struct Lowest(Option<(String, f64)>);

impl Lowest {
    fn offer(&mut self, name: &str, score: f64) {
        if self.0.as_ref().is_none_or(|(_, low)| score < *low) {
            self.0 = Some((name.to_string(), score));
        }
    }
}

/// Scores `model` on the pairs of `dir`, writing the per-image CSV and a sheet: the mean, and
/// the image whose Y-PSNR the model raised least (or lowered most), with that gain. `smoother`
/// runs on each output in name order (give an off one for photos that are not frames of one
/// clip).
pub fn eval_pairs(
    model: &mut nlcl::runtime::Model,
    smoother: &mut ChangeSmoother,
    dir: &Path,
    out: &Path,
    sheet_rows: usize,
) -> Result<(PairScores, Option<(String, f64)>)> {
    let (input_dir, target_dir) = pair_dirs(dir)?;
    let inputs = images::collect(&[input_dir])?;
    if inputs.is_empty() {
        bail!("no images in {}", dir.display());
    }
    let mut csv =
        String::from("image,width,height,input_psnr_y,input_ssim_y,output_psnr_y,output_ssim_y\n");
    let mut sheet_rows_imgs = Vec::new();
    let mut worst = Lowest::default();
    let bar = images::progress(inputs.len() as u64, "eval");
    let report = evaluate::eval_pairs(
        &inputs,
        &target_dir,
        load_rgb8,
        |img| derain_in_turn(model, smoother, img),
        |event| {
            match event {
                Event::Scored {
                    path,
                    input,
                    output,
                    target,
                    score: s,
                    mean,
                } => {
                    let (w, h) = (input.width, input.height);
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    let gain = s.output_psnr - s.input_psnr;
                    worst.offer(&name, gain);
                    let _ = writeln!(
                        csv,
                        "{name},{w},{h},{:.4},{:.6},{:.4},{:.6}",
                        s.input_psnr, s.input_ssim, s.output_psnr, s.output_ssim
                    );
                    if sheet_rows_imgs.len() < sheet_rows {
                        let img =
                            |d: &[u8]| image::RgbImage::from_raw(w as u32, h as u32, d.to_vec());
                        if let (Some(i), Some(o), Some(t)) = (
                            img(&input.data),
                            img(output),
                            target.and_then(|t| img(&t.data)),
                        ) {
                            sheet_rows_imgs.push(images::side_by_side(&[&i, &o, &t]));
                        }
                    }
                    bar.set_message(format!("mean out {:.2} dB", mean.output_psnr));
                }
                Event::Skipped { path, error } => {
                    bar.suspend(|| eprintln!("skipped {}: {error:#}", path.display()));
                }
            }
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let Some(mean) = report.mean() else {
        bail!("no pair could be evaluated in {}", dir.display());
    };
    if report.skipped > 0 {
        eprintln!("{} pairs skipped", report.skipped);
    }
    let tag = dir
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "pairs".into());
    let csv_path = out.join(format!("{tag}.csv"));
    std::fs::write(&csv_path, csv).with_context(|| format!("writing {}", csv_path.display()))?;
    images::write_rows(&sheet_rows_imgs, &out.join(format!("{tag}-sheet.png")))?;
    Ok((mean, worst.0))
}

/// Mean Y and RGB PSNR and colour shift between each clean image and the model's output on it,
/// and the image the model changes most (lowest Y-PSNR), with that PSNR.
pub fn eval_clean(
    model: &mut nlcl::runtime::Model,
    smoother: &mut ChangeSmoother,
    dir: &Path,
    out: &Path,
) -> Result<(DoNoHarm, Option<(String, f64)>)> {
    let files = images::collect(&[dir.to_path_buf()])?;
    if files.is_empty() {
        bail!("no images in {}", dir.display());
    }
    let mut csv = String::from("image,psnr_y,psnr_rgb,shift_r,shift_g,shift_b\n");
    let mut worst = Lowest::default();
    let bar = images::progress(files.len() as u64, "do-no-harm");
    let report = evaluate::eval_clean(
        &files,
        load_rgb8,
        |img| derain_in_turn(model, smoother, img),
        |event| {
            match event {
                Event::Scored { path, score: d, .. } => {
                    let name = path.file_name().unwrap_or_default().to_string_lossy();
                    worst.offer(&name, d.psnr_y);
                    let _ = writeln!(
                        csv,
                        "{name},{:.4},{:.4},{:.4},{:.4},{:.4}",
                        d.psnr_y, d.psnr_rgb, d.shift[0], d.shift[1], d.shift[2]
                    );
                }
                Event::Skipped { path, error } => {
                    bar.suspend(|| eprintln!("skipped {}: {error:#}", path.display()));
                }
            }
            bar.inc(1);
        },
    );
    bar.finish_and_clear();
    let Some(mean) = report.mean() else {
        bail!("no image could be evaluated in {}", dir.display());
    };
    let tag = dir
        .file_name()
        .map(|s| s.to_string_lossy().to_string())
        .unwrap_or_else(|| "clean".into());
    std::fs::write(out.join(format!("{tag}-do-no-harm.csv")), csv)?;
    Ok((mean, worst.0))
}
