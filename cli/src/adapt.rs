//! `nlcl adapt`: fine-tunes a model to one camera from its own footage, without ground truth.
//!
//! Frames are sampled from the camera's rainy videos (any file GStreamer decodes) or image
//! folders. The renderer's streaks are first fitted to the camera's rain (angle, length,
//! density, brightness, width: [`nlcl::rain_fit`]); the model then learns from synthetic pairs:
//! the fitted rain (and, on a tenth of the pairs, the general renderer's) rendered on dry
//! images (`--clean`: the camera on dry days, or any dry photos) or, without them, on the
//! model's own derained frames ("pseudo-clean": the scene as the model currently sees it).
//! NLCL's unpaired losses on the rainy frames can be added (`--unpaired-every`).
//! The run folder holds frames, the fit, checkpoints and curves; rerunning the same command
//! resumes it.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use nlcl::family::ModelSource;

use crate::rain_fit::{FitForm, FitSource};
use crate::video_files::is_video;
use crate::{images, trainer};

#[derive(clap::Args, Debug)]
pub struct AdaptArgs {
    /// Model to start from: `lite`, `standard`, `full`, or an ONNX file written by nlcl.
    #[arg(long, short = 'm', default_value = "lite", value_name = "NAME|FILE")]
    pub model: String,
    /// The camera's rainy footage: video files, image files or folders of either (repeatable).
    #[arg(long, num_args = 1.., required = true, value_name = "VIDEO_OR_DIR")]
    pub rainy: Vec<PathBuf>,
    /// Dry images (optional): the same camera on dry days, or any dry photos of similar
    /// scenes. Rain is rendered on these for synthetic pairs; without them, on the model's own
    /// outputs on the rainy frames, which still hold the rain it misses.
    #[arg(long, num_args = 1.., value_name = "VIDEO_OR_DIR")]
    pub clean: Vec<PathBuf>,
    /// Share of the rainy pairs rendered with streaks fitted to the camera's rain (the rest
    /// with the general renderer); 0 skips the fit.
    #[arg(long, default_value_t = 0.9, value_name = "P")]
    pub fit_share: f32,
    /// Share of the rainy crops, those whose streaks line up most first, that the fit is made
    /// from (the others mostly show the scene).
    #[arg(long, default_value_t = nlcl::rain_fit::FitOptions::default().streakiest, value_name = "P")]
    pub fit_crops: f32,
    /// What the trainer gets from the fit: `ranges` (each setting's spread over the footage,
    /// drawn independently) or `styles` (one narrow set of ranges per streaky crop, drawn
    /// whole per image, keeping the settings that go together).
    #[arg(long, value_enum, default_value_t = FitForm::Ranges)]
    pub fit_form: FitForm,
    /// What the fit measures: `spatial` (each frame's own thin bright structure), `temporal`
    /// (what a still camera's frames add over their temporal median: faint streaks the scene's
    /// texture hides), or `auto`: temporal when every rainy input is one still camera's video
    /// or folder of frames, else spatial.
    #[arg(long, value_enum, default_value_t = FitSource::Auto)]
    pub fit_source: FitSource,
    /// Share of the synthetic pairs left dry (clean in, clean out): what keeps the camera's
    /// rain-free frames untouched; less removes more rain.
    #[arg(long, default_value_t = 0.2, value_name = "P")]
    pub dry_share: f32,
    /// NLCL's unpaired losses (at a tenth of their weight) on the rainy frames every N-th step;
    /// 0 = off. They pull towards the identity (models/MODELS.md): off by default.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub unpaired_every: u32,
    /// Training time in minutes (a rerun resumes and trains this long again).
    #[arg(long, default_value_t = 30.0)]
    pub minutes: f64,
    /// The adapted model.
    #[arg(short = 'o', long = "output", value_name = "MODEL.onnx")]
    pub output: PathBuf,
    /// Run folder (frames, checkpoints, loss curves); default: OUTPUT without `.onnx` + `-run`.
    #[arg(long)]
    pub run: Option<PathBuf>,
    /// Frames per second sampled from videos.
    #[arg(long, default_value_t = 2.0)]
    pub frame_rate: f64,
    /// At most this many frames from each video.
    #[arg(long, default_value_t = 300)]
    pub max_frames: u32,
    /// Learning rate (constant).
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// CPU threads for training (default: OMP_NUM_THREADS, else libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
}

/// Writes up to `max` frames of `video`, `rate` per second, as PNGs into `dir`.
#[cfg(feature = "gstreamer")]
fn extract_frames(video: &Path, dir: &Path, rate: f64, max: u32) -> Result<usize> {
    gst::init().context("initialising GStreamer")?;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let abs = video
        .canonicalize()
        .with_context(|| format!("{} does not exist", video.display()))?;
    let uri = gst::glib::filename_to_uri(&abs, None)
        .with_context(|| format!("{} cannot be turned into a URI", abs.display()))?;
    // videorate takes a fraction; millihertz keeps fractional rates such as 0.5.
    let rate_mhz = (rate * 1000.0).round().max(1.0) as i32;
    let desc = format!(
        "uridecodebin uri=\"{uri}\" ! videoconvert ! videorate \
         ! video/x-raw,format=RGB,framerate={rate_mhz}/1000 ! pngenc \
         ! multifilesink post-messages=true location=\"{}/%06d.png\"",
        dir.display()
    );
    let pipeline = gst::parse::launch(&desc)
        .with_context(|| format!("building the frame pipeline for {}", video.display()))?;
    let bus = pipeline.bus().context("pipeline without a bus")?;
    use gst::prelude::*;
    pipeline
        .set_state(gst::State::Playing)
        .with_context(|| format!("{}: cannot start decoding", video.display()))?;
    let mut error = None;
    let mut written = 0;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            // multifilesink posts one message per file written: stop at `max`.
            gst::MessageView::Element(e)
                if e.structure()
                    .is_some_and(|s| s.name() == "GstMultiFileSink") =>
            {
                written += 1;
                if written >= max {
                    break;
                }
            }
            gst::MessageView::Error(e) => {
                error = Some(format!("{}: {}", video.display(), e.error()));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).ok();
    if let Some(e) = error {
        bail!("{e}");
    }
    // The sink may have written a frame or two more before the pipeline stopped.
    let frames = images::collect(&[dir.to_path_buf()])?;
    for extra in frames.iter().skip(max as usize) {
        std::fs::remove_file(extra).with_context(|| format!("removing {}", extra.display()))?;
    }
    let n = frames.len().min(max as usize);
    if n == 0 {
        bail!("{}: no frames decoded", video.display());
    }
    Ok(n)
}

/// Without GStreamer, frames cannot be taken from videos: an error naming the video.
#[cfg(not(feature = "gstreamer"))]
fn extract_frames(video: &Path, _dir: &Path, _rate: f64, _max: u32) -> Result<usize> {
    bail!(
        "{}: this nlcl was built without the gstreamer feature, so it cannot take frames from \
         videos (give folders of images, or rebuild with the default features)",
        video.display()
    )
}

/// Gathers training images: image files and folders are used where they are; videos are
/// sampled into `frames_dir`. Returns the folders/files to train on.
fn gather(inputs: &[PathBuf], frames_dir: &Path, args: &AdaptArgs) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (i, input) in inputs.iter().enumerate() {
        let videos: Vec<PathBuf> = if input.is_dir() {
            let mut v: Vec<PathBuf> = std::fs::read_dir(input)
                .with_context(|| format!("reading folder {}", input.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| is_video(p))
                .collect();
            v.sort();
            if !images::collect(std::slice::from_ref(input))?.is_empty() {
                out.push(input.clone());
            }
            v
        } else if is_video(input) {
            vec![input.clone()]
        } else if input.exists() {
            out.push(input.clone());
            Vec::new()
        } else {
            bail!("{} does not exist", input.display());
        };
        for (j, v) in videos.iter().enumerate() {
            let dir = frames_dir.join(format!("{i:02}-{j:03}"));
            // Frames sampled by an earlier run of the same command are reused (resume).
            let sampled = if dir.is_dir() {
                images::collect(std::slice::from_ref(&dir))?.len()
            } else {
                0
            };
            let n = if sampled > 0 {
                sampled
            } else {
                extract_frames(v, &dir, args.frame_rate, args.max_frames)?
            };
            eprintln!("{}: {n} frames", v.display());
            out.push(dir);
        }
    }
    if out.is_empty() {
        bail!("no images or videos in {inputs:?}");
    }
    Ok(out)
}

/// The model's own outputs on the rainy frames (the scene as it currently sees it).
fn pseudo_clean(model: &str, rainy: &[PathBuf], dir: &Path) -> Result<PathBuf> {
    let files = images::collect(rainy)?;
    if dir.is_dir() && images::collect(&[dir.to_path_buf()])?.len() == files.len() {
        return Ok(dir.to_path_buf());
    }
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut m = crate::ModelArgs {
        model: Some(model.to_string()),
        model_file: None,
        provider: "cpu".into(),
        device_id: 0,
        threads: 0,
    }
    .open()?;
    let bar = images::progress(files.len() as u64, "pseudo-clean");
    for (i, f) in files.iter().enumerate() {
        let img = images::load_rgb(f)?;
        let (w, h) = (img.width() as usize, img.height() as usize);
        let out = m.derain_rgb8(img.as_raw(), w, h)?;
        let out = image::RgbImage::from_raw(w as u32, h as u32, out).context("output size")?;
        let dst = dir.join(format!("{i:06}.png"));
        out.save(&dst)
            .with_context(|| format!("writing {}", dst.display()))?;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(dir.to_path_buf())
}

/// The model to start from as a file the trainer reads (`--init MODEL.onnx`): the file itself,
/// or a named model's bytes written into the run folder. Checked here, so a model that was not
/// written by nlcl is refused before any frame is decoded.
fn init_model(model: &str, run: &Path) -> Result<PathBuf> {
    let source = ModelSource::parse(model);
    let (bytes, origin) = source.bytes()?;
    nlcl::onnx::read_generators(&bytes)
        .with_context(|| format!("{origin} cannot be fine-tuned"))?;
    Ok(match source {
        ModelSource::File(p) => p,
        ModelSource::Named(name) => {
            let p = run.join(name.file_name());
            std::fs::write(&p, &bytes).with_context(|| format!("writing {}", p.display()))?;
            p
        }
    })
}

pub fn run(args: &AdaptArgs) -> Result<()> {
    if args.minutes <= 0.0 {
        bail!("--minutes must be positive");
    }
    if args.frame_rate <= 0.0 || args.max_frames == 0 {
        bail!("--frame-rate and --max-frames must be positive");
    }
    if !(0.0..=1.0).contains(&args.fit_share) {
        bail!("--fit-share {}: must be a share in [0, 1]", args.fit_share);
    }
    if !(0.0..1.0).contains(&args.dry_share) {
        bail!("--dry-share {}: must be a share in [0, 1)", args.dry_share);
    }
    if !(args.fit_crops > 0.0 && args.fit_crops <= 1.0) {
        bail!("--fit-crops {}: must be a share in (0, 1]", args.fit_crops);
    }
    let run = args.run.clone().unwrap_or_else(|| {
        let stem = args
            .output
            .file_stem()
            .map(|s| s.to_string_lossy().to_string())
            .unwrap_or_else(|| "adapted".into());
        args.output.with_file_name(format!("{stem}-run"))
    });
    std::fs::create_dir_all(&run).with_context(|| format!("creating {}", run.display()))?;
    let rainy = gather(&args.rainy, &run.join("frames/rainy"), args)?;
    let clean = if args.clean.is_empty() {
        vec![pseudo_clean(
            &args.model,
            &rainy,
            &run.join("frames/pseudo-clean"),
        )?]
    } else {
        gather(&args.clean, &run.join("frames/clean"), args)?
    };
    let fitted = if args.fit_share > 0.0 {
        crate::rain_fit::fitted_rain(
            &rainy,
            &clean,
            args.fit_crops,
            args.fit_form,
            args.fit_source,
            &run,
        )?
    } else {
        None
    };
    let init = init_model(&args.model, &run)?;
    let list = |v: &[PathBuf]| {
        v.iter()
            .map(|p| p.as_os_str().to_owned())
            .collect::<Vec<_>>()
    };
    let mut t: Vec<std::ffi::OsString> = vec!["train".into(), "--rainy".into()];
    t.extend(list(&rainy));
    t.push("--clean".into());
    t.extend(list(&clean));
    t.push("--render-rain-on".into());
    t.extend(list(&clean));
    t.push("--init".into());
    t.push(init.into());
    t.push("--out".into());
    t.push(run.join("train").into());
    // Synthetic pairs: the fitted rain on its share, the family's renderer on the rest (mixed,
    // without the accumulation veil) so the model keeps what it knew of rain in general;
    // `--dry-share` of the pairs dry. NLCL's unpaired losses, when asked for, at a tenth of
    // their weight. The learning rate stays constant: the schedule decays only past half of
    // --steps, which a timed run never reaches (a decay over the time limit did not help on
    // the validation set: MODELS.md).
    let flags = format!(
        "--max-minutes {} --lr {} --steps 1000000000 --crop 128 --batch 1 --disc-channels 32 \
         --rain-style mixed --rain-accumulation 0 \
         --lambda-pair 1 --pair-batch 8 --pair-crop 96 --pair-identity {} --lambda-pair-rain 0 \
         --unpaired-every {} --lambda-gan 0.1 --lambda-location 0.1 --lambda-layer 0.1 \
         --lambda-rec 0.1 --lambda-idt 0.1 --lambda-fid 0.01 --ema 0.999 --checkpoint-every 250",
        args.minutes, args.lr, args.dry_share, args.unpaired_every
    );
    t.extend(flags.split_whitespace().map(Into::into));
    if let Some(list) = fitted {
        t.push("--rain-fit".into());
        let text: Vec<String> = list.iter().map(ToString::to_string).collect();
        t.push(text.join("; ").into());
        t.push("--rain-fit-share".into());
        t.push(args.fit_share.to_string().into());
    }
    if let Some(n) = args.threads {
        t.push("--threads".into());
        t.push(n.to_string().into());
    }
    trainer::run(t)?;
    let out: Vec<std::ffi::OsString> = vec![
        "export".into(),
        run.join("train").into(),
        "-o".into(),
        args.output.clone().into(),
    ];
    trainer::run(out)
}
