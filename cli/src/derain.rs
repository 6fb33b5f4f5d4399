//! `nlcl derain`: images and folders of images in, derained PNGs out, never losing a file.
//!
//! Where each result goes is planned before anything runs: a folder's images keep their
//! path relative to that folder (under the folder's own name when several inputs are given),
//! the extension becomes `.png`, and two inputs that would land on one output (`a.jpg` and
//! `a.png`) keep their extension in the name (`a.jpg.png`). An output that is an input, or
//! two inputs that still collide, stop the run with a message before any file is written;
//! existing outputs are kept unless `--overwrite`.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::{ModelArgs, images};

#[derive(clap::Args)]
pub struct DerainArgs {
    /// Image files (PNG, JPEG) or folders of them.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Output folder.
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
    /// Also write NAME-side-by-side.png (input | derained).
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
    #[command(flatten)]
    pub model: ModelArgs,
}

/// One input image and where its result goes (relative to the output folder).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Job {
    pub input: PathBuf,
    pub output: PathBuf,
}

/// The images to derain and their output paths; sub-folders that were not searched.
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
    let mut by_png: HashMap<PathBuf, usize> = HashMap::new();
    for j in &jobs {
        *by_png.entry(j.output.with_extension("png")).or_default() += 1;
    }
    for j in &mut jobs {
        let png = j.output.with_extension("png");
        j.output = if by_png[&png] > 1 {
            let mut name = j.output.as_os_str().to_owned();
            name.push(".png");
            PathBuf::from(name)
        } else {
            png
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
        } else if images::is_image(&p) {
            jobs.push(Job {
                input: p,
                output: rel.join(name),
            });
        }
    }
    Ok(())
}

/// Refuses a plan that would write over one of its own inputs.
fn check_no_input_overwritten(jobs: &[Job], out: &Path) -> Result<()> {
    let inputs: HashSet<PathBuf> = jobs
        .iter()
        .filter_map(|j| j.input.canonicalize().ok())
        .collect();
    for j in jobs {
        let dst = out.join(&j.output);
        if let Ok(c) = dst.canonicalize()
            && inputs.contains(&c)
        {
            bail!(
                "writing {} would overwrite an input image; choose another output folder",
                dst.display()
            );
        }
    }
    Ok(())
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

pub fn run(args: &DerainArgs) -> Result<()> {
    let (jobs, skipped_dirs) = plan(&args.inputs, args.recursive)?;
    if !skipped_dirs.is_empty() {
        eprintln!(
            "{} sub-folder(s) not searched (give --recursive to include them), e.g. {}",
            skipped_dirs.len(),
            skipped_dirs[0].display()
        );
    }
    if jobs.is_empty() {
        bail!("no PNG or JPEG images found in {:?}", args.inputs);
    }
    let out = &args.out;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    check_no_input_overwritten(&jobs, out)?;
    let mut model = args.model.open()?;
    let mut others = args
        .compare
        .iter()
        .map(|m| {
            ModelArgs {
                model: Some(m.clone()),
                ..args.model.clone()
            }
            .open()
        })
        .collect::<Result<Vec<_>>>()?;
    let bar = images::progress(jobs.len() as u64, "derain");
    let mut rows = Vec::new();
    let started = std::time::Instant::now();
    let (mut failed, mut kept, mut pixels) = (Vec::new(), 0usize, 0usize);
    for job in &jobs {
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
                    let stem = dst.with_extension("");
                    let mut name = stem.into_os_string();
                    name.push("-side-by-side.png");
                    let path = PathBuf::from(name);
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
            failed.push(job.input.clone());
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    if let Some(path) = &args.sheet {
        images::write_rows(&rows, path)?;
    }
    let done = jobs.len() - failed.len() - kept;
    println!(
        "derained {done} of {} images ({:.1} Mpixel) in {:.1} s with {} on {}; results in {}",
        jobs.len(),
        pixels as f64 / 1e6,
        started.elapsed().as_secs_f64(),
        model.info().origin,
        model.info().provider,
        out.display(),
    );
    if kept > 0 {
        println!("{kept} existing output(s) kept (give --overwrite to replace them)");
    }
    if !failed.is_empty() {
        println!("{} input(s) failed:", failed.len());
        for f in &failed {
            println!("  {}", f.display());
        }
        if !args.keep_going {
            bail!(
                "{} of {} inputs failed (give --keep-going to accept that)",
                failed.len(),
                jobs.len()
            );
        }
    }
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
        let e = check_no_input_overwritten(&jobs, &z)
            .unwrap_err()
            .to_string();
        assert!(e.contains("overwrite an input"), "{e}");
        assert!(check_no_input_overwritten(&jobs, &d.path().join("out")).is_ok());
    }
}
