//! `nlcl derain`: images, videos and folders of them in; derained PNGs and H.264 MP4s out,
//! never losing a file.
//!
//! Where each result goes is planned before anything runs: a folder's files keep their
//! path relative to that folder (under the folder's own name when several inputs are given),
//! the extension becomes `.png` for images and `.mp4` for videos, and two inputs that would
//! land on one output (`a.jpg` and `a.png`) keep their extension in the name (`a.jpg.png`). A
//! single video may also be written to a file named by `-o X.mp4`. An output that is an input,
//! or two inputs that still collide, stop the run with a message before any file is written;
//! existing outputs are kept unless `--overwrite`. Videos go through GStreamer (see
//! [`crate::video`]); images through the engine directly.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::video_files;
use crate::{ModelArgs, images};
#[cfg(feature = "gstreamer")]
use crate::{video, video_files::Outcome};

#[derive(clap::Args)]
pub struct DerainArgs {
    /// Image files (PNG, JPEG), video files (anything GStreamer decodes: mp4, mkv, mov, ts,
    /// ...) or folders of either.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder; for a single video also an MP4 file name (`-o clean.mp4`).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Also look in sub-folders of input folders (their structure is kept under the output).
    #[arg(long)]
    pub recursive: bool,
    /// Replace output files that already exist (by default they are kept and reported).
    #[arg(long)]
    pub overwrite: bool,
    /// Exit successfully even when some inputs could not be derained (they are listed).
    #[arg(long)]
    pub keep_going: bool,
    /// Also write NAME-side-by-side.png (input | derained); for a video
    /// NAME-side-by-side.mp4, input and derained next to each other (twice the width).
    #[arg(long)]
    pub side_by_side: bool,
    /// More models (names or files) whose results are added as further columns of the
    /// side-by-side sheets, to compare models on the same footage (repeatable).
    #[arg(long, value_name = "NAME|FILE")]
    pub compare: Vec<String>,
    /// One contact sheet of every image (a row each: input | derained | --compare ...), rows
    /// scaled to --sheet-width; PNG or JPEG by extension.
    #[arg(long, value_name = "FILE")]
    pub sheet: Option<PathBuf>,
    /// Width of the contact sheet's rows in pixels.
    #[arg(long, default_value_t = 1600)]
    pub sheet_width: u32,
    /// Videos: x264 constant rate factor, 0 (near lossless) to 50 (smallest); 18-23 is the
    /// usual range, each +6 about halves the size.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(0..=50))]
    pub crf: u32,
    /// Videos: x264 speed preset (slower presets give smaller files at the same quality).
    #[arg(long, default_value = "medium", value_parser = clap::builder::PossibleValuesParser::new(video_files::PRESETS))]
    pub preset: String,
    /// Videos from a still camera: the element's `temporal-smoothing` (0 = off, up to 0.99;
    /// 0.9 keeps a dry still scene as steady as it was recorded). Moving rain, objects and
    /// pans are derained as without it.
    #[arg(long, default_value_t = 0.0, value_name = "CARRY")]
    pub temporal_smoothing: f64,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// One input image or video and where its result goes (relative to the output folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// The images and videos to derain and their output paths; sub-folders that were not searched.
pub fn plan(inputs: &[PathBuf], recursive: bool) -> Result<(Vec<Job>, Vec<PathBuf>)> {
    let several = inputs.len() > 1;
    let mut jobs = Vec::new();
    let mut skipped_dirs = Vec::new();
    for input in inputs {
        if input.is_dir() {
            let base = if several {
                PathBuf::from(input.file_name().unwrap_or(input.as_os_str()))
            } else {
                PathBuf::new()
            };
            walk(input, &base, recursive, &mut jobs, &mut skipped_dirs)?;
        } else if input.is_file() {
            let name = input.file_name().context("input without a file name")?;
            jobs.push(Job {
                input: input.clone(),
                output: PathBuf::from(name),
            });
        } else {
            bail!("{} does not exist", input.display());
        }
    }
    // Same stem, different extension in one folder: keep the extension in the name.
    let mut by_target: HashMap<PathBuf, usize> = HashMap::new();
    for j in &jobs {
        *by_target
            .entry(j.output.with_extension(output_extension(&j.input)))
            .or_default() += 1;
    }
    for j in &mut jobs {
        let ext = output_extension(&j.input);
        let target = j.output.with_extension(ext);
        j.output = if by_target[&target] > 1 {
            let mut name = j.output.as_os_str().to_owned();
            name.push(".");
            name.push(ext);
            PathBuf::from(name)
        } else {
            target
        };
    }
    let mut seen: HashMap<&Path, &Path> = HashMap::new();
    for j in &jobs {
        if let Some(other) = seen.insert(&j.output, &j.input) {
            bail!(
                "{} and {} would both be written as {}: derain them into separate folders, or \
                 give their common parent folder so that the folder structure tells them apart",
                other.display(),
                j.input.display(),
                j.output.display()
            );
        }
    }
    Ok((jobs, skipped_dirs))
}

/// Images become PNGs, videos MP4s.
fn output_extension(input: &Path) -> &'static str {
    if video_files::is_video(input) {
        "mp4"
    } else {
        "png"
    }
}

/// Where the side-by-side comparison of an output goes.
fn side_by_side_path(input: &Path, dst: &Path) -> PathBuf {
    if video_files::is_video(input) {
        video_files::side_by_side_path(dst)
    } else {
        let mut name = dst.with_extension("").into_os_string();
        name.push("-side-by-side.png");
        PathBuf::from(name)
    }
}

fn walk(
    dir: &Path,
    rel: &Path,
    recursive: bool,
    jobs: &mut Vec<Job>,
    skipped: &mut Vec<PathBuf>,
) -> Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        let name = PathBuf::from(p.file_name().unwrap_or_default());
        if p.is_dir() {
            if recursive {
                walk(&p, &rel.join(&name), true, jobs, skipped)?;
            } else {
                skipped.push(p);
            }
        } else if images::is_image(&p) || video_files::is_video(&p) {
            jobs.push(Job {
                input: p,
                output: rel.join(name),
            });
        }
    }
    Ok(())
}

/// Refuses a plan that would write over one of its own inputs, or write two results (a
/// side-by-side included) to one file.
fn check_no_input_overwritten(jobs: &[Job], out: &Path, side_by_side: bool) -> Result<()> {
    let inputs: HashSet<PathBuf> = jobs
        .iter()
        .filter_map(|j| j.input.canonicalize().ok())
        .collect();
    let mut written: HashMap<PathBuf, &Path> = HashMap::new();
    for j in jobs {
        let dst = out.join(&j.output);
        let side = side_by_side.then(|| side_by_side_path(&j.input, &dst));
        for path in std::iter::once(dst).chain(side) {
            if let Ok(c) = path.canonicalize()
                && inputs.contains(&c)
            {
                bail!(
                    "writing {} would overwrite an input; choose another output folder",
                    path.display()
                );
            }
            if let Some(other) = written.insert(path.clone(), &j.input) {
                bail!(
                    "the results of {} and {} would both be written as {}: derain them into \
                     separate folders",
                    other.display(),
                    j.input.display(),
                    path.display()
                );
            }
        }
    }
    Ok(())
}

/// The output folder and the plan; with a single video and `-o NAME.mp4`, the plan writes
/// that file.
fn plan_run(args: &DerainArgs) -> Result<(PathBuf, Vec<Job>, Vec<PathBuf>)> {
    let (mut jobs, skipped) = plan(&args.inputs, args.recursive)?;
    let out = &args.out;
    let single_video = args.inputs.len() == 1
        && args.inputs[0].is_file()
        && video_files::is_video(&args.inputs[0]);
    if out.is_dir() || out.extension().is_none() {
        return Ok((out.clone(), jobs, skipped));
    }
    if video_files::is_mp4_name(out) {
        if !single_video {
            bail!(
                "-o {} names one MP4 file, but the inputs are not a single video: give an \
                 output folder",
                out.display()
            );
        }
        let name = out.file_name().context("output without a file name")?;
        jobs[0].output = PathBuf::from(name);
        // The output's own folder (empty for the current one, so messages show `-o` as given).
        let dir = out.parent().unwrap_or(Path::new(""));
        return Ok((dir.to_path_buf(), jobs, skipped));
    }
    if single_video && video_files::is_video(out) {
        bail!(
            "-o {}: videos are written as MP4 (H.264); name the output .mp4",
            out.display()
        );
    }
    Ok((out.clone(), jobs, skipped))
}

/// An image with its alpha channel kept aside (RGBA inputs keep their transparency).
fn load(path: &Path) -> Result<(image::RgbImage, Option<Vec<u8>>)> {
    let img = image::open(path).with_context(|| format!("reading image {}", path.display()))?;
    if img.color().has_alpha() {
        let rgba = img.to_rgba8();
        let alpha = rgba.pixels().map(|p| p.0[3]).collect();
        Ok((image::DynamicImage::ImageRgba8(rgba).to_rgb8(), Some(alpha)))
    } else {
        Ok((img.to_rgb8(), None))
    }
}

fn save(path: &Path, rgb: &image::RgbImage, alpha: Option<&[u8]>) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display()))?;
    }
    let result = match alpha {
        Some(a) => {
            let rgba = image::RgbaImage::from_fn(rgb.width(), rgb.height(), |x, y| {
                let p = rgb.get_pixel(x, y).0;
                image::Rgba([p[0], p[1], p[2], a[(y * rgb.width() + x) as usize]])
            });
            rgba.save(path)
        }
        None => rgb.save(path),
    };
    result.with_context(|| format!("writing {}", path.display()))
}

/// Inputs that failed, and outputs kept because they existed.
#[derive(Default)]
struct Tally {
    failed: Vec<PathBuf>,
    kept: usize,
}

pub fn run(args: &DerainArgs) -> Result<()> {
    // Before anything is written.
    nlcl::temporal::check_carry(args.temporal_smoothing as f32).context("--temporal-smoothing")?;
    let (out, jobs, skipped_dirs) = plan_run(args)?;
    if !skipped_dirs.is_empty() {
        eprintln!(
            "{} sub-folder(s) not searched (give --recursive to include them), e.g. {}",
            skipped_dirs.len(),
            skipped_dirs[0].display()
        );
    }
    if jobs.is_empty() {
        bail!(
            "no PNG or JPEG images or video files found in {:?}",
            args.inputs
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
    check_no_input_overwritten(&jobs, &out, args.side_by_side)?;
    let (videos, stills): (Vec<Job>, Vec<Job>) = jobs
        .iter()
        .cloned()
        .partition(|j| video_files::is_video(&j.input));
    #[cfg(not(feature = "gstreamer"))]
    if let Some(v) = videos.first() {
        // Before any image is written.
        bail!(
            "{}: this nlcl was built without the gstreamer feature, so it derains images only \
             (rebuild with the default features for videos)",
            v.input.display()
        );
    }
    let mut tally = Tally::default();
    if !stills.is_empty() {
        derain_images(args, &stills, &out, &mut tally)?;
    }
    #[cfg(feature = "gstreamer")]
    let interrupted = if videos.is_empty() {
        false
    } else {
        derain_videos(args, &videos, &out, &mut tally)?
    };
    #[cfg(not(feature = "gstreamer"))]
    let interrupted = false;
    if tally.kept > 0 {
        println!(
            "{} existing output(s) kept (give --overwrite to replace them)",
            tally.kept
        );
    }
    if !tally.failed.is_empty() {
        println!("{} input(s) failed:", tally.failed.len());
        for f in &tally.failed {
            println!("  {}", f.display());
        }
    }
    if interrupted {
        // The shell's convention for a run ended by Ctrl-C (128 + SIGINT).
        std::process::exit(130);
    }
    if !tally.failed.is_empty() && !args.keep_going {
        bail!(
            "{} of {} inputs failed (give --keep-going to accept that)",
            tally.failed.len(),
            jobs.len()
        );
    }
    Ok(())
}

/// Derains the video jobs one after the other. Returns whether Ctrl-C ended the run.
#[cfg(feature = "gstreamer")]
fn derain_videos(args: &DerainArgs, jobs: &[Job], out: &Path, tally: &mut Tally) -> Result<bool> {
    if !args.compare.is_empty() || args.sheet.is_some() {
        eprintln!("note: --compare and --sheet apply to images only, not to videos");
    }
    let (threads, lowered) = nlcl::runtime::bound_threads(args.model.threads);
    if let Some(msg) = lowered {
        eprintln!("warning: {msg} (--threads)");
    }
    let source = args.model.source();
    // A model that is missing or unreadable fails here, before any file is written.
    let (_, origin) = source.bytes()?;
    let settings = video_files::Settings {
        model: source,
        provider: nlcl::runtime::Provider::from_name(&args.model.provider)?,
        device_id: args.model.device_id,
        threads: u32::try_from(threads).context("--threads")?,
        crf: args.crf,
        preset: args.preset.clone(),
        temporal_smoothing: args.temporal_smoothing,
    };
    let ctrl_c = video::CtrlC::install()?;
    for job in jobs {
        if ctrl_c.count() > 0 {
            return Ok(true);
        }
        let dst = out.join(&job.output);
        if dst.exists() && !args.overwrite {
            tally.kept += 1;
            continue;
        }
        let side = args
            .side_by_side
            .then(|| video_files::side_by_side_path(&dst));
        match video::derain_video(&job.input, &dst, side.as_deref(), &settings, &ctrl_c) {
            Ok(Outcome::Done(r)) => {
                println!(
                    "derained {}: {} frames in {:.1} s ({:.1} fps) with {origin} on {}; wrote {}{}",
                    job.input.display(),
                    r.frames,
                    r.seconds,
                    r.frames as f64 / r.seconds.max(1e-9),
                    r.provider,
                    dst.display(),
                    side.as_ref()
                        .map(|s| format!(" and {}", s.display()))
                        .unwrap_or_default(),
                );
                for note in &r.notes {
                    println!("  {note}");
                }
            }
            Ok(Outcome::Interrupted(r)) => {
                eprintln!(
                    "interrupted: wrote a playable partial file {} ({} frames)",
                    dst.display(),
                    r.frames
                );
                return Ok(true);
            }
            Ok(Outcome::Aborted) => return Ok(true),
            Err(e) => {
                // The error names the input (`derain NAME: ...`).
                eprintln!("failed: {e:#}");
                tally.failed.push(job.input.clone());
            }
        }
    }
    Ok(false)
}

fn derain_images(args: &DerainArgs, jobs: &[Job], out: &Path, tally: &mut Tally) -> Result<()> {
    if args.temporal_smoothing > 0.0 {
        // Photos are not frames of one clip (`nlcl eval --temporal-smoothing` takes folders
        // of frames).
        eprintln!("note: --temporal-smoothing applies to videos only, not to images");
    }
    let mut model = args.model.open()?;
    let mut others = args
        .compare
        .iter()
        .map(|m| {
            ModelArgs {
                model: Some(m.clone()),
                model_file: None,
                ..args.model.clone()
            }
            .open()
        })
        .collect::<Result<Vec<_>>>()?;
    let bar = images::progress(jobs.len() as u64, "derain");
    let mut rows = Vec::new();
    let started = std::time::Instant::now();
    let (mut failed, mut kept, mut pixels) = (0usize, 0usize, 0usize);
    for job in jobs {
        bar.set_message(job.output.display().to_string());
        let dst = out.join(&job.output);
        if dst.exists() && !args.overwrite {
            kept += 1;
            bar.inc(1);
            continue;
        }
        let result = (|| -> Result<()> {
            let (img, alpha) = load(&job.input)?;
            let (w, h) = (img.width() as usize, img.height() as usize);
            let clean = model.derain_rgb8(img.as_raw(), w, h)?;
            let clean_img = image::RgbImage::from_raw(w as u32, h as u32, clean)
                .context("output buffer size")?;
            save(&dst, &clean_img, alpha.as_deref())?;
            if args.side_by_side || args.sheet.is_some() {
                let mut columns = vec![img.clone(), clean_img];
                for m in &mut others {
                    let o = m.derain_rgb8(img.as_raw(), w, h)?;
                    columns.push(
                        image::RgbImage::from_raw(w as u32, h as u32, o)
                            .context("output buffer size")?,
                    );
                }
                let row = images::side_by_side(&columns.iter().collect::<Vec<_>>());
                if args.side_by_side {
                    let path = side_by_side_path(&job.input, &dst);
                    row.save(&path)
                        .with_context(|| format!("writing {}", path.display()))?;
                }
                if args.sheet.is_some() {
                    let w = args.sheet_width.max(1);
                    let h = ((row.height() as f64 * w as f64 / row.width() as f64).round() as u32)
                        .max(1);
                    rows.push(image::imageops::resize(
                        &row,
                        w,
                        h,
                        image::imageops::FilterType::Triangle,
                    ));
                }
            }
            pixels += w * h;
            Ok(())
        })();
        if let Err(e) = result {
            bar.suspend(|| eprintln!("failed {}: {e:#}", job.input.display()));
            tally.failed.push(job.input.clone());
            failed += 1;
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.sheet {
        images::write_rows(&rows, path)?;
    }
    tally.kept += kept;
    let done = jobs.len() - failed - kept;
    println!(
        "derained {done} of {} images ({:.1} Mpixel) in {:.1} s with {} on {}; results in {}",
        jobs.len(),
        pixels as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        model.info().origin,
        model.info().provider,
        out.display(),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(p: &Path) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, b"x").unwrap();
    }

    #[test]
    fn same_stems_keep_their_extension_and_folders_their_structure() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        for f in ["frame.jpg", "frame.png", "other.jpeg", "sub/frame.jpg"] {
            touch(&a.join(f));
        }
        let (jobs, skipped) = plan(std::slice::from_ref(&a), false).unwrap();
        let outs: Vec<_> = jobs.iter().map(|j| j.output.clone()).collect();
        assert_eq!(
            outs,
            ["frame.jpg.png", "frame.png.png", "other.png"].map(PathBuf::from)
        );
        assert_eq!(skipped, [a.join("sub")]);
        let (jobs, _) = plan(std::slice::from_ref(&a), true).unwrap();
        assert!(jobs.iter().any(|j| j.output == Path::new("sub/frame.png")));

        // Two folders: each under its own name.
        let b = d.path().join("b");
        touch(&b.join("frame.jpg"));
        let (jobs, _) = plan(&[a.clone(), b.clone()], false).unwrap();
        assert!(jobs.iter().any(|j| j.output == Path::new("b/frame.png")));
        assert!(
            jobs.iter()
                .any(|j| j.output == Path::new("a/frame.jpg.png"))
        );
    }

    #[test]
    fn videos_become_mp4s_next_to_images() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a");
        for f in ["clip.mp4", "clip.MKV", "clip.png", "drive.mov", "notes.txt"] {
            touch(&a.join(f));
        }
        let (jobs, _) = plan(std::slice::from_ref(&a), false).unwrap();
        let mut outs: Vec<_> = jobs.iter().map(|j| j.output.clone()).collect();
        outs.sort();
        assert_eq!(
            outs,
            ["clip.MKV.mp4", "clip.mp4.mp4", "clip.png", "drive.mp4"].map(PathBuf::from)
        );
    }

    fn try_args(argv: &[&str]) -> Result<DerainArgs, clap::Error> {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: DerainArgs,
        }
        Cli::try_parse_from(std::iter::once("derain").chain(argv.iter().copied())).map(|c| c.args)
    }

    fn args(argv: &[&str]) -> DerainArgs {
        try_args(argv).unwrap()
    }

    #[test]
    fn a_single_video_may_name_its_output_file() {
        let d = tempfile::tempdir().unwrap();
        let clip = d.path().join("in/clip.mov");
        touch(&clip);
        let photo = d.path().join("in/photo.png");
        touch(&photo);
        let clip_s = clip.to_str().unwrap();
        let out = d.path().join("res/clean.mp4");
        let (dir, jobs, _) = plan_run(&args(&[clip_s, "-o", out.to_str().unwrap()])).unwrap();
        assert_eq!(dir.join(&jobs[0].output), out);
        // A folder otherwise, also for one video.
        let folder = d.path().join("res");
        let (dir, jobs, _) = plan_run(&args(&[clip_s, "-o", folder.to_str().unwrap()])).unwrap();
        assert_eq!(dir.join(&jobs[0].output), folder.join("clip.mp4"));
        // An MP4 name for several inputs, or another container, is refused.
        let e = plan_run(&args(&[clip_s, photo.to_str().unwrap(), "-o", "x.mp4"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a single video"), "{e}");
        let e = plan_run(&args(&[clip_s, "-o", "x.mkv"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("name the output .mp4"), "{e}");
        // --crf and --preset are bounded by what x264enc takes.
        assert_eq!(args(&[clip_s, "-o", "x", "--crf", "50"]).crf, 50);
        assert!(try_args(&[clip_s, "-o", "x", "--crf", "51"]).is_err());
        assert!(try_args(&[clip_s, "-o", "x", "--preset", "fastest"]).is_err());
    }

    #[test]
    fn colliding_files_and_overwritten_inputs_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let (x, y) = (d.path().join("x/frame.jpg"), d.path().join("y/frame.jpg"));
        touch(&x);
        touch(&y);
        let e = plan(&[x.clone(), y.clone()], false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("x/frame.jpg") && e.contains("y/frame.jpg"),
            "{e}"
        );

        let png = d.path().join("z/photo.png");
        touch(&png);
        let z = d.path().join("z");
        let (jobs, _) = plan(std::slice::from_ref(&z), false).unwrap();
        let e = check_no_input_overwritten(&jobs, &z, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overwrite an input"), "{e}");
        assert!(check_no_input_overwritten(&jobs, &d.path().join("out"), true).is_ok());
    }
}
