//! Quick evaluation of a checkpoint with the training network itself (no export needed):
//! Y-PSNR / SSIM on a paired folder (e.g. Rain100L) and "do no harm" PSNR(model(x), x) on clean
//! images. The engine's metrics ([`nlcl::metrics`]) define the numbers.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use image::RgbImage;
use nlcl::spec::ModelSpec;
use tch::{Device, Kind, Tensor, nn};

use crate::checkpoint::Checkpoint;
use crate::device::{DeviceChoice, select_device};
use crate::export::checkpoint_path;
use crate::nets::Generator;
use crate::trainer::META_ARCH;

/// Options of `nlcl-train eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Run folder (its last.safetensors) or a checkpoint file.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Folder of degraded inputs (paired with --target by file name).
    #[arg(long)]
    pub input: Option<PathBuf>,
    /// Folder of ground-truth targets.
    #[arg(long)]
    pub target: Option<PathBuf>,
    /// Folder of clean images for the do-no-harm check PSNR(model(x), x).
    #[arg(long)]
    pub clean: Option<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Cpu)]
    pub device: DeviceChoice,
    /// Evaluate at most this many images per folder.
    #[arg(long)]
    pub limit: Option<usize>,
}

/// Loads the `back` generator of a checkpoint (its moving average when the run kept one).
pub fn load_back(ck: &Checkpoint, device: Device) -> anyhow::Result<(nn::VarStore, Generator)> {
    let arch = ck
        .metadata
        .get(META_ARCH)
        .context("checkpoint lacks nlcl.arch")?;
    let spec = ModelSpec::from_tag(arch)?;
    let mut vs = nn::VarStore::new(device);
    let g = Generator::new(&(vs.root() / "back"), &spec, spec.global_residual);
    for (name, mut var) in vs.variables() {
        let (shape, values) = ck
            .inference_tensor(&name)
            .with_context(|| format!("checkpoint lacks {name}"))?;
        let shape: Vec<i64> = shape.iter().map(|&d| d as i64).collect();
        let src = Tensor::from_slice(values)
            .view(shape.as_slice())
            .to_device(device);
        tch::no_grad(|| var.copy_(&src));
    }
    vs.freeze();
    Ok((vs, g))
}

/// Runs `back` on an RGB image (edge-padded to the size multiple) and returns RGB8.
pub fn derain_image(g: &Generator, spec: &ModelSpec, img: &RgbImage, device: Device) -> RgbImage {
    let (w, h) = img.dimensions();
    let m = spec.size_multiple() as u32;
    let (pw, ph) = ((m - w % m) % m, (m - h % m) % m);
    let n = (w * h) as usize;
    let mut planes = vec![0f32; 3 * n];
    for (i, p) in img.pixels().enumerate() {
        for c in 0..3 {
            planes[c * n + i] = f32::from(p[c]) / 127.5 - 1.0;
        }
    }
    let x = Tensor::from_slice(&planes)
        .view([1, 3, i64::from(h), i64::from(w)])
        .to_device(device);
    let out = tch::no_grad(|| {
        let xp = if pw + ph > 0 {
            x.pad([0, i64::from(pw), 0, i64::from(ph)], "replicate", None)
        } else {
            x
        };
        g.forward(&xp)
            .clamp(-1.0, 1.0)
            .narrow(2, 0, i64::from(h))
            .narrow(3, 0, i64::from(w))
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
    });
    let v = Vec::<f32>::try_from(out.view([-1])).unwrap_or_else(|_| vec![0.0; 3 * n]);
    RgbImage::from_fn(w, h, |x, y| {
        let i = (y * w + x) as usize;
        image::Rgb(
            [0, 1, 2].map(|c| ((v[c * n + i] + 1.0) * 127.5).round().clamp(0.0, 255.0) as u8),
        )
    })
}

fn images_in(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("listing {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "png" | "jpg" | "jpeg"))
        })
        .collect();
    v.sort();
    Ok(v)
}

/// Mean Y-PSNR / SSIM of `(output, reference)` pairs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scores {
    /// Mean Y-PSNR of the inputs against the targets.
    pub psnr_in: f64,
    /// Mean SSIM of the inputs.
    pub ssim_in: f64,
    /// Mean Y-PSNR of the outputs against the targets.
    pub psnr_out: f64,
    /// Mean SSIM of the outputs.
    pub ssim_out: f64,
    /// Pairs scored.
    pub count: usize,
}

/// Evaluates `back` on paired folders: scores of the input and of the output against the target.
pub fn eval_paired(
    g: &Generator,
    spec: &ModelSpec,
    input: &Path,
    target: &Path,
    limit: Option<usize>,
    device: Device,
) -> anyhow::Result<Scores> {
    let mut s = Scores::default();
    for p in images_in(input)?
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
    {
        let Some(name) = p.file_name() else { continue };
        let t = target.join(name);
        let (Ok(a), Ok(b)) = (image::open(&p), image::open(&t)) else {
            eprintln!(
                "skipping {} (no readable pair in {})",
                p.display(),
                target.display()
            );
            continue;
        };
        let (a, b) = (a.to_rgb8(), b.to_rgb8());
        if a.dimensions() != b.dimensions() {
            eprintln!("skipping {}: size differs from its target", p.display());
            continue;
        }
        let (w, h) = (a.width() as usize, a.height() as usize);
        let out = derain_image(g, spec, &a, device);
        let (pi, si) = nlcl::metrics::psnr_ssim_y(a.as_raw(), b.as_raw(), w, h)?;
        let (po, so) = nlcl::metrics::psnr_ssim_y(out.as_raw(), b.as_raw(), w, h)?;
        s.psnr_in += pi;
        s.ssim_in += si;
        s.psnr_out += po;
        s.ssim_out += so;
        s.count += 1;
    }
    if s.count == 0 {
        bail!(
            "no image pairs in {} / {}",
            input.display(),
            target.display()
        );
    }
    let n = s.count as f64;
    s.psnr_in /= n;
    s.ssim_in /= n;
    s.psnr_out /= n;
    s.ssim_out /= n;
    Ok(s)
}

/// Mean Y-PSNR of `back(x)` against `x` over clean images (do no harm).
pub fn eval_identity(
    g: &Generator,
    spec: &ModelSpec,
    dir: &Path,
    limit: Option<usize>,
    device: Device,
) -> anyhow::Result<(f64, usize)> {
    let mut total = 0.0;
    let mut n = 0;
    for p in images_in(dir)?
        .into_iter()
        .take(limit.unwrap_or(usize::MAX))
    {
        let Ok(a) = image::open(&p) else { continue };
        let a = a.to_rgb8();
        let out = derain_image(g, spec, &a, device);
        total += nlcl::metrics::cap_psnr(nlcl::metrics::psnr_y(
            out.as_raw(),
            a.as_raw(),
            a.width() as usize,
            a.height() as usize,
        )?);
        n += 1;
    }
    if n == 0 {
        bail!("no images in {}", dir.display());
    }
    Ok((total / n as f64, n))
}

/// `nlcl-train eval`.
pub fn evaluate(args: &EvalArgs) -> anyhow::Result<()> {
    let path = checkpoint_path(&args.run);
    let ck = Checkpoint::load(&path)?;
    let device = select_device(args.device)?;
    let (_vs, g) = load_back(&ck, device)?;
    let spec = ModelSpec::from_tag(&ck.metadata[META_ARCH])?;
    println!("{} step {} ({spec})", path.display(), ck.step());
    if let (Some(i), Some(t)) = (&args.input, &args.target) {
        let s = eval_paired(&g, &spec, i, t, args.limit, device)?;
        println!(
            "paired {} images: input {:.3} dB / {:.4} -> output {:.3} dB / {:.4}",
            s.count, s.psnr_in, s.ssim_in, s.psnr_out, s.ssim_out
        );
    }
    if let Some(c) = &args.clean {
        let (p, n) = eval_identity(&g, &spec, c, args.limit, device)?;
        println!("do no harm on {n} clean images: PSNR(model(x), x) = {p:.3} dB");
    }
    Ok(())
}
