//! The evaluation protocol shared by `nlcl eval` (an ONNX model through [`crate::runtime`]) and
//! `nlcl-train eval` (a checkpoint through libtorch): Y-PSNR / SSIM of a model's output on
//! paired images, and "do no harm" on rain-free images.
//!
//! The callers decode images (the engine has no image decoder) and run the model; this module
//! pairs the files, checks sizes, scores each image with [`crate::metrics`] (PSNR capped at
//! [`crate::metrics::PSNR_CAP_DB`], so one perfect image cannot make a mean infinite), skips
//! what cannot be scored and takes the means, so both commands report the same numbers for the
//! same model outputs. Per-image results go to a callback (CSV rows, sheets, progress).

use std::path::{Path, PathBuf};

use crate::metrics::{self, MetricsError};

/// The folder layouts of a paired set: `input/` + `target/`, or `rain/` + `norain/`
/// (Rain100L and friends), holding same-named images.
pub const PAIR_LAYOUTS: [(&str, &str); 2] = [("input", "target"), ("rain", "norain")];

/// The input and target folders of a paired set laid out as one of [`PAIR_LAYOUTS`].
pub fn pair_folders(dir: &Path) -> Option<(PathBuf, PathBuf)> {
    PAIR_LAYOUTS.iter().find_map(|(a, b)| {
        let (i, t) = (dir.join(a), dir.join(b));
        (i.is_dir() && t.is_dir()).then_some((i, t))
    })
}

/// A decoded 8-bit RGB image (`R, G, B` per pixel, row-major, `width * height * 3` bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rgb8 {
    /// Width in pixels.
    pub width: usize,
    /// Height in pixels.
    pub height: usize,
    /// The pixels.
    pub data: Vec<u8>,
}

/// Why one image could not be scored (the caller's own errors, from loading or running the
/// model, convert from this).
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    /// The input and its target differ in size.
    #[error("input {input:?} and target {target:?} differ in size")]
    SizeMismatch {
        /// Input `(width, height)`.
        input: (usize, usize),
        /// Target `(width, height)`.
        target: (usize, usize),
    },
    /// The input path has no file name to find its target by.
    #[error("{0}: no file name")]
    NoFileName(PathBuf),
    /// The metrics could not measure the images (for example an output of the wrong size).
    #[error(transparent)]
    Metrics(#[from] MetricsError),
}

/// Scores that can be summed over images and averaged.
pub trait Score: Copy + Default {
    /// Adds `other` to `self`, field by field.
    fn add(&mut self, other: &Self);
    /// `self` with every field multiplied by `k`.
    fn scaled(&self, k: f64) -> Self;
}

/// Y-PSNR (dB, capped) and SSIM of an input and of the model's output against the target.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PairScores {
    /// Y-PSNR of the input against the target.
    pub input_psnr: f64,
    /// SSIM (Y) of the input against the target.
    pub input_ssim: f64,
    /// Y-PSNR of the output against the target.
    pub output_psnr: f64,
    /// SSIM (Y) of the output against the target.
    pub output_ssim: f64,
}

impl PairScores {
    /// Scores one pair: `input`, the model's `output` on it and `target`, all `width x height`.
    pub fn measure(
        input: &[u8],
        output: &[u8],
        target: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Self, MetricsError> {
        let (ip, is) = metrics::psnr_ssim_y(input, target, width, height)?;
        let (op, os) = metrics::psnr_ssim_y(output, target, width, height)?;
        Ok(PairScores {
            input_psnr: metrics::cap_psnr(ip),
            input_ssim: is,
            output_psnr: metrics::cap_psnr(op),
            output_ssim: os,
        })
    }
}

impl Score for PairScores {
    fn add(&mut self, o: &Self) {
        self.input_psnr += o.input_psnr;
        self.input_ssim += o.input_ssim;
        self.output_psnr += o.output_psnr;
        self.output_ssim += o.output_ssim;
    }

    fn scaled(&self, k: f64) -> Self {
        PairScores {
            input_psnr: self.input_psnr * k,
            input_ssim: self.input_ssim * k,
            output_psnr: self.output_psnr * k,
            output_ssim: self.output_ssim * k,
        }
    }
}

/// What a model does to a rain-free image.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DoNoHarm {
    /// PSNR(model(x), x) on Y, dB (capped).
    pub psnr_y: f64,
    /// PSNR(model(x), x) on RGB, dB (capped).
    pub psnr_rgb: f64,
    /// Mean output minus input per channel (R, G, B), 8-bit levels: the colour cast.
    pub shift: [f64; 3],
}

impl DoNoHarm {
    /// Scores the model's `output` on the clean image `input`, both `width x height`.
    pub fn measure(
        input: &[u8],
        output: &[u8],
        width: usize,
        height: usize,
    ) -> Result<Self, MetricsError> {
        Ok(DoNoHarm {
            psnr_y: metrics::cap_psnr(metrics::psnr_y(output, input, width, height)?),
            psnr_rgb: metrics::cap_psnr(metrics::psnr_rgb(output, input, width, height)?),
            shift: metrics::mean_channel_shift(input, output, width, height)?,
        })
    }
}

impl Score for DoNoHarm {
    fn add(&mut self, o: &Self) {
        self.psnr_y += o.psnr_y;
        self.psnr_rgb += o.psnr_rgb;
        for (s, v) in self.shift.iter_mut().zip(o.shift) {
            *s += v;
        }
    }

    fn scaled(&self, k: f64) -> Self {
        DoNoHarm {
            psnr_y: self.psnr_y * k,
            psnr_rgb: self.psnr_rgb * k,
            shift: self.shift.map(|s| s * k),
        }
    }
}

/// The outcome of an evaluation: how many images were scored and skipped, and the mean.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Report<S> {
    sum: S,
    /// Images scored.
    pub scored: usize,
    /// Images skipped (unreadable, no target, size mismatch, model error).
    pub skipped: usize,
}

impl<S: Score> Report<S> {
    /// The mean over the scored images (`None` when none was).
    pub fn mean(&self) -> Option<S> {
        (self.scored > 0).then(|| self.sum.scaled(1.0 / self.scored as f64))
    }

    fn add(&mut self, s: &S) {
        self.sum.add(s);
        self.scored += 1;
    }
}

/// One image's result, handed to the per-image callback as it happens.
#[derive(Debug)]
pub enum Event<'a, S, E> {
    /// The image was scored.
    Scored {
        /// The input file.
        path: &'a Path,
        /// The input image.
        input: &'a Rgb8,
        /// The model's output (same size as the input).
        output: &'a [u8],
        /// The target (paired evaluation only).
        target: Option<&'a Rgb8>,
        /// This image's scores.
        score: S,
        /// The mean so far, this image included.
        mean: S,
    },
    /// The image could not be scored.
    Skipped {
        /// The input file.
        path: &'a Path,
        /// Why.
        error: E,
    },
}

/// Scores a model on pairs: each of `inputs` against the same-named file in `target_dir`.
///
/// `load` decodes an image, `derain` runs the model (RGB8 in, RGB8 of the same size out);
/// their errors, a missing or unreadable target and a size mismatch skip the image. `each`
/// sees every input's [`Event`] in order.
pub fn eval_pairs<E: From<EvalError>>(
    inputs: &[PathBuf],
    target_dir: &Path,
    mut load: impl FnMut(&Path) -> Result<Rgb8, E>,
    mut derain: impl FnMut(&Rgb8) -> Result<Vec<u8>, E>,
    mut each: impl FnMut(Event<'_, PairScores, E>),
) -> Report<PairScores> {
    score_each(inputs, &mut each, |path| {
        let name = path
            .file_name()
            .ok_or_else(|| EvalError::NoFileName(path.to_path_buf()))?;
        let input = load(path)?;
        let target = load(&target_dir.join(name))?;
        if (input.width, input.height) != (target.width, target.height) {
            return Err(EvalError::SizeMismatch {
                input: (input.width, input.height),
                target: (target.width, target.height),
            }
            .into());
        }
        let output = derain(&input)?;
        let score = PairScores::measure(
            &input.data,
            &output,
            &target.data,
            input.width,
            input.height,
        )
        .map_err(EvalError::from)?;
        Ok((input, output, Some(target), score))
    })
}

/// Scores a model on rain-free images ("do no harm": its output should equal its input).
/// `load`, `derain` and `each` as in [`eval_pairs`].
pub fn eval_clean<E: From<EvalError>>(
    files: &[PathBuf],
    mut load: impl FnMut(&Path) -> Result<Rgb8, E>,
    mut derain: impl FnMut(&Rgb8) -> Result<Vec<u8>, E>,
    mut each: impl FnMut(Event<'_, DoNoHarm, E>),
) -> Report<DoNoHarm> {
    score_each(files, &mut each, |path| {
        let input = load(path)?;
        let output = derain(&input)?;
        let score = DoNoHarm::measure(&input.data, &output, input.width, input.height)
            .map_err(EvalError::from)?;
        Ok((input, output, None, score))
    })
}

/// Scores every file with `score` (input, output, target if any, scores), keeping the running
/// mean and telling `each` what happened to each file, in order.
fn score_each<S: Score, E>(
    files: &[PathBuf],
    each: &mut impl FnMut(Event<'_, S, E>),
    mut score: impl FnMut(&Path) -> Result<(Rgb8, Vec<u8>, Option<Rgb8>, S), E>,
) -> Report<S> {
    let mut report = Report::default();
    for path in files {
        match score(path) {
            Ok((input, output, target, score)) => {
                report.add(&score);
                each(Event::Scored {
                    path,
                    input: &input,
                    output: &output,
                    target: target.as_ref(),
                    score,
                    mean: report.mean().unwrap_or_default(),
                });
            }
            Err(error) => {
                report.skipped += 1;
                each(Event::Skipped { path, error });
            }
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(w: usize, h: usize, seed: u8) -> Rgb8 {
        let data = (0..w * h * 3)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect();
        Rgb8 {
            width: w,
            height: h,
            data,
        }
    }

    #[derive(Debug)]
    struct Failed(String);

    impl From<EvalError> for Failed {
        fn from(e: EvalError) -> Self {
            Failed(e.to_string())
        }
    }

    #[test]
    fn pairs_are_scored_skipped_and_averaged() {
        // a: a pair the identity model leaves as it is; b: perfect output; c: size mismatch;
        // d: no target.
        let files = |name: &str| -> Option<Rgb8> {
            match name {
                "in/a.png" => Some(image(16, 16, 0)),
                "gt/a.png" => Some(image(16, 16, 3)),
                "in/b.png" | "gt/b.png" => Some(image(16, 16, 7)),
                "in/c.png" => Some(image(16, 16, 0)),
                "gt/c.png" => Some(image(16, 12, 0)),
                "in/d.png" => Some(image(16, 16, 0)),
                _ => None,
            }
        };
        let load = |p: &Path| {
            files(&p.display().to_string())
                .ok_or_else(|| Failed(format!("{} unreadable", p.display())))
        };
        let inputs: Vec<PathBuf> = ["a", "b", "c", "d"]
            .iter()
            .map(|n| PathBuf::from(format!("in/{n}.png")))
            .collect();
        let mut events = Vec::new();
        let report = eval_pairs(
            &inputs,
            Path::new("gt"),
            load,
            |img: &Rgb8| Ok::<_, Failed>(img.data.clone()),
            |e| {
                events.push(match e {
                    Event::Scored { score, .. } => format!("{:.3}", score.output_psnr),
                    Event::Skipped { error, .. } => error.0,
                })
            },
        );
        assert_eq!((report.scored, report.skipped), (2, 2));
        let (a, _) =
            metrics::psnr_ssim_y(&image(16, 16, 0).data, &image(16, 16, 3).data, 16, 16).unwrap();
        assert_eq!(events[0], format!("{a:.3}"));
        assert_eq!(events[1], format!("{:.3}", metrics::PSNR_CAP_DB));
        assert_eq!(
            events[2],
            "input (16, 16) and target (16, 12) differ in size"
        );
        assert_eq!(events[3], "gt/d.png unreadable");
        let mean = report.mean().unwrap();
        assert!((mean.output_psnr - (a + metrics::PSNR_CAP_DB) / 2.0).abs() < 1e-9);
        assert_eq!(mean.input_psnr, mean.output_psnr, "identity model");
    }

    #[test]
    fn clean_images_measure_harm() {
        let files = vec![PathBuf::from("x.png")];
        let report = eval_clean(
            &files,
            |_: &Path| Ok::<_, Failed>(image(16, 16, 1)),
            |img: &Rgb8| Ok(img.data.iter().map(|v| v.saturating_add(2)).collect()),
            |_| {},
        );
        let d = report.mean().unwrap();
        assert!(d.psnr_y < metrics::PSNR_CAP_DB && d.psnr_rgb < metrics::PSNR_CAP_DB);
        assert!(
            d.shift.iter().all(|&s| s > 1.5 && s <= 2.0),
            "{:?}",
            d.shift
        );
        let empty = eval_clean(
            &[],
            |_: &Path| Ok::<_, Failed>(image(1, 1, 0)),
            |i: &Rgb8| Ok(i.data.clone()),
            |_| {},
        );
        assert_eq!(empty.mean(), None);
    }
}
