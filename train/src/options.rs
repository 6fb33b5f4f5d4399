//! The trainer's options ([`TrainArgs`], `nlcl-train train` / `nlcl train`): defaults, checks,
//! and the one-line texts recorded in checkpoints and model metadata.

use std::path::PathBuf;

use anyhow::{Context, bail};
use nlcl::spec::ModelSpec;
use nlcl::synthetic_rain::RainStyle;

use crate::data::Degradation;
use crate::device::DeviceChoice;
use crate::losses::LayerLossForm;
use crate::sampler::SamplerConfig;

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

/// `--streak-mask`: which pixels the rain-pixel loss (`--lambda-pair-streak`) averages over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StreakMask {
    /// Every pixel the rendered rain changes by more than 3 levels, veils included.
    Rain,
    /// Streaks and drops only: the rain's 7x7 local mean is taken off before the threshold,
    /// so smooth veils and accumulation fall out.
    Streaks,
}

impl StreakMask {
    /// The name recorded in the model's metadata.
    pub fn as_str(&self) -> &'static str {
        match self {
            StreakMask::Rain => "rain",
            StreakMask::Streaks => "streaks",
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
    /// streaks), `light` (the earlier light streaks only), `mixed` (each image light or
    /// realistic at even odds), `classic` (noise-and-motion-blur streaks, as most synthetic
    /// deraining sets) or `broad` (a third each: classic, light, realistic).
    #[arg(long, default_value = "realistic")]
    pub rain_style: String,
    /// Overrides the style's share of images with out-of-focus drops (soft bright discs;
    /// `realistic` and `mixed` draw them on a quarter of their realistic images). Suspected of
    /// teaching the darkening of soft bright patches in dry video, it was not the cause (the
    /// accumulation veil was; models/MODELS.md, fifth round).
    #[arg(long, value_name = "P")]
    pub rain_drops: Option<f32>,
    /// Caps the strength of heavy rain's accumulation veil (the style's range is 0.05-0.25;
    /// 0 leaves the veil out). The veil greys whatever it covers, so flat bright areas of
    /// rendered rain often were mid-tones; a model taught to undo it also darkens white walls
    /// and overcast sky in dry footage.
    #[arg(long, value_name = "MAX")]
    pub rain_accumulation: Option<f32>,
    /// Share of heavy-rain images rendered as sharp downpours: dense depth layers of thin,
    /// unblurred streaks (as short exposures and compressed video show heavy rain against dark
    /// backgrounds) instead of the style's soft, wide ones. Off by default.
    #[arg(long, value_name = "P")]
    pub rain_sharp_downpour: Option<f32>,
    /// Streak ranges fitted to one camera's rain (`nlcl adapt` measures them; the line it
    /// prints, e.g. "angle=-12:4 length=14:38 coverage=0.02:0.09 brightness=0.3:0.7 blur=0:2"),
    /// rendered on a share --rain-fit-share of the rainy pairs instead of --rain-style.
    /// Several, separated by `;`: each image takes one of them.
    #[arg(long, value_name = "RANGES")]
    pub rain_fit: Option<String>,
    /// Share of the rainy pairs that get the --rain-fit streaks.
    #[arg(long, value_name = "P", default_value_t = 0.75)]
    pub rain_fit_share: f32,
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
    /// Pixels the rain-pixel loss averages over: `rain` (all rendered rain, veils included)
    /// or `streaks` (veils excluded, so the loss does not teach darkening bright regions).
    #[arg(long, value_enum, default_value_t = StreakMask::Rain)]
    pub streak_mask: StreakMask,
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
    /// Sensor noise on the rainy side of the synthetic pairs: Gaussian, with a standard
    /// deviation drawn per pair up to this many 8-bit levels (0 = off), so the model learns to
    /// remove it. The clean photos are downscaled and nearly noise-free, camera frames are
    /// not; but at 4 levels it made dry video less steady and darker, not steadier
    /// (models/MODELS.md, fifth round).
    #[arg(long, default_value_t = 0.0, value_name = "LEVELS")]
    pub pair_noise: f32,
    /// Fraction of synthetic pairs whose clean photo crop is softened first (downscaled 1.5-3x
    /// and upscaled back), like upscaled or out-of-focus video, so that soft bright walls and
    /// sky are among what the model learns to leave alone (0 = off).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub pair_soften: f32,
    /// With --pair-soften: soften only the dry pairs (the rainy pairs keep sharp photos).
    #[arg(long)]
    pub pair_soften_dry_only: bool,
    /// Fraction of synthetic pairs whose clean crop gets thin straight lines drawn across it,
    /// on both sides (wires, poles, window frames, grids), so that long straight structure is
    /// among what the model learns to keep (0 = off).
    #[arg(long, default_value_t = 0.0, value_name = "P")]
    pub pair_lines: f32,
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
    /// Detail-layer input: the body sees the input less its (2r+1)x(2r+1) box mean, so flat
    /// and softly shaded areas give it nothing to change (0 = off). Architecture tag suffix `h{r}`.
    #[arg(long, default_value_t = 0, value_name = "R")]
    pub detail_radius: usize,
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
            detail_radius: self.detail_radius,
        }
    }

    pub(crate) fn layer_form(&self) -> LayerLossForm {
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
             lambda_pair={} lambda_pair_grad={} lambda_pair_streak={} streak_mask={} lambda_pair_mean={} lambda_pair_rain={} pair_identity={} pair_jpeg={} pair_noise={} pair_batch={} \
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
            self.streak_mask.as_str(),
            self.lambda_pair_mean,
            self.lambda_pair_rain,
            self.pair_identity,
            self.pair_jpeg,
            self.pair_noise,
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
        let mut style = RainStyle::by_name(&self.rain_style).with_context(|| {
            format!(
                "--rain-style {:?}: expected one of {}",
                self.rain_style,
                RainStyle::NAMES.join(", ")
            )
        })?;
        if let Some(p) = self.rain_drops {
            if !(0.0..=1.0).contains(&p) {
                bail!("--rain-drops {p}: must be a probability in [0, 1]");
            }
            style.drops = p;
        }
        if let Some(max) = self.rain_accumulation {
            if !(0.0..=1.0).contains(&max) {
                bail!("--rain-accumulation {max}: must be in [0, 1]");
            }
            style.accumulation = (style.accumulation.0.min(max), max);
        }
        if let Some(p) = self.rain_sharp_downpour {
            if !(0.0..=1.0).contains(&p) {
                bail!("--rain-sharp-downpour {p}: must be a probability in [0, 1]");
            }
            style.sharp_downpour = p;
        }
        if let Some(text) = &self.rain_fit {
            if !(0.0..=1.0).contains(&self.rain_fit_share) {
                bail!(
                    "--rain-fit-share {}: must be a probability in [0, 1]",
                    self.rain_fit_share
                );
            }
            style.fitted =
                nlcl::synthetic_rain::parse_streak_ranges_list(text).context("--rain-fit")?;
            style.fitted_share = self.rain_fit_share;
        }
        Ok(style)
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
            "rainy=[{}] render_rain_on=[{}] render_prob={} degradation={} rain_style={}{}{}{}{}{}{} clean=[{}] max_side={} holdout={}",
            list(&self.rainy),
            list(&self.render_rain_on),
            self.render_prob,
            self.degradation.as_str(),
            self.rain_style,
            // Only when set, so the recipes of earlier runs (and their resumption) read as before.
            self.rain_drops
                .map_or(String::new(), |p| format!(" rain_drops={p}")),
            self.rain_accumulation
                .map_or(String::new(), |a| format!(" rain_accumulation={a}")),
            self.rain_sharp_downpour
                .map_or(String::new(), |p| format!(" rain_sharp_downpour={p}")),
            self.rain_fit.as_ref().map_or(String::new(), |f| format!(
                " rain_fit=[{f}] rain_fit_share={}",
                self.rain_fit_share
            )),
            if self.pair_soften > 0.0 {
                let which = if self.pair_soften_dry_only {
                    "_dry"
                } else {
                    ""
                };
                format!(" pair_soften{which}={}", self.pair_soften)
            } else {
                String::new()
            },
            if self.pair_lines > 0.0 {
                format!(" pair_lines={}", self.pair_lines)
            } else {
                String::new()
            },
            list(&self.clean),
            self.max_side,
            self.holdout
                .as_ref()
                .map_or("none".to_string(), |p| p.display().to_string()),
        )
    }

    pub(crate) fn layer_loss_enabled(&self) -> bool {
        !self.cut && !self.no_layer_loss
    }

    /// True when this step runs NLCL's unpaired losses.
    pub(crate) fn unpaired_at(&self, step: u64) -> bool {
        self.unpaired_every > 0 && step.is_multiple_of(self.unpaired_every)
    }

    pub(crate) fn sampler(&self) -> SamplerConfig {
        SamplerConfig {
            // CUT samples uniformly at random.
            nonlocal: !self.random_sampling && !self.cut,
            window: self.window,
            patch: self.patch,
        }
    }
}

impl TrainArgs {
    /// Checks the options before anything is loaded: both domains given, values in range, crops
    /// that fit the architecture.
    pub fn validate(&self) -> anyhow::Result<()> {
        if self.clean.is_empty() {
            bail!("--clean: at least one folder of clean images is needed");
        }
        if self.rainy.is_empty() && self.render_rain_on.is_empty() {
            bail!("no rainy domain: give --rainy DIR and/or --render-rain-on DIR");
        }
        if self.lambda_pair > 0.0 && self.render_rain_on.is_empty() {
            bail!(
                "--lambda-pair needs --render-rain-on DIR (the clean photos pairs are rendered on)"
            );
        }
        if self.unpaired_every == 0 && self.lambda_pair <= 0.0 {
            bail!("--unpaired-every 0 leaves no loss: give --lambda-pair too");
        }
        if self.lambda_pair > 0.0
            && (self.pair_batch() == 0
                || self.pair_crop() < 16
                || !(self.pair_crop() as usize).is_multiple_of(self.unshuffle.max(1)))
        {
            bail!(
                "--pair-batch must be at least 1 and --pair-crop at least 16 and a multiple of --unshuffle"
            );
        }
        if !(0.0..=1.0).contains(&self.pair_identity) {
            bail!("--pair-identity must be in [0, 1]");
        }
        if !(0.0..=1.0).contains(&self.pair_soften) {
            bail!(
                "--pair-soften {}: must be a probability in [0, 1]",
                self.pair_soften
            );
        }
        if !(0.0..=1.0).contains(&self.pair_lines) {
            bail!(
                "--pair-lines {}: must be a probability in [0, 1]",
                self.pair_lines
            );
        }
        if !(0.0..=64.0).contains(&self.pair_noise) {
            bail!(
                "--pair-noise {}: must be in [0, 64] levels",
                self.pair_noise
            );
        }
        if !(0.0..1.0).contains(&self.ema) {
            bail!("--ema must be in [0, 1) (0 = off)");
        }
        self.rain_style()?;
        if self.crop < 16 {
            bail!("--crop {} is too small (at least 16)", self.crop);
        }
        if self.batch == 0 {
            bail!("--batch must be at least 1");
        }
        if !(self.crop as usize).is_multiple_of(self.unshuffle.max(1)) {
            bail!(
                "--crop {} must be a multiple of --unshuffle {}",
                self.crop,
                self.unshuffle
            );
        }
        if !(0.0..=1.0).contains(&self.render_prob) {
            bail!("--render-prob must be in [0, 1]");
        }
        if self.disc_channels < 1 || self.nce_patches == 0 || self.layer_image_patches == 0 {
            bail!("--disc-channels, --nce-patches and --layer-image-patches must be positive");
        }
        self.spec().validate()?;
        Ok(())
    }
}
