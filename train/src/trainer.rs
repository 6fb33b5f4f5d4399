//! The training loop: the networks and optimisers ([`Trainer`]), one NLCL (or CUT) step,
//! resume, periodic saves, progress and the run summary ([`train`]). Options are in
//! [`crate::options`], loss records in [`crate::history`], checkpoints and run state in
//! [`crate::checkpoint`].

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use nlcl::rng::Rng;
use nlcl::spec::ModelSpec;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Reduction, Tensor};

use crate::checkpoint::{self, Checkpoint, EMA_PREFIX, RunState};
use crate::data::{Domains, ImageSet, Skipped, load_images_except, read_holdout, to_tensor};
use crate::device::select_device;
use crate::history::{self, LOSS_NAMES, Losses, loss_index};
use crate::losses::{
    colour_bias, colour_shift, gradient_l1, layer_supcon, lsgan, patch_nce, streak_l1,
};
use crate::nets::{Discriminator, Generator, Mlp};
use crate::options::{StreakMask, TrainArgs};
use crate::plot;
use crate::sampler::{gather, sample};

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

impl Trainer {
    /// Loads the data, builds the networks and restores the run's last checkpoint (or `--init`).
    pub fn new(args: &TrainArgs) -> anyhow::Result<Trainer> {
        let mut args = args.clone();
        args.validate()?;
        let start = checkpoint::start_point(&args.out, args.init.as_deref())?;
        // The resumed (or initial) checkpoint's architecture wins: the weights only fit that one.
        if let Some(s) = start.as_ref().filter(|s| s.checkpoint.arch().is_some()) {
            let spec = s.checkpoint.spec()?;
            if spec != args.spec() {
                eprintln!(
                    "{}: using its architecture {spec} instead of {}",
                    s.path.display(),
                    args.spec()
                );
            }
            args.width = spec.width;
            args.depth = spec.depth;
            args.unshuffle = spec.unshuffle;
            args.residual = spec.global_residual;
            args.no_norm = !spec.instance_norm;
        }
        if let Some(d) = start
            .as_ref()
            .filter(|s| s.resume)
            .and_then(|s| s.checkpoint.disc_channels())
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
            pair_noise: args.pair_noise,
            pair_soften: args.pair_soften,
            pair_soften_dry_only: args.pair_soften_dry_only,
            pair_lines: args.pair_lines,
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
        let mut ema_restored = false;
        if let Some(s) = &start {
            let ck = &s.checkpoint;
            let n = checkpoint::restore(&t.stores(), ck, s.resume, t.device)?;
            ema_restored = ck.has_ema();
            if s.resume {
                t.step = ck.step();
                t.history = history::read_history(&t.args.out.join("losses.csv"), t.step);
                // A different stream than the first run's, so a resumed run does not replay
                // the same crops.
                t.rng = Rng::new(t.args.seed ^ t.step.wrapping_mul(0x9E37_79B9));
                eprintln!(
                    "resumed {} at step {} ({n} tensors)",
                    s.path.display(),
                    t.step
                );
            } else {
                eprintln!("initialised {n} tensors from {}", s.path.display());
            }
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

    /// The run state recorded with a checkpoint.
    pub fn run_state(&self) -> RunState {
        RunState {
            step: self.step,
            spec: self.spec,
            has_rain: self.rain.is_some(),
            disc_channels: self.args.disc_channels,
            trainer: self.args.options_text(&self.spec),
            data: self.args.data_text(),
        }
    }

    /// The checkpoint of the current state.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint::from_tensors(self.named_tensors(), &self.run_state())
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
            pair += streak_l1(&o, &b, &c, self.args.streak_mask == StreakMask::Streaks)
                * self.args.lambda_pair_streak;
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
        checkpoint::save_run(out, &self.checkpoint(), &self.run_state())?;
        history::write_history(&out.join("losses.csv"), &self.history)?;
        let (steps, series) = history::series(&self.history);
        plot::loss_curves(&out.join("losses.png"), &steps, &series)?;
        self.sample_sheet(&out.join("samples.png"))?;
        Ok(())
    }

    /// Copies `last.safetensors` to `checkpoints/step-NNNNNN.safetensors`.
    pub fn keep_checkpoint(&self) -> anyhow::Result<PathBuf> {
        checkpoint::keep_checkpoint(&self.args.out, self.step)
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
