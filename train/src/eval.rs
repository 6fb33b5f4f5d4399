//! `nlcl-train eval`: scores a checkpoint without exporting it, its `back` generator run by
//! libtorch (CPU or CUDA). The evaluation itself is the engine's ([`nlcl::evaluate`]), the one
//! `nlcl eval` runs on ONNX models: the same pairing, skipping, Y-PSNR / SSIM (PSNR capped) and
//! means, and the same pixel conversion ([`nlcl::convert`]) as the ONNX Runtime path, so a
//! checkpoint scores here as its exported model does there (up to float rounding).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use nlcl::convert::{self, ColorMatrix, FrameMut, FrameRef, PixelFormat};
use nlcl::evaluate::{self, DoNoHarm, Event, PairScores, Rgb8};
use nlcl::spec::ModelSpec;
use tch::{Device, Kind, Tensor, nn};

use crate::checkpoint::{Checkpoint, checkpoint_path};
use crate::device::{DeviceChoice, select_device};
use crate::nets::Generator;

/// Options of `nlcl-train eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// Run folder (its last.safetensors) or a checkpoint file.
    #[arg(value_name = "RUN")]
    pub run: PathBuf,
    /// Folder with `input/` and `target/` (or `rain/` and `norain/`) holding same-named images,
    /// as `nlcl eval --pairs`.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["input", "target"])]
    pub pairs: Option<PathBuf>,
    /// Folder of degraded inputs (paired with --target by file name).
    #[arg(long, requires = "target")]
    pub input: Option<PathBuf>,
    /// Folder of ground-truth targets.
    #[arg(long, requires = "input")]
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
    let spec = ck.spec()?;
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

/// Runs `back` on an RGB8 image and returns RGB8 of the same size, converted as the ONNX
/// Runtime path does ([`nlcl::runtime::Model::derain_rgb8`]): edge-replicated padding to the
/// size multiple, output clamped, rounded and cropped back.
pub fn derain_rgb8(
    g: &Generator,
    spec: &ModelSpec,
    img: &Rgb8,
    device: Device,
) -> anyhow::Result<Vec<u8>> {
    let (w, h) = (img.width, img.height);
    let m = spec.size_multiple();
    let (ph, pw) = convert::padded_size(h, w, m);
    let mut planes = vec![0f32; 3 * ph * pw];
    let frame = FrameRef {
        format: PixelFormat::Rgb,
        width: w,
        height: h,
        planes: [&img.data, &[], &[]],
        strides: [w * 3, 0, 0],
    };
    convert::frame_to_tensor(&frame, ColorMatrix::Bt601, m, &mut planes)?;
    let x = Tensor::from_slice(&planes)
        .view([1, 3, ph as i64, pw as i64])
        .to_device(device);
    let y = tch::no_grad(|| {
        g.forward(&x)
            .to_device(Device::Cpu)
            .to_kind(Kind::Float)
            .contiguous()
    });
    let y = Vec::<f32>::try_from(y.view([-1]))?;
    let mut out = vec![0u8; w * h * 3];
    let mut frame = FrameMut {
        format: PixelFormat::Rgb,
        width: w,
        height: h,
        planes: [&mut out, &mut [], &mut []],
        strides: [w * 3, 0, 0],
    };
    convert::tensor_to_frame(&y, ph, pw, ColorMatrix::Bt601, None, &mut frame)?;
    Ok(out)
}

/// Decodes an image file as RGB8.
pub fn load_rgb8(path: &Path) -> anyhow::Result<Rgb8> {
    let img = image::open(path)
        .with_context(|| format!("reading image {}", path.display()))?
        .to_rgb8();
    Ok(Rgb8 {
        width: img.width() as usize,
        height: img.height() as usize,
        data: img.into_raw(),
    })
}

/// The images (PNG, JPEG) in a folder, sorted by name, at most `limit`.
fn images_in(dir: &Path, limit: Option<usize>) -> anyhow::Result<Vec<PathBuf>> {
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
    v.truncate(limit.unwrap_or(usize::MAX));
    Ok(v)
}

fn report_skip<S>(event: Event<'_, S, anyhow::Error>) {
    if let Event::Skipped { path, error } = event {
        eprintln!("skipping {}: {error:#}", path.display());
    }
}

/// Evaluates `back` on paired folders (targets found by file name): the mean scores of the
/// inputs and of the outputs against the targets, and how many pairs were scored.
pub fn eval_paired(
    g: &Generator,
    spec: &ModelSpec,
    input: &Path,
    target: &Path,
    limit: Option<usize>,
    device: Device,
) -> anyhow::Result<(PairScores, usize)> {
    let report = evaluate::eval_pairs(
        &images_in(input, limit)?,
        target,
        load_rgb8,
        |img| derain_rgb8(g, spec, img, device),
        report_skip,
    );
    match report.mean() {
        Some(mean) => Ok((mean, report.scored)),
        None => bail!(
            "no image pairs in {} / {}",
            input.display(),
            target.display()
        ),
    }
}

/// Evaluates `back` on clean images (do no harm): the mean PSNR(back(x), x) and colour shift,
/// and how many images were scored.
pub fn eval_identity(
    g: &Generator,
    spec: &ModelSpec,
    dir: &Path,
    limit: Option<usize>,
    device: Device,
) -> anyhow::Result<(DoNoHarm, usize)> {
    let report = evaluate::eval_clean(
        &images_in(dir, limit)?,
        load_rgb8,
        |img| derain_rgb8(g, spec, img, device),
        report_skip,
    );
    match report.mean() {
        Some(mean) => Ok((mean, report.scored)),
        None => bail!("no images in {}", dir.display()),
    }
}

/// `nlcl-train eval`.
pub fn evaluate(args: &EvalArgs) -> anyhow::Result<()> {
    let pairs = match (&args.pairs, &args.input, &args.target) {
        (Some(dir), _, _) => Some(evaluate::pair_folders(dir).with_context(|| {
            format!(
                "{} has neither input/ + target/ nor rain/ + norain/ folders",
                dir.display()
            )
        })?),
        (None, Some(i), Some(t)) => Some((i.clone(), t.clone())),
        _ => None,
    };
    if pairs.is_none() && args.clean.is_none() {
        bail!("give --pairs DIR (or --input DIR --target DIR) and/or --clean DIR");
    }
    let path = checkpoint_path(&args.run);
    let ck = Checkpoint::load(&path)?;
    let device = select_device(args.device)?;
    let (_vs, g) = load_back(&ck, device)?;
    let spec = ck.spec()?;
    println!("{} step {} ({spec})", path.display(), ck.step());
    if let Some((i, t)) = &pairs {
        let (s, n) = eval_paired(&g, &spec, i, t, args.limit, device)?;
        println!(
            "paired {n} images: input {:.3} dB / {:.4} -> output {:.3} dB / {:.4}",
            s.input_psnr, s.input_ssim, s.output_psnr, s.output_ssim
        );
    }
    if let Some(c) = &args.clean {
        let (d, n) = eval_identity(&g, &spec, c, args.limit, device)?;
        println!(
            "do no harm on {n} clean images: PSNR(model(x), x) = {:.3} dB",
            d.psnr_y
        );
    }
    Ok(())
}
