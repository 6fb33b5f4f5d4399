//! The training loop: options, one NLCL (or CUT) step, checkpoints, resume, progress, plots.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use nlcl::spec::ModelSpec;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

use crate::checkpoint::{Checkpoint, EMA_PREFIX, META_STEP};
use crate::data::{
    Degradation, Domains, ImageSet, Skipped, load_images_except, read_holdout, to_tensor,
};
use crate::device::{DeviceChoice, select_device};
use crate::losses::{
    LayerLossForm, colour_bias, colour_shift, gradient_l1, layer_supcon, lsgan, patch_nce,
    streak_l1,
};
use crate::nets::{Discriminator, Generator, Mlp};
use crate::plot;
use crate::render::RainStyle;
use crate::rng::Rng;
use crate::sampler::{SamplerConfig, gather, sample};

/// Metadata key: architecture tag of the generators in a checkpoint.
pub const META_ARCH: &str = "nlcl.arch";
/// Metadata key: trainer options (text).
pub const META_TRAINER: &str = "nlcl.trainer";
/// Metadata key: data recipe (text).
pub const META_DATA: &str = "nlcl.data";
/// Metadata key: the checkpoint has a rain generator (`true`/`false`).
pub const META_HAS_RAIN: &str = "nlcl.has_rain";
/// Metadata key: discriminator base channels.
pub const META_DISC: &str = "nlcl.disc_channels";

/// `--degradation`: what the synthetic samples show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DegradationKind {
    /// Rain streaks, veils and drops (deraining).
    Rain,
    /// Haze (dehazing).
    Haze,
}

impl DegradationKind {
    /// The name recorded in the model's metadata.
    pub fn as_str(&self) -> &'static str {
        match self {
            DegradationKind::Rain => "rain",
            DegradationKind::Haze => "haze",
        }
    }
}

/// Options of `nlcl train` / `nlcl-train train`.
#[derive(Debug, Clone, clap::Args)]
pub struct TrainArgs {
    /// Folder of rainy images (searched recursively; repeatable, several per flag allowed).
    #[arg(long, num_args = 1.., value_name = "DIR")]
    pub rainy: Vec<PathBuf>,
    /// Folder of clean (rain-free, unpaired) images (repeatable).
    #[arg(long, num_args = 1.., value_name = "DIR", required = true)]
    pub clean: Vec<PathBuf>,
    /// Folder of clean images to render synthetic rain on, on the fly, as extra rainy-domain
    /// samples (or the only ones when --rainy is not given). The clean-domain sample of a step is
    /// drawn independently, so the data stays unpaired.
    #[arg(long = "render-rain-on", num_args = 1.., value_name = "DIR")]
    pub render_rain_on: Vec<PathBuf>,
    /// Probability that a rainy sample is rendered when real rainy images are also given.
    #[arg(long, default_value_t = 0.5)]
    pub render_prob: f32,
    /// Rain renderer style: `realistic` (light and heavy rain, accumulation, drops, dark
    /// streaks), `light` (the earlier light streaks only) or `mixed` (each image light or
    /// realistic at even odds).
    #[arg(long, default_value = "realistic")]
    pub rain_style: String,
    /// What the synthetic pairs and rendered samples show: `rain` (deraining) or `haze`
    /// (dehazing: atmospheric scattering over a depth proxy; --rain-style is then unused).
    #[arg(long, value_enum, default_value_t = DegradationKind::Rain)]
    pub degradation: DegradationKind,
    /// File listing image names (one per line) to leave out of every training folder: the
    /// validation set.
    #[arg(long, value_name = "FILE")]
    pub holdout: Option<PathBuf>,
    /// Weight of the synthetic-pair loss (a project addition, 0 = off = pure NLCL): rain is
    /// rendered on a `--render-rain-on` crop and back(rainy) is supervised with the crop itself,
    /// L1 plus `--lambda-pair-grad` times an L1 on image gradients.
    #[arg(long, default_value_t = 0.0)]
    pub lambda_pair: f64,
    /// Weight of the gradient (structure) term inside the synthetic-pair loss.
    #[arg(long, default_value_t = 0.5)]
    pub lambda_pair_grad: f64,
    /// Weight of an L1 averaged over the rain pixels only (where the rendered rain changes the
    /// crop by more than 3 levels) inside the synthetic-pair loss: streaks cover a few percent
    /// of a crop, so the plain L1 barely sees them and models learn to only dim them.
    #[arg(long, default_value_t = 0.0)]
    pub lambda_pair_streak: f64,
    /// Weight of a global colour term inside the synthetic-pair loss: the absolute mean
    /// difference between output and clean crop per image and channel. Uncertain models
    /// subtract a little everywhere (rain brightens on average), which darkens dry frames by
    /// a level or more; this term targets that shift without touching local structure.
    #[arg(long, default_value_t = 0.0)]
    pub lambda_pair_mean: f64,
    /// Weight of L1(rain(rainy), rainy - clean) on synthetic pairs: supervises the rain layer.
    #[arg(long, default_value_t = 0.5)]
    pub lambda_pair_rain: f64,
    /// Fraction of synthetic pairs whose rainy and clean sides are both JPEG-compressed
    /// (quality 30-90), like frames of compressed video.
    #[arg(long, default_value_t = 0.0)]
    pub pair_jpeg: f32,
    /// Fraction of synthetic pairs left dry (clean in, clean out): teaches "do no harm".
    #[arg(long, default_value_t = 0.2)]
    pub pair_identity: f32,
    /// Synthetic pairs per step (default: --batch).
    #[arg(long)]
    pub pair_batch: Option<usize>,
    /// Crop side of synthetic pairs (default: --crop).
    #[arg(long)]
    pub pair_crop: Option<u32>,
    /// Run NLCL's unpaired losses (GAN, contrastive, reconstruction) every this many steps;
    /// 0 = never (synthetic-pair supervision alone, needs --lambda-pair).
    #[arg(long, default_value_t = 1)]
    pub unpaired_every: u64,
    /// Keep an exponential moving average of the generator weights with this decay (0 = off,
    /// e.g. 0.999); export and eval then use the average.
    #[arg(long, default_value_t = 0.0)]
    pub ema: f64,
    /// Run folder: checkpoints, options, loss curves and sample sheets go here; an existing run
    /// is resumed from its last checkpoint.
    #[arg(long, value_name = "RUN")]
    pub out: PathBuf,
    /// Generator width (feature channels; official 32).
    #[arg(long, default_value_t = 32)]
    pub width: usize,
    /// Residual blocks (official 16).
    #[arg(long, default_value_t = 16)]
    pub depth: usize,
    /// Pixel-unshuffle factor of the stem (1 = official full resolution, 2 = body at half
    /// resolution).
    #[arg(long, default_value_t = 1)]
    pub unshuffle: usize,
    /// Global residual: back(O) = O - f(O), so training starts at the identity.
    #[arg(long)]
    pub residual: bool,
    /// Normalisation-free generator: no InstanceNorm in the blocks and tail (a project addition;
    /// restoration networks keep absolute intensities). Architecture tag suffix `n`.
    #[arg(long)]
    pub no_norm: bool,
    /// Total optimisation steps (the last half decays the learning rate linearly to 0).
    #[arg(long, default_value_t = 20000)]
    pub steps: u64,
    /// Square training crop side.
    #[arg(long, default_value_t = 256)]
    pub crop: u32,
    /// Images per step (the official code supports only 1; any size works here).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Adam learning rate (betas 0.5, 0.999).
    #[arg(long, default_value_t = 2e-4)]
    pub lr: f64,
    /// Random seed (network init, data sampling, rain rendering).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Initialise from this checkpoint, or from an ONNX model written by nlcl (fine-tuning; the
    /// step count starts at 0; its architecture is used). Ignored when the run folder already
    /// has a checkpoint to resume.
    #[arg(long, value_name = "CKPT|MODEL.onnx")]
    pub init: Option<PathBuf>,
    /// Compute device.
    #[arg(long, value_enum, default_value_t = DeviceChoice::Auto)]
    pub device: DeviceChoice,
    /// CPU threads for libtorch (default: OMP_NUM_THREADS, else libtorch's choice).
    #[arg(long)]
    pub threads: Option<i32>,
    /// Ablation: drop the layer (inter-layer exclusive) contrastive loss.
    #[arg(long)]
    pub no_layer_loss: bool,
    /// Ablation: drop the location (PatchNCE) contrastive loss.
    #[arg(long)]
    pub no_location_loss: bool,
    /// Ablation: uniform random locations instead of non-local self-similarity sampling.
    #[arg(long)]
    pub random_sampling: bool,
    /// Baseline: plain CUT (one generator, PatchNCE + GAN only, random sampling).
    #[arg(long)]
    pub cut: bool,
    /// Reproduce the official code's optimiser defects (location MLP never stepped, image-layer
    /// MLP never stepped, rain-layer MLP stepped twice, separate layer MLPs, plain SupCon mean).
    #[arg(long)]
    pub official_defects: bool,
    /// Discriminator base channels (official 64).
    #[arg(long, default_value_t = 64)]
    pub disc_channels: i64,
    /// Locations per image for the location loss.
    #[arg(long, default_value_t = 256)]
    pub nce_patches: usize,
    /// Image-layer patches per image for the layer loss.
    #[arg(long, default_value_t = 8)]
    pub layer_image_patches: usize,
    /// Rain-layer patches per image for the layer loss.
    #[arg(long, default_value_t = 128)]
    pub layer_rain_patches: usize,
    /// Temperature of both contrastive losses.
    #[arg(long, default_value_t = 0.07)]
    pub temperature: f64,
    /// Non-local search window side.
    #[arg(long, default_value_t = 40)]
    pub window: i64,
    /// Non-local patch side.
    #[arg(long, default_value_t = 16)]
    pub patch: i64,
    /// Weight of the adversarial loss.
    #[arg(long, default_value_t = 1.0)]
    pub lambda_gan: f64,
    /// Weight of the location contrastive loss.
    #[arg(long, default_value_t = 1.0)]
    pub lambda_location: f64,
    /// Weight of the layer contrastive loss.
    #[arg(long, default_value_t = 1.0)]
    pub lambda_layer: f64,
    /// Weight of the reconstruction loss MSE(B + R, O).
    #[arg(long, default_value_t = 1.0)]
    pub lambda_rec: f64,
    /// Weight of the fidelity loss L1(O, B).
    #[arg(long, default_value_t = 0.1)]
    pub lambda_fid: f64,
    /// Weight of an identity loss L1(back(clean), clean) (a project addition, 0 = off as in the
    /// official code): keeps dry frames unchanged ("do no harm").
    #[arg(long, default_value_t = 0.0)]
    pub lambda_idt: f64,
    /// Weight of a colour-cast penalty on the rainy domain (a project addition, 0 = off): the
    /// per-channel mean change back(O) - O, minus its grey part, so removing rain may not tint.
    #[arg(long, default_value_t = 0.0)]
    pub lambda_colour: f64,
    /// Write a checkpoint, the loss curves and a sample sheet every this many steps.
    #[arg(long, default_value_t = 500)]
    pub checkpoint_every: u64,
    /// Also keep every periodic checkpoint as `checkpoints/step-NNNNNN.safetensors` (for
    /// evaluating a run at several points, or comparing runs at the same step).
    #[arg(long)]
    pub keep_checkpoints: bool,
    /// Downscale images whose longer side exceeds this when loading (0 = never).
    #[arg(long, default_value_t = 1024)]
    pub max_side: u32,
    /// Stop (with a checkpoint) after this many minutes of wall time; resume later.
    #[arg(long)]
    pub max_minutes: Option<f64>,
    /// No progress bar (a line per checkpoint instead), e.g. for logs.
    #[arg(long)]
    pub no_progress: bool,
}

impl TrainArgs {
    /// Arguments with every default and the given folders (for tests and library users).
    pub fn with_data(out: PathBuf, clean: Vec<PathBuf>) -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct P {
            #[command(flatten)]
            a: TrainArgs,
        }
        let mut a = P::parse_from(["x", "--out", "x", "--clean", "x"]).a;
        a.out = out;
        a.clean = clean;
        a
    }

    /// The generator architecture the options describe.
    pub fn spec(&self) -> ModelSpec {
        ModelSpec {
            width: self.width,
            depth: self.depth,
            unshuffle: self.unshuffle,
            global_residual: self.residual,
            instance_norm: !self.no_norm,
        }
    }

    fn layer_form(&self) -> LayerLossForm {
        if self.official_defects {
            LayerLossForm::Official
        } else {
            LayerLossForm::Normalized
        }
    }

    /// The training-method options as one line (recorded in checkpoints and model metadata).
    pub fn options_text(&self, spec: &ModelSpec) -> String {
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            "mode={} arch={} layer_loss={} location_loss={} sampling={} official_defects={} \
             steps={} crop={} batch={} lr={} seed={} disc_channels={} nce_patches={} \
             layer_patches={}/{} temperature={} window={} patch={} lambda_gan={} \
             lambda_location={} lambda_layer={} lambda_rec={} lambda_fid={} lambda_idt={} lambda_colour={} \
             lambda_pair={} lambda_pair_grad={} lambda_pair_streak={} lambda_pair_mean={} lambda_pair_rain={} pair_identity={} pair_jpeg={} pair_batch={} \
             pair_crop={} unpaired_every={} ema={}",
            if self.cut { "cut" } else { "nlcl" },
            spec.tag(),
            on(self.layer_loss_enabled()),
            on(!self.no_location_loss),
            if self.sampler().nonlocal {
                "nonlocal"
            } else {
                "random"
            },
            on(self.official_defects),
            self.steps,
            self.crop,
            self.batch,
            self.lr,
            self.seed,
            self.disc_channels,
            self.nce_patches,
            self.layer_image_patches,
            self.layer_rain_patches,
            self.temperature,
            self.window,
            self.patch,
            self.lambda_gan,
            self.lambda_location,
            self.lambda_layer,
            self.lambda_rec,
            self.lambda_fid,
            self.lambda_idt,
            self.lambda_colour,
            self.lambda_pair,
            self.lambda_pair_grad,
            self.lambda_pair_streak,
            self.lambda_pair_mean,
            self.lambda_pair_rain,
            self.pair_identity,
            self.pair_jpeg,
            self.pair_batch(),
            self.pair_crop(),
            self.unpaired_every,
            self.ema,
        )
    }

    /// Synthetic pairs per step.
    pub fn pair_batch(&self) -> usize {
        self.pair_batch.unwrap_or(self.batch)
    }

    /// Crop side of synthetic pairs.
    pub fn pair_crop(&self) -> u32 {
        self.pair_crop.unwrap_or(self.crop)
    }

    /// What the renderer draws, from `--degradation` and `--rain-style`.
    pub fn degradation(&self) -> anyhow::Result<Degradation> {
        Ok(match self.degradation {
            DegradationKind::Rain => Degradation::Rain(self.rain_style()?),
            DegradationKind::Haze => Degradation::Haze(nlcl::haze::HazeStyle::default()),
        })
    }

    /// The rain renderer style the options name.
    pub fn rain_style(&self) -> anyhow::Result<RainStyle> {
        RainStyle::by_name(&self.rain_style).with_context(|| {
            format!(
                "--rain-style {:?}: expected one of {}",
                self.rain_style,
                RainStyle::NAMES.join(", ")
            )
        })
    }

    /// The data recipe as one line.
    pub fn data_text(&self) -> String {
        let list = |v: &[PathBuf]| {
            v.iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        format!(
            "rainy=[{}] render_rain_on=[{}] render_prob={} degradation={} rain_style={} clean=[{}] max_side={} holdout={}",
            list(&self.rainy),
            list(&self.render_rain_on),
            self.render_prob,
            self.degradation.as_str(),
            self.rain_style,
            list(&self.clean),
            self.max_side,
            self.holdout
                .as_ref()
                .map_or("none".to_string(), |p| p.display().to_string()),
        )
    }

    fn layer_loss_enabled(&self) -> bool {
        !self.cut && !self.no_layer_loss
    }

    /// True when this step runs NLCL's unpaired losses.
    fn unpaired_at(&self, step: u64) -> bool {
        self.unpaired_every > 0 && step.is_multiple_of(self.unpaired_every)
    }

    fn sampler(&self) -> SamplerConfig {
        SamplerConfig {
            // CUT samples uniformly at random.
            nonlocal: !self.random_sampling && !self.cut,
            window: self.window,
            patch: self.patch,
        }
    }
}

/// Names of the logged losses, in the order of [`Losses::values`].
pub const LOSS_NAMES: [&str; 11] = [
    "d",
    "gan",
    "location",
    "layer",
    "rec",
    "fid",
    "idt",
    "colour",
    "pair",
    "pair_rain",
    "total",
];

/// Position of a loss in [`LOSS_NAMES`] (and [`Losses::values`]).
fn loss_index(name: &str) -> usize {
    LOSS_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| unreachable!("{name} is not in LOSS_NAMES"))
}

/// The losses of one step (0 for disabled terms).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Losses {
    /// Values in [`LOSS_NAMES`] order.
    pub values: [f64; LOSS_NAMES.len()],
}

impl Losses {
    fn summary(&self) -> String {
        let mut s = String::new();
        for (n, v) in LOSS_NAMES.iter().zip(self.values) {
            let _ = write!(s, "{n} {v:.3} ");
        }
        s.trim_end().to_string()
    }
}

/// Everything being trained, with its optimisers and data.
pub struct Trainer {
    /// The options in force (the architecture comes from the checkpoint on resume).
    pub args: TrainArgs,
    /// Generator architecture.
    pub spec: ModelSpec,
    /// Where tensors live.
    pub device: Device,
    /// The next step to run (steps done so far).
    pub step: u64,
    /// Files that could not be read.
    pub skipped: Vec<Skipped>,
    /// Loss history `(step, losses)`.
    pub history: Vec<(u64, Losses)>,
    vs_g: nn::VarStore,
    vs_d: nn::VarStore,
    vs_loc: nn::VarStore,
    vs_lb: nn::VarStore,
    vs_lr: nn::VarStore,
    /// Moving averages of the generator weights (empty without `--ema`).
    vs_ema: nn::VarStore,
    back: Generator,
    rain: Option<Generator>,
    disc: Discriminator,
    mlp_loc: Vec<Mlp>,
    mlp_lb: Vec<Mlp>,
    /// Empty when the layer loss shares one head per layer between B and R (the default).
    mlp_lr: Vec<Mlp>,
    opt_g: nn::Optimizer,
    opt_d: nn::Optimizer,
    opt_loc: nn::Optimizer,
    opt_lb: nn::Optimizer,
    opt_lr: Option<nn::Optimizer>,
    rng: Rng,
    data: Domains,
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer")
            .field("spec", &self.spec)
            .field("device", &self.device)
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

fn adam(vs: &nn::VarStore, lr: f64) -> anyhow::Result<nn::Optimizer> {
    Ok(nn::Adam {
        beta1: 0.5,
        beta2: 0.999,
        wd: 0.0,
        eps: 1e-8,
        amsgrad: false,
    }
    .build(vs, lr)?)
}

fn validate(args: &TrainArgs) -> anyhow::Result<()> {
    if args.clean.is_empty() {
        bail!("--clean: at least one folder of clean images is needed");
    }
    if args.rainy.is_empty() && args.render_rain_on.is_empty() {
        bail!("no rainy domain: give --rainy DIR and/or --render-rain-on DIR");
    }
    if args.lambda_pair > 0.0 && args.render_rain_on.is_empty() {
        bail!("--lambda-pair needs --render-rain-on DIR (the clean photos pairs are rendered on)");
    }
    if args.unpaired_every == 0 && args.lambda_pair <= 0.0 {
        bail!("--unpaired-every 0 leaves no loss: give --lambda-pair too");
    }
    if args.lambda_pair > 0.0
        && (args.pair_batch() == 0
            || args.pair_crop() < 16
            || !(args.pair_crop() as usize).is_multiple_of(args.unshuffle.max(1)))
    {
        bail!(
            "--pair-batch must be at least 1 and --pair-crop at least 16 and a multiple of --unshuffle"
        );
    }
    if !(0.0..=1.0).contains(&args.pair_identity) {
        bail!("--pair-identity must be in [0, 1]");
    }
    if !(0.0..1.0).contains(&args.ema) {
        bail!("--ema must be in [0, 1) (0 = off)");
    }
    args.rain_style()?;
    if args.crop < 16 {
        bail!("--crop {} is too small (at least 16)", args.crop);
    }
    if args.batch == 0 {
        bail!("--batch must be at least 1");
    }
    if !(args.crop as usize).is_multiple_of(args.unshuffle.max(1)) {
        bail!(
            "--crop {} must be a multiple of --unshuffle {}",
            args.crop,
            args.unshuffle
        );
    }
    if !(0.0..=1.0).contains(&args.render_prob) {
        bail!("--render-prob must be in [0, 1]");
    }
    if args.disc_channels < 1 || args.nce_patches == 0 || args.layer_image_patches == 0 {
        bail!("--disc-channels, --nce-patches and --layer-image-patches must be positive");
    }
    args.spec().validate()?;
    Ok(())
}

fn load_domain(
    dirs: &[PathBuf],
    max_side: u32,
    holdout: &[String],
    what: &str,
    skipped: &mut Vec<Skipped>,
) -> anyhow::Result<ImageSet> {
    let (set, sk) = load_images_except(dirs, max_side, holdout);
    for s in &sk {
        eprintln!("skipping {}: {}", s.path.display(), s.reason);
    }
    skipped.extend(sk);
    if set.is_empty() && !dirs.is_empty() {
        bail!("no readable {what} images in {dirs:?}");
    }
    Ok(set)
}

/// The last checkpoint of a run folder.
pub fn last_checkpoint(run: &Path) -> PathBuf {
    run.join("last.safetensors")
}

impl Trainer {
    /// Loads the data, builds the networks and restores the run's last checkpoint (or `--init`).
    pub fn new(args: &TrainArgs) -> anyhow::Result<Trainer> {
        let mut args = args.clone();
        validate(&args)?;
        let last = last_checkpoint(&args.out);
        let resume = if last.exists() {
            Some(Checkpoint::load(&last)?)
        } else {
            None
        };
        let init = match (&resume, &args.init) {
            (None, Some(p)) => Some(Checkpoint::load(p)?),
            _ => None,
        };
        // The resumed (or initial) checkpoint's architecture wins: the weights only fit that one.
        let (start, from) = match (&resume, &init) {
            (Some(c), _) => (Some(c), last.clone()),
            (None, Some(c)) => (Some(c), args.init.clone().unwrap_or_default()),
            _ => (None, PathBuf::new()),
        };
        if let Some(arch) = start.and_then(|c| c.metadata.get(META_ARCH)) {
            let spec = ModelSpec::from_tag(arch)?;
            if spec != args.spec() {
                eprintln!(
                    "{}: using its architecture {spec} instead of {}",
                    from.display(),
                    args.spec()
                );
            }
            args.width = spec.width;
            args.depth = spec.depth;
            args.unshuffle = spec.unshuffle;
            args.residual = spec.global_residual;
            args.no_norm = !spec.instance_norm;
        }
        if let Some(d) = resume
            .as_ref()
            .and_then(|c| c.metadata.get(META_DISC))
            .and_then(|d| d.parse().ok())
        {
            args.disc_channels = d;
        }
        let spec = args.spec();
        if let Some(t) = args.threads.or_else(|| {
            std::env::var("OMP_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
        }) {
            tch::set_num_threads(t.max(1));
        }
        let device = select_device(args.device)?;
        tch::manual_seed(args.seed as i64);

        let mut skipped = Vec::new();
        let holdout = match &args.holdout {
            Some(p) => {
                read_holdout(p).with_context(|| format!("reading --holdout {}", p.display()))?
            }
            None => Vec::new(),
        };
        let max = args.max_side;
        let clean = load_domain(&args.clean, max, &holdout, "clean", &mut skipped)?;
        let rainy = load_domain(&args.rainy, max, &holdout, "rainy", &mut skipped)?;
        let render_on = load_domain(
            &args.render_rain_on,
            max,
            &holdout,
            "render-rain-on",
            &mut skipped,
        )?;
        let data = Domains {
            rainy,
            clean,
            render_on,
            render_prob: args.render_prob,
            degradation: args.degradation()?,
            pair_identity: args.pair_identity,
            pair_jpeg: args.pair_jpeg,
        };

        let vs_g = nn::VarStore::new(device);
        let vs_d = nn::VarStore::new(device);
        let vs_loc = nn::VarStore::new(device);
        let vs_lb = nn::VarStore::new(device);
        let vs_lr = nn::VarStore::new(device);
        let vs_ema = nn::VarStore::new(device);
        let back = Generator::new(&(vs_g.root() / "back"), &spec, spec.global_residual);
        let rain = (!args.cut).then(|| Generator::new(&(vs_g.root() / "rain"), &spec, false));
        if args.ema > 0.0 {
            // Same names under `ema.`; never optimised, only averaged (see `update_ema`).
            let root = vs_ema.root() / "ema";
            Generator::new(&(&root / "back"), &spec, spec.global_residual);
            if !args.cut {
                Generator::new(&(&root / "rain"), &spec, false);
            }
        }
        let disc = Discriminator::new(&(vs_d.root() / "disc"), args.disc_channels);
        let w = spec.width as i64;
        let mlp_loc = back
            .nce_layers()
            .iter()
            .enumerate()
            .map(|(i, _)| Mlp::new(&(vs_loc.root() / "mlp_loc" / i), w))
            .collect();
        let dch = Discriminator::feature_channels(args.disc_channels);
        let (mlp_lb, mlp_lr) = if args.cut {
            (Vec::new(), Vec::new())
        } else if args.official_defects {
            (
                dch.iter()
                    .enumerate()
                    .map(|(i, &c)| Mlp::new(&(vs_lb.root() / "mlp_layer_b" / i), c))
                    .collect(),
                dch.iter()
                    .enumerate()
                    .map(|(i, &c)| Mlp::new(&(vs_lr.root() / "mlp_layer_r" / i), c))
                    .collect(),
            )
        } else {
            (
                dch.iter()
                    .enumerate()
                    .map(|(i, &c)| Mlp::new(&(vs_lb.root() / "mlp_layer" / i), c))
                    .collect(),
                Vec::new(),
            )
        };
        let opt_g = adam(&vs_g, args.lr)?;
        let opt_d = adam(&vs_d, args.lr)?;
        let opt_loc = adam(&vs_loc, args.lr)?;
        let opt_lb = adam(&vs_lb, args.lr)?;
        let opt_lr = if vs_lr.variables().is_empty() {
            None
        } else {
            Some(adam(&vs_lr, args.lr)?)
        };
        std::fs::create_dir_all(&args.out)
            .with_context(|| format!("creating run folder {}", args.out.display()))?;
        let mut t = Trainer {
            spec,
            device,
            step: 0,
            skipped,
            history: Vec::new(),
            vs_g,
            vs_d,
            vs_loc,
            vs_lb,
            vs_lr,
            vs_ema,
            back,
            rain,
            disc,
            mlp_loc,
            mlp_lb,
            mlp_lr,
            opt_g,
            opt_d,
            opt_loc,
            opt_lb,
            opt_lr,
            rng: Rng::new(args.seed),
            data,
            args,
        };
        let ema_saved =
            |ck: &Checkpoint| ck.get(&format!("{EMA_PREFIX}back.head.weight")).is_some();
        let mut ema_restored = false;
        if let Some(ck) = resume {
            let n = t.restore(&ck, true)?;
            ema_restored = ema_saved(&ck);
            t.step = ck.step();
            t.history = plot::read_history(&t.args.out.join("losses.csv"), t.step);
            // A different stream than the first run's, so a resumed run does not replay the
            // same crops.
            t.rng = Rng::new(t.args.seed ^ t.step.wrapping_mul(0x9E37_79B9));
            eprintln!(
                "resumed {} at step {} ({n} tensors)",
                last.display(),
                t.step
            );
        } else if let (Some(ck), Some(init)) = (&init, &t.args.init.clone()) {
            let n = t.restore(ck, false)?;
            ema_restored = ema_saved(ck);
            eprintln!("initialised {n} tensors from {}", init.display());
        }
        if !ema_restored {
            t.update_ema(true);
        }
        Ok(t)
    }

    fn stores(&self) -> [&nn::VarStore; 6] {
        [
            &self.vs_g,
            &self.vs_d,
            &self.vs_loc,
            &self.vs_lb,
            &self.vs_lr,
            &self.vs_ema,
        ]
    }

    /// Moves each averaged weight towards its generator weight (warm-up: the decay starts low so
    /// early averages are not dominated by the random initialisation). `reset` copies instead.
    fn update_ema(&self, reset: bool) {
        if self.vs_ema.variables().is_empty() {
            return;
        }
        let step = self.step as f64;
        let decay = if reset {
            0.0
        } else {
            self.args.ema.min((1.0 + step) / (10.0 + step))
        };
        let live = self.vs_g.variables();
        tch::no_grad(|| {
            for (name, mut avg) in self.vs_ema.variables() {
                if let Some(w) = name.strip_prefix(EMA_PREFIX).and_then(|n| live.get(n)) {
                    let mixed = &avg * decay + w * (1.0 - decay);
                    avg.copy_(&mixed);
                }
            }
        });
    }

    /// Every trained tensor by name (copied to the CPU).
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .stores()
            .iter()
            .flat_map(|vs| vs.variables())
            .map(|(n, t)| (n, t.detach().to_device(Device::Cpu)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    /// The image-layer generator.
    pub fn back(&self) -> &Generator {
        &self.back
    }

    /// The rain-layer generator (absent in CUT mode).
    pub fn rain(&self) -> Option<&Generator> {
        self.rain.as_ref()
    }

    /// Copies matching tensors of a checkpoint into the networks. With `strict`, every
    /// variable must be present with the same shape (resume); otherwise only matching names and
    /// shapes are taken (fine-tuning from another configuration).
    fn restore(&mut self, ck: &Checkpoint, strict: bool) -> anyhow::Result<usize> {
        let mut n = 0;
        let device = self.device;
        for vs in self.stores() {
            for (name, mut var) in vs.variables() {
                match ck.get(&name) {
                    Some((shape, values)) if shape_eq(shape, &var.size()) => {
                        let src = Tensor::from_slice(values)
                            .view(var.size().as_slice())
                            .to_device(device);
                        tch::no_grad(|| var.copy_(&src));
                        n += 1;
                    }
                    // Fine-tuning may change the discriminator or drop the rain generator, but
                    // a generator that does not fit is a mistake worth stopping for.
                    Some((shape, _)) if strict || is_generator(&name) => {
                        bail!(
                            "checkpoint tensor {name} has shape {shape:?}, expected {:?}",
                            var.size()
                        )
                    }
                    // A run that turns on --ema later starts its averages from the weights.
                    None if strict && !name.starts_with(EMA_PREFIX) => {
                        bail!("checkpoint lacks tensor {name}")
                    }
                    _ => {}
                }
            }
        }
        if n == 0 {
            bail!("the checkpoint has no tensor matching this network");
        }
        Ok(n)
    }

    /// The checkpoint of the current state.
    pub fn checkpoint(&self) -> Checkpoint {
        let tensors = self
            .named_tensors()
            .into_iter()
            .map(|(n, t)| {
                let shape = t.size().iter().map(|&d| d as usize).collect();
                let values = Vec::<f32>::try_from(t.to_kind(Kind::Float).contiguous().view([-1]))
                    .unwrap_or_default();
                (n, shape, values)
            })
            .collect();
        let mut metadata = HashMap::new();
        metadata.insert(META_STEP.to_string(), self.step.to_string());
        metadata.insert(META_ARCH.to_string(), self.spec.tag());
        metadata.insert(META_TRAINER.to_string(), self.args.options_text(&self.spec));
        metadata.insert(META_DATA.to_string(), self.args.data_text());
        metadata.insert(META_HAS_RAIN.to_string(), self.rain.is_some().to_string());
        metadata.insert(META_DISC.to_string(), self.args.disc_channels.to_string());
        Checkpoint { tensors, metadata }
    }

    fn lr_at(&self, step: u64) -> f64 {
        // Constant for the first half, then linear decay to 0 (CUT's n_epochs / n_epochs_decay).
        let total = self.args.steps.max(1);
        let start = total / 2;
        if step < start {
            self.args.lr
        } else {
            self.args.lr * (total.saturating_sub(step)) as f64 / (total - start).max(1) as f64
        }
    }

    /// The location (PatchNCE) loss between `src` and the generator output `out`.
    fn location_loss(&mut self, src: &Tensor, out: &Tensor) -> Tensor {
        let layers = self.back.nce_layers();
        let sampler = self.args.sampler();
        let feat_k = tch::no_grad(|| self.back.features(src, &layers));
        let feat_q = self.back.features(out, &layers);
        // Sampled in the feature space of back's first layer on the source image.
        let samples = sample(&feat_k[0], self.args.nce_patches, &sampler, &mut self.rng);
        let mut total = Tensor::zeros([], (Kind::Float, self.device));
        for ((fq, fk), mlp) in feat_q.iter().zip(&feat_k).zip(&self.mlp_loc) {
            let q = mlp.forward(&flat(&gather(fq, &samples)));
            let k = tch::no_grad(|| mlp.forward(&flat(&gather(fk, &samples))));
            let (n, kk) = (samples.coords.len() as i64, samples.coords[0].len() as i64);
            total += patch_nce(
                &q.view([n, kk, -1]),
                &k.view([n, kk, -1]),
                self.args.temperature,
            );
        }
        total / layers.len() as f64
    }

    /// The layer contrastive loss between B and R through the discriminator's layers.
    fn layer_loss(&mut self, b: &Tensor, r: &Tensor) -> Tensor {
        let sampler = self.args.sampler();
        let fb = self.disc.layer_features(b);
        let fr = self.disc.layer_features(r);
        // Sampled in the raw layers: mutually similar image patches (positives of each other),
        // mutually similar rain patches (hard negatives of the image patches).
        let (bd, rd) = (b.detach(), r.detach());
        let sb = sample(&bd, self.args.layer_image_patches, &sampler, &mut self.rng);
        let sr = sample(&rd, self.args.layer_rain_patches, &sampler, &mut self.rng);
        let n = sb.coords.len() as i64;
        let mut total = Tensor::zeros([], (Kind::Float, self.device));
        for (l, (fbl, frl)) in fb.iter().zip(&fr).enumerate() {
            let mb = &self.mlp_lb[l];
            let mr = self.mlp_lr.get(l).unwrap_or(mb);
            let zb = mb
                .forward(&flat(&gather(fbl, &sb)))
                .view([n, -1, crate::nets::EMBED]);
            let zr = mr
                .forward(&flat(&gather(frl, &sr)))
                .view([n, -1, crate::nets::EMBED]);
            total += layer_supcon(&zb, &zr, self.args.temperature, self.args.layer_form());
        }
        total / fb.len() as f64
    }

    /// Runs one optimisation step on a fresh batch and returns its losses.
    pub fn train_step(&mut self) -> Losses {
        let lr = self.lr_at(self.step);
        for o in [
            &mut self.opt_g,
            &mut self.opt_d,
            &mut self.opt_loc,
            &mut self.opt_lb,
        ] {
            o.set_lr(lr);
        }
        if let Some(o) = &mut self.opt_lr {
            o.set_lr(lr);
        }
        let device = self.device;
        let zero = move || Tensor::zeros([], (Kind::Float, device));
        let (mut values, unpaired) = if self.args.unpaired_at(self.step) {
            self.unpaired_losses()
        } else {
            ([0.0; LOSS_NAMES.len()], zero())
        };
        let (pair, pair_rain) = if self.args.lambda_pair > 0.0 {
            self.pair_losses()
        } else {
            (zero(), zero())
        };
        let a = &self.args;
        let total = unpaired + &pair * a.lambda_pair + &pair_rain * a.lambda_pair_rain;
        self.opt_g.zero_grad();
        self.opt_loc.zero_grad();
        self.opt_lb.zero_grad();
        if let Some(o) = &mut self.opt_lr {
            o.zero_grad();
        }
        total.backward();
        self.opt_g.step();
        if self.args.official_defects {
            // As the official code does: the location MLP's optimiser is only zeroed, the
            // image-layer MLP is never stepped and the rain-layer MLP is stepped twice.
            if let Some(o) = &mut self.opt_lr {
                o.step();
                o.step();
            }
        } else {
            // Each MLP optimiser stepped exactly once.
            self.opt_loc.step();
            self.opt_lb.step();
            if let Some(o) = &mut self.opt_lr {
                o.step();
            }
        }
        self.step += 1;
        self.update_ema(false);
        let v = |t: &Tensor| t.double_value(&[]);
        values[loss_index("pair")] = v(&pair);
        values[loss_index("pair_rain")] = v(&pair_rain);
        values[loss_index("total")] = v(&total);
        let losses = Losses { values };
        self.history.push((self.step, losses));
        losses
    }

    /// The synthetic-pair losses: L1 + gradient L1 between back(rainy) and the clean crop, and
    /// L1 between rain(rainy) and the rendered rain (rainy - clean).
    fn pair_losses(&mut self) -> (Tensor, Tensor) {
        let (bs, crop) = (self.args.pair_batch(), self.args.pair_crop());
        let p = self.data.pair_batch(bs, crop, &mut self.rng);
        let o = to_tensor(&p.rainy, bs, crop).to_device(self.device);
        let c = to_tensor(&p.clean, bs, crop).to_device(self.device);
        let b = self.back.forward(&o);
        let mut pair =
            b.l1_loss(&c, Reduction::Mean) + gradient_l1(&b, &c) * self.args.lambda_pair_grad;
        if self.args.lambda_pair_streak > 0.0 {
            pair += streak_l1(&o, &b, &c) * self.args.lambda_pair_streak;
        }
        if self.args.lambda_pair_mean > 0.0 {
            pair += colour_bias(&b, &c) * self.args.lambda_pair_mean;
        }
        let rain = match &self.rain {
            Some(g) if self.args.lambda_pair_rain > 0.0 => {
                g.forward(&o).l1_loss(&(&o - &c), Reduction::Mean)
            }
            _ => Tensor::zeros([], (Kind::Float, self.device)),
        };
        (pair, rain)
    }

    /// NLCL's unpaired losses on a fresh rainy / clean batch (after stepping the
    /// discriminator): the logged values and their weighted sum for the generators.
    fn unpaired_losses(&mut self) -> ([f64; LOSS_NAMES.len()], Tensor) {
        let (bs, crop) = (self.args.batch, self.args.crop);
        let o_planes = self.data.rainy_batch(bs, crop, &mut self.rng);
        let y_planes = self.data.clean_batch(bs, crop, &mut self.rng);
        let o = to_tensor(&o_planes, bs, crop).to_device(self.device);
        let y = to_tensor(&y_planes, bs, crop).to_device(self.device);

        let b = self.back.forward(&o);
        let r = self.rain.as_ref().map(|g| g.forward(&o));

        // Discriminator: 0.5 * [LSGAN(D(B.detach()) -> fake) + LSGAN(D(clean) -> real)].
        self.vs_d.unfreeze();
        let loss_d = (lsgan(&self.disc.forward(&b.detach()), false)
            + lsgan(&self.disc.forward(&y), true))
            * 0.5;
        self.opt_d.zero_grad();
        loss_d.backward();
        self.opt_d.step();
        // Frozen while the generators' losses backpropagate through it.
        self.vs_d.freeze();

        let device = self.device;
        let zero = move || Tensor::zeros([], (Kind::Float, device));
        let loss_gan = lsgan(&self.disc.forward(&b), true);
        let need_idt = !self.args.no_location_loss || self.args.lambda_idt > 0.0;
        let y_idt = need_idt.then(|| self.back.forward(&y));
        let loss_loc = match &y_idt {
            Some(y_idt) if !self.args.no_location_loss => {
                // The identity term: clean -> back(clean) keeps clean content unchanged.
                let lx = self.location_loss(&o, &b);
                let ly = self.location_loss(&y, y_idt);
                (lx + ly) * 0.5
            }
            _ => zero(),
        };
        let loss_idt = match &y_idt {
            Some(y_idt) if self.args.lambda_idt > 0.0 => y_idt.l1_loss(&y, Reduction::Mean),
            _ => zero(),
        };
        let loss_colour = if self.args.lambda_colour > 0.0 {
            colour_shift(&b, &o)
        } else {
            zero()
        };
        let (loss_layer, loss_rec, loss_fid) = match &r {
            Some(r) => {
                let layer = if self.args.layer_loss_enabled() {
                    self.layer_loss(&b, r)
                } else {
                    zero()
                };
                let rec = (&b + r).mse_loss(&o, Reduction::Mean);
                let fid = o.l1_loss(&b, Reduction::Mean);
                (layer, rec, fid)
            }
            None => (zero(), zero(), zero()),
        };
        let a = &self.args;
        let (lam_rec, lam_fid) = if a.cut {
            (0.0, 0.0)
        } else {
            (a.lambda_rec, a.lambda_fid)
        };
        let total = &loss_gan * a.lambda_gan
            + &loss_loc * a.lambda_location
            + &loss_layer * a.lambda_layer
            + &loss_rec * lam_rec
            + &loss_fid * lam_fid
            + &loss_idt * a.lambda_idt
            + &loss_colour * a.lambda_colour;
        let v = |t: &Tensor| t.double_value(&[]);
        let mut values = [0.0; LOSS_NAMES.len()];
        for (name, t) in [
            ("d", &loss_d),
            ("gan", &loss_gan),
            ("location", &loss_loc),
            ("layer", &loss_layer),
            ("rec", &loss_rec),
            ("fid", &loss_fid),
            ("idt", &loss_idt),
            ("colour", &loss_colour),
        ] {
            values[loss_index(name)] = v(t);
        }
        (values, total)
    }

    /// Writes `last.safetensors`, `state.toml`, `losses.csv`, `losses.png` and `samples.png`.
    pub fn save(&self) -> anyhow::Result<()> {
        let out = &self.args.out;
        self.checkpoint().save(&last_checkpoint(out))?;
        let state = format!(
            "# nlcl-train run state (the checkpoint is last.safetensors)\nstep = {}\narch = \"{}\"\n\
             has_rain = {}\ntrainer = \"{}\"\ndata = \"{}\"\n",
            self.step,
            self.spec.tag(),
            self.rain.is_some(),
            self.args.options_text(&self.spec),
            self.args
                .data_text()
                .replace('\\', "\\\\")
                .replace('"', "\\\""),
        );
        std::fs::write(out.join("state.toml"), state)
            .with_context(|| format!("writing {}", out.join("state.toml").display()))?;
        plot::write_history(&out.join("losses.csv"), &self.history)?;
        plot::loss_curves(&out.join("losses.png"), &self.history)?;
        self.sample_sheet(&out.join("samples.png"))?;
        Ok(())
    }

    /// Copies `last.safetensors` to `checkpoints/step-NNNNNN.safetensors`.
    pub fn keep_checkpoint(&self) -> anyhow::Result<PathBuf> {
        let dir = self.args.out.join("checkpoints");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let kept = dir.join(format!("step-{:06}.safetensors", self.step));
        std::fs::copy(last_checkpoint(&self.args.out), &kept)
            .with_context(|| format!("writing {}", kept.display()))?;
        Ok(kept)
    }

    /// A before/after sheet: rainy input | image layer B | rain layer R (x2, grey = 0), one row per
    /// sample, on a fixed set of rainy-domain crops.
    pub fn sample_sheet(&self, path: &Path) -> anyhow::Result<()> {
        let mut rng = Rng::new(self.args.seed ^ 0xA5A5);
        let rows = 4usize;
        let crop = self.args.crop.min(256);
        let crop = crop - crop % self.spec.size_multiple() as u32;
        let planes = self.data.rainy_batch(rows, crop, &mut rng);
        let o = to_tensor(&planes, rows, crop).to_device(self.device);
        let (b, r) = tch::no_grad(|| {
            let b = self.back.forward(&o);
            let r = match &self.rain {
                Some(g) => g.forward(&o),
                None => &o - &b,
            };
            (b, r)
        });
        let cols = [
            o.clamp(-1.0, 1.0),
            b.clamp(-1.0, 1.0),
            // Zero rain shows mid-grey; doubled so faint streaks are visible.
            (r * 2.0).clamp(-1.0, 1.0),
        ];
        plot::image_grid(path, &cols, rows, crop)
    }
}

fn flat(x: &Tensor) -> Tensor {
    // [N, K, C] -> [N*K, C]
    let (n, k, c) = x.size3().expect("[N, K, C]");
    x.reshape([n * k, c])
}

fn is_generator(name: &str) -> bool {
    name.starts_with(nlcl::spec::BACK_PREFIX) || name.starts_with(nlcl::spec::RAIN_PREFIX)
}

fn shape_eq(a: &[usize], b: &[i64]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(&x, &y)| x as i64 == y)
}

/// Trains (or resumes) a run as `args` describe: progress bar, periodic checkpoints, plots and
/// a summary at the end.
pub fn train(args: &TrainArgs) -> anyhow::Result<()> {
    let mut t = Trainer::new(args)?;
    let total = t.args.steps;
    eprintln!(
        "training {} ({} params per generator) on {:?}: {} rainy + {} rendered-on + {} clean images, \
         steps {}..{}",
        t.spec,
        t.spec.parameter_count(),
        t.device,
        t.data.rainy.len(),
        t.data.render_on.len(),
        t.data.clean.len(),
        t.step,
        total
    );
    std::fs::write(
        t.args.out.join("options.txt"),
        format!("{}\n{}\n", t.args.options_text(&t.spec), t.args.data_text()),
    )?;
    // A time-limited run shows time against its limit (its step total may be nominal).
    let time_limit = t.args.max_minutes.map(|m| (m * 60.0).ceil() as u64);
    let bar = if t.args.no_progress {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(time_limit.unwrap_or(total))
    };
    let template = if time_limit.is_some() {
        "{elapsed_precise} [{bar:30}] {pos}/{len} s, eta {eta} {msg}"
    } else {
        "{elapsed_precise} [{bar:30}] {pos}/{len} {per_sec} eta {eta} {msg}"
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(template)
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    if time_limit.is_none() {
        bar.set_position(t.step);
    }
    let start = Instant::now();
    let first = t.step;
    let mut stopped_early = false;
    while t.step < total {
        let l = t.train_step();
        if !l.values.iter().all(|v| v.is_finite()) {
            t.save().ok();
            bail!("non-finite loss at step {}: {}", t.step, l.summary());
        }
        if time_limit.is_some() {
            bar.set_position(start.elapsed().as_secs());
        } else {
            bar.set_position(t.step);
        }
        if t.step % 10 == 0 {
            let step = if time_limit.is_some() {
                format!("step {} ", t.step)
            } else {
                String::new()
            };
            bar.set_message(format!("{step}{}", l.summary()));
        }
        let out_of_time = t
            .args
            .max_minutes
            .is_some_and(|m| start.elapsed().as_secs_f64() > m * 60.0);
        let periodic = t.step % t.args.checkpoint_every.max(1) == 0;
        if periodic || t.step == total || out_of_time {
            t.save()?;
            if periodic && t.args.keep_checkpoints {
                t.keep_checkpoint()?;
            }
            if t.args.no_progress {
                let done = (t.step - first).max(1) as f64;
                eprintln!(
                    "step {}/{} {:.1} ms/step {}",
                    t.step,
                    total,
                    start.elapsed().as_secs_f64() * 1e3 / done,
                    l.summary()
                );
            }
        }
        if out_of_time {
            stopped_early = t.step < total;
            break;
        }
    }
    bar.finish_and_clear();
    if t.step == first {
        t.save()?;
    }
    let wall = start.elapsed().as_secs_f64();
    let done = t.step - first;
    println!(
        "{} steps {}..{} of {} in {:.1} s ({:.1} ms/step){}; skipped files: {}; run: {}",
        if stopped_early {
            "stopped after"
        } else {
            "trained"
        },
        first,
        t.step,
        total,
        wall,
        if done > 0 {
            wall * 1e3 / done as f64
        } else {
            0.0
        },
        if stopped_early {
            " (time limit; rerun to resume)"
        } else {
            ""
        },
        t.skipped.len(),
        t.args.out.display()
    );
    for s in &t.skipped {
        println!("  skipped {}: {}", s.path.display(), s.reason);
    }
    Ok(())
}
