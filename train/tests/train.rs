//! Trainer tests on tiny generated data: sampler against brute force, loss floors, gradient flow
//! to every MLP (the official optimiser defects), ablations, resume, unreadable files, rain
//! rendering, ONNX export parity against ONNX Runtime, and checkpoint evaluation against the
//! shared evaluator on the export.

use std::path::{Path, PathBuf};

use nlcl::onnx::meta::{STEPS, TRAINER};
use nlcl::rng::Rng;
use nlcl::synthetic_rain::{RainStyle, render_rain};
use nlcl_train::checkpoint::Checkpoint;
use nlcl_train::data::{add_noise, draw_lines, jpeg_round_trip, soften, synthetic_clean};
use nlcl_train::losses::{
    LayerLossForm, colour_bias, colour_shift, layer_supcon, official_layer_floor, patch_nce,
    streak_l1,
};
use nlcl_train::sampler::{SamplerConfig, gather, nearest_patches, sample};
use nlcl_train::{DeviceChoice, TrainArgs, Trainer};
use tch::{Device, Kind, Tensor};

/// A temp dir removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let p = std::env::temp_dir().join(format!(
            "nlcl-train-test-{tag}-{}-{}",
            std::process::id(),
            Rng::new(tag.len() as u64 ^ std::process::id() as u64).next_u64()
        ));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Clean images (one smaller than the crop, to exercise upscaling), a rainy folder of rendered
/// rain on other synthetic images, and an unreadable file in the clean folder.
fn make_data(root: &Path) -> (PathBuf, PathBuf) {
    let clean = root.join("clean");
    let rainy = root.join("rainy");
    std::fs::create_dir_all(&clean).unwrap();
    std::fs::create_dir_all(&rainy).unwrap();
    for i in 0..4 {
        synthetic_clean(48, 40, i)
            .save(clean.join(format!("c{i}.png")))
            .unwrap();
    }
    synthetic_clean(20, 24, 99)
        .save(clean.join("small.png"))
        .unwrap();
    std::fs::write(clean.join("broken.png"), b"this is not a png").unwrap();
    std::fs::write(clean.join("notes.txt"), b"ignored: not an image extension").unwrap();
    let mut rng = Rng::new(7);
    for i in 0..4 {
        let img = synthetic_clean(48, 48, 100 + i);
        let (w, h) = img.dimensions();
        let n = (w * h) as usize;
        let mut planes = vec![0f32; 3 * n];
        for (j, p) in img.pixels().enumerate() {
            for c in 0..3 {
                planes[c * n + j] = f32::from(p[c]) / 255.0;
            }
        }
        render_rain(
            &mut planes,
            w as usize,
            h as usize,
            &RainStyle::default(),
            &mut rng,
        );
        let out = image::RgbImage::from_fn(w, h, |x, y| {
            let j = (y * w + x) as usize;
            image::Rgb([0, 1, 2].map(|c| (planes[c * n + j] * 255.0).round() as u8))
        });
        out.save(rainy.join(format!("r{i}.png"))).unwrap();
    }
    (rainy, clean)
}

fn tiny_args(root: &Path, rainy: PathBuf, clean: PathBuf, run: &str) -> TrainArgs {
    let mut a = TrainArgs::with_data(root.join(run), vec![clean.clone()]);
    a.rainy = vec![rainy];
    a.render_rain_on = vec![clean];
    a.width = 4;
    a.depth = 2;
    a.unshuffle = 2;
    a.residual = true;
    a.crop = 32;
    a.batch = 2;
    a.steps = 4;
    a.disc_channels = 4;
    a.nce_patches = 16;
    a.layer_image_patches = 4;
    a.layer_rain_patches = 16;
    a.window = 12;
    a.patch = 8;
    a.device = DeviceChoice::Cpu;
    a.threads = Some(1);
    a.checkpoint_every = 1000;
    a.no_progress = true;
    a
}

#[test]
fn sampler_returns_the_k_nearest_patches() {
    tch::manual_seed(1);
    let (c, h, w) = (3i64, 40i64, 44i64);
    let space = Tensor::rand([c, h, w], (Kind::Float, Device::Cpu));
    let cfg = SamplerConfig {
        nonlocal: true,
        window: 12,
        patch: 6,
    };
    let k = 20;
    let anchor = (15i64, 17i64); // top-left, far enough from the borders for a full window
    let got = nearest_patches(&space, anchor, k, &cfg);
    assert_eq!(got.len(), k);
    let v = Vec::<f32>::try_from(space.contiguous().view([-1])).unwrap();
    let at = |ch: i64, y: i64, x: i64| v[((ch * h + y) * w + x) as usize];
    let dist = |ty: i64, tx: i64| {
        let mut d = 0f64;
        for ch in 0..c {
            for dy in 0..cfg.patch {
                for dx in 0..cfg.patch {
                    let e = at(ch, ty + dy, tx + dx) - at(ch, anchor.0 + dy, anchor.1 + dx);
                    d += f64::from(e * e);
                }
            }
        }
        d
    };
    // Brute force over the window of top-left positions around the anchor.
    let mut all = Vec::new();
    for ty in anchor.0 - cfg.window / 2..anchor.0 + cfg.window / 2 {
        for tx in anchor.1 - cfg.window / 2..anchor.1 + cfg.window / 2 {
            all.push(dist(ty, tx));
        }
    }
    all.sort_by(|a, b| a.total_cmp(b));
    let half = cfg.patch / 2;
    let mut got_d: Vec<f64> = got.iter().map(|&(y, x)| dist(y - half, x - half)).collect();
    // Returned nearest first.
    assert!(got_d.windows(2).all(|p| p[0] <= p[1] + 1e-4), "{got_d:?}");
    got_d.sort_by(|a, b| a.total_cmp(b));
    for (g, b) in got_d.iter().zip(&all[..k]) {
        assert!((g - b).abs() < 1e-3, "got {got_d:?}\nbrute {:?}", &all[..k]);
    }
    assert_eq!(
        got[0],
        (anchor.0 + half, anchor.1 + half),
        "the anchor itself is nearest"
    );
}

#[test]
fn sampler_handles_batches_borders_and_small_maps() {
    tch::manual_seed(2);
    let mut rng = Rng::new(3);
    for nonlocal in [true, false] {
        let cfg = SamplerConfig {
            nonlocal,
            window: 40,
            patch: 16,
        };
        let x = Tensor::rand([3, 5, 24, 20], (Kind::Float, Device::Cpu));
        let s = sample(&x, 32, &cfg, &mut rng);
        assert_eq!(s.coords.len(), 3);
        for c in &s.coords {
            assert_eq!(c.len(), s.coords[0].len(), "same count per image");
            assert!(!c.is_empty());
            assert!(
                c.iter()
                    .all(|&(y, xx)| (0..24).contains(&y) && (0..20).contains(&xx))
            );
        }
        // Gathering rescales to another map size.
        let f = Tensor::rand([3, 7, 6, 5], (Kind::Float, Device::Cpu));
        let g = gather(&f, &s);
        assert_eq!(g.size(), vec![3, s.coords[0].len() as i64, 7]);
    }
    // A map smaller than the patch still works (the patch shrinks).
    let x = Tensor::rand([1, 2, 4, 4], (Kind::Float, Device::Cpu));
    let s = sample(&x, 8, &SamplerConfig::default(), &mut rng);
    assert_eq!(s.coords[0].len(), 1);
}

#[test]
fn colour_shift_ignores_grey_changes_and_measures_tints() {
    let o = Tensor::rand([2, 3, 8, 8], (Kind::Float, Device::Cpu)) * 2.0 - 1.0;
    // Brightening evenly (as removing bright streaks does in reverse) is not a cast.
    let grey = colour_shift(&(&o + 0.2), &o).double_value(&[]);
    assert!(grey.abs() < 1e-6, "{grey}");
    // +0.1 red, -0.1 blue: |0.1 - 0| + |0 - 0| + |-0.1 - 0| = 0.2 per image.
    let tint = Tensor::from_slice(&[0.1f32, 0.0, -0.1]).view([1, 3, 1, 1]);
    let cast = colour_shift(&(&o + &tint), &o).double_value(&[]);
    assert!((cast - 0.2).abs() < 1e-5, "{cast}");
}

/// Loss histories written before the colour term existed still load by column name.
#[test]
fn loss_history_reads_older_columns_by_name() {
    let dir = TempDir::new("history");
    let path = dir.0.join("losses.csv");
    std::fs::write(
        &path,
        "step,d,gan,location,layer,rec,fid,idt,total\n1,1,2,3,4,5,6,7,8\n2,1,2,3,4,5,6,7,9\n",
    )
    .unwrap();
    let h = nlcl_train::history::read_history(&path, 1);
    assert_eq!(h.len(), 1, "rows after max_step are dropped");
    let names = nlcl_train::history::LOSS_NAMES;
    let at = |n: &str| h[0].1.values[names.iter().position(|x| *x == n).unwrap()];
    assert_eq!(
        (at("d"), at("idt"), at("total"), at("colour")),
        (1.0, 7.0, 8.0, 0.0)
    );
}

#[test]
fn layer_loss_floor_and_normalisation() {
    // Perfectly separated layers: every image-layer embedding equals u, every rain one -u.
    let d = 8;
    let mut u = vec![0f32; d];
    u[0] = 1.0;
    let zb = Tensor::from_slice(&u)
        .view([1, 1, d as i64])
        .repeat([1, 8, 1]);
    let zr = -Tensor::from_slice(&u)
        .view([1, 1, d as i64])
        .repeat([1, 128, 1]);
    let off = layer_supcon(&zb, &zr, 0.07, LayerLossForm::Official).double_value(&[]);
    let floor = official_layer_floor(8, 128);
    assert!((floor - 4.674).abs() < 1e-3, "{floor}");
    assert!((off - floor).abs() < 1e-3, "{off} vs {floor}");
    let norm = layer_supcon(&zb, &zr, 0.07, LayerLossForm::Normalized).double_value(&[]);
    assert!(norm.abs() < 1e-3, "{norm}");
    let z = Tensor::randn([1, 136, d as i64], (Kind::Float, Device::Cpu));
    let z = &z / z.norm_scalaropt_dim(2, [2], true);
    let rnd = layer_supcon(
        &z.narrow(1, 0, 8),
        &z.narrow(1, 8, 128),
        0.07,
        LayerLossForm::Normalized,
    )
    .double_value(&[]);
    assert!(
        rnd > 0.5,
        "random embeddings are far from the optimum: {rnd}"
    );
}

#[test]
fn patch_nce_prefers_matching_keys() {
    tch::manual_seed(4);
    let q = Tensor::randn([2, 16, 32], (Kind::Float, Device::Cpu));
    let q = &q / q.norm_scalaropt_dim(2, [2], true);
    let same = patch_nce(&q, &q, 0.07).double_value(&[]);
    let other = Tensor::randn([2, 16, 32], (Kind::Float, Device::Cpu));
    let other = &other / other.norm_scalaropt_dim(2, [2], true);
    let diff = patch_nce(&q, &other, 0.07).double_value(&[]);
    assert!(same < 0.5 && diff > 1.0, "same {same} diff {diff}");
}

#[test]
fn jpeg_round_trip_degrades_a_crop_slightly() {
    let img = synthetic_clean(32, 32, 9);
    let n = 32 * 32;
    let mut planes = vec![0f32; 3 * n];
    for (j, p) in img.pixels().enumerate() {
        for c in 0..3 {
            planes[c * n + j] = f32::from(p[c]) / 255.0;
        }
    }
    let q30 = jpeg_round_trip(&planes, 32, 30);
    let q90 = jpeg_round_trip(&planes, 32, 90);
    let err = |o: &[f32]| {
        o.iter()
            .zip(&planes)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / o.len() as f32
    };
    assert!(
        err(&q90) > 0.0 && err(&q90) < err(&q30) && err(&q30) < 0.05,
        "{} {}",
        err(&q90),
        err(&q30)
    );
}

#[test]
fn pair_noise_has_the_drawn_spread_and_stays_in_range() {
    let mut rng = Rng::new(3);
    let grey = vec![0.5f32; 3 * 64 * 64];
    let mut noisy = grey.clone();
    add_noise(&mut noisy, 4.0 / 255.0, &mut rng);
    let n = noisy.len() as f32;
    let mean = noisy.iter().sum::<f32>() / n;
    let sd = (noisy.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt() * 255.0;
    assert!(
        (mean - 0.5).abs() < 0.001 && (sd - 4.0).abs() < 0.2,
        "{mean} {sd}"
    );
    let mut white = vec![1.0f32; 300];
    add_noise(&mut white, 0.1, &mut rng);
    assert!(white.iter().all(|v| (0.0..=1.0).contains(v)) && white.iter().any(|&v| v < 1.0));
    let mut same = grey.clone();
    add_noise(&mut same, 0.0, &mut rng);
    assert_eq!(same, grey, "sigma 0 leaves the crop alone");
    // Out-of-range values are refused before training starts.
    let dir = TempDir::new("noise");
    let (rainy, clean) = make_data(&dir.0);
    let mut args = tiny_args(&dir.0, rainy, clean, "noise");
    args.pair_noise = -1.0;
    let err = format!("{:#}", nlcl_train::train(&args).unwrap_err());
    assert!(err.contains("--pair-noise -1"), "{err}");
}

#[test]
fn soften_blurs_detail_and_keeps_flat_areas_and_the_mean() {
    let side = 48u32;
    let n = (side * side) as usize;
    // A one-pixel checkerboard in every channel, and a flat grey crop.
    let checker: Vec<f32> = (0..3 * n)
        .map(|i| {
            if ((i % n) % 48 + (i % n) / 48).is_multiple_of(2) {
                0.8
            } else {
                0.2
            }
        })
        .collect();
    let soft = soften(&checker, side, 2.0);
    let contrast =
        |p: &[f32]| p.windows(2).map(|w| (w[0] - w[1]).abs()).sum::<f32>() / p.len() as f32;
    assert!(
        contrast(&soft) < 0.2 * contrast(&checker),
        "{}",
        contrast(&soft)
    );
    let mean = |p: &[f32]| p.iter().sum::<f32>() / p.len() as f32;
    assert!((mean(&soft) - mean(&checker)).abs() < 0.01);
    let flat = vec![0.6f32; 3 * n];
    assert!(
        soften(&flat, side, 2.7)
            .iter()
            .all(|v| (v - 0.6).abs() < 1e-5)
    );
    assert_eq!(
        soften(&checker, side, 1.0),
        checker,
        "factor 1 leaves the crop alone"
    );
    // The option is recorded only when set, and checked before training starts.
    let dir = TempDir::new("soften");
    let (rainy, clean) = make_data(&dir.0);
    let mut args = tiny_args(&dir.0, rainy, clean, "soften");
    assert!(!args.data_text().contains("pair_soften"));
    args.pair_soften = 0.3;
    assert!(
        args.data_text().contains(" pair_soften=0.3 "),
        "{}",
        args.data_text()
    );
    args.pair_soften_dry_only = true;
    assert!(args.data_text().contains(" pair_soften_dry=0.3 "));
    args.pair_soften = 1.5;
    let err = format!("{:#}", nlcl_train::train(&args).unwrap_err());
    assert!(err.contains("--pair-soften 1.5"), "{err}");
}

#[test]
fn drawn_lines_are_thin_and_cross_the_whole_crop() {
    let side = 64u32;
    let n = (side * side) as usize;
    let grey = vec![0.5f32; 3 * n];
    let mut drawn_any = 0;
    for seed in 0..40u64 {
        let mut crop = grey.clone();
        draw_lines(&mut crop, side, &mut Rng::new(seed));
        let changed: Vec<usize> = (0..n).filter(|&i| (crop[i] - 0.5).abs() > 0.02).collect();
        if changed.is_empty() {
            continue;
        }
        drawn_any += 1;
        assert!(crop.iter().all(|v| (0.0..=1.0).contains(v)));
        // Thin: a few lines of at most 2.5 pixels (anti-aliased into 4) in up to two
        // families never cover most of the crop.
        assert!(
            changed.len() < n * 3 / 4,
            "seed {seed}: {} of {n}",
            changed.len()
        );
        // Lines cross the whole crop: what is drawn enters at one border and leaves at another.
        let at = |x: usize, y: usize| (crop[y * side as usize + x] - 0.5).abs() > 0.02;
        let s = side as usize;
        let borders = [
            (0..s).any(|x| at(x, 0)),
            (0..s).any(|x| at(x, s - 1)),
            (0..s).any(|y| at(0, y)),
            (0..s).any(|y| at(s - 1, y)),
        ];
        assert!(
            borders.iter().filter(|&&b| b).count() >= 2,
            "seed {seed}: the lines end inside the crop"
        );
    }
    assert!(drawn_any >= 35, "{drawn_any} of 40 crops got lines");
    // The same seed draws the same lines; a short crop buffer is left alone.
    let (mut a, mut b) = (grey.clone(), grey.clone());
    draw_lines(&mut a, side, &mut Rng::new(7));
    draw_lines(&mut b, side, &mut Rng::new(7));
    assert_eq!(a, b);
    let mut short = vec![0.5f32; 10];
    draw_lines(&mut short, side, &mut Rng::new(7));
    assert!(short.iter().all(|&v| v == 0.5));
    // The option is recorded only when set, and checked before training starts.
    let dir = TempDir::new("lines");
    let (rainy, clean) = make_data(&dir.0);
    let mut args = tiny_args(&dir.0, rainy, clean, "lines");
    assert!(!args.data_text().contains("pair_lines"));
    args.pair_lines = 0.3;
    assert!(
        args.data_text().contains(" pair_lines=0.3 "),
        "{}",
        args.data_text()
    );
    args.pair_lines = -0.1;
    let err = format!("{:#}", nlcl_train::train(&args).unwrap_err());
    assert!(err.contains("--pair-lines -0.1"), "{err}");
}

#[test]
fn colour_bias_sees_global_shifts_not_local_errors() {
    let c = Tensor::zeros([2, 3, 4, 4], (Kind::Float, Device::Cpu));
    // A uniform shift of -0.1 on every pixel of channel 0 of image 0.
    let shifted = c.copy();
    let _ = shifted.get(0).get(0).fill_(-0.1);
    let v = colour_bias(&shifted, &c).double_value(&[]);
    assert!((v - 0.1 / 6.0).abs() < 1e-6, "{v}");
    // A local error of +0.8 and -0.8 on two pixels: no global shift.
    let local = c.copy();
    let _ = local.get(1).get(2).get(0).get(0).fill_(0.8);
    let _ = local.get(1).get(2).get(3).get(3).fill_(-0.8);
    assert!(colour_bias(&local, &c).double_value(&[]).abs() < 1e-7);
}

#[test]
fn streak_l1_averages_over_rain_pixels_only() {
    // 1x3x1x4 crops: pixel 1 carries rain (+0.5), pixel 3 a change below 3 levels.
    let clean = Tensor::zeros([1, 3, 1, 4], (Kind::Float, Device::Cpu));
    let rainy = clean.copy();
    let _ = rainy.narrow(3, 1, 1).fill_(0.5);
    let _ = rainy.narrow(3, 3, 1).fill_(0.01);
    // The output keeps half the streak and makes an error of 0.2 on a dry pixel.
    let out = clean.copy();
    let _ = out.narrow(3, 1, 1).fill_(0.25);
    let _ = out.narrow(3, 0, 1).fill_(0.2);
    let v = streak_l1(&rainy, &out, &clean, false).double_value(&[]);
    // One rain pixel with error 0.25, divided by (1 + 1).
    assert!((v - 0.125).abs() < 1e-6, "{v}");
    // A dry pair adds nothing.
    let dry = streak_l1(&clean, &out, &clean, false).double_value(&[]);
    assert_eq!(dry, 0.0);
}

#[test]
fn streak_mask_of_streaks_leaves_veils_out() {
    // 1x3x16x16 crops: a uniform veil of +0.1 everywhere and one bright vertical streak of
    // +0.5 more in column 8. The output removes nothing.
    let clean = Tensor::zeros([1, 3, 16, 16], (Kind::Float, Device::Cpu));
    let rainy = clean.copy() + 0.1;
    let _ = rainy.narrow(3, 8, 1).fill_(0.6);
    let out = rainy.copy();
    // All rain pixels: the veil counts, the mean error is near the veil's 0.1.
    let all = streak_l1(&rainy, &out, &clean, false).double_value(&[]);
    // Streaks only: the 16 streak pixels (error 0.6) and nothing of the veil.
    let streaks = streak_l1(&rainy, &out, &clean, true).double_value(&[]);
    assert!(
        (all - (16.0 * 0.6 + 240.0 * 0.1) / 257.0).abs() < 1e-5,
        "{all}"
    );
    assert!((streaks - 16.0 * 0.6 / 17.0).abs() < 1e-5, "{streaks}");
}

#[test]
fn rain_renderer_adds_streaks_in_range() {
    let img = synthetic_clean(64, 64, 5);
    let n = 64 * 64;
    let mut planes = vec![0f32; 3 * n];
    for (j, p) in img.pixels().enumerate() {
        for c in 0..3 {
            planes[c * n + j] = f32::from(p[c]) / 255.0;
        }
    }
    let before = planes.clone();
    let style = RainStyle {
        veil: (0.0, 0.0),
        ..RainStyle::default()
    };
    render_rain(&mut planes, 64, 64, &style, &mut Rng::new(11));
    assert!(planes.iter().all(|v| (0.0..=1.0).contains(v)));
    // Screen blending only brightens; streaks touch a minority of pixels.
    assert!(planes.iter().zip(&before).all(|(a, b)| a + 1e-6 >= *b));
    let changed = planes
        .iter()
        .zip(&before)
        .filter(|(a, b)| **a > **b + 0.02)
        .count();
    assert!(changed > 30 && changed < 3 * n / 2, "{changed}");
}

fn snapshot(t: &Trainer) -> Vec<(String, Tensor)> {
    t.named_tensors()
        .into_iter()
        .map(|(n, x)| (n, x.copy()))
        .collect()
}

fn changed_groups(before: &[(String, Tensor)], after: &[(String, Tensor)]) -> Vec<(String, bool)> {
    before
        .iter()
        .zip(after)
        .map(|((n, a), (_, b))| (n.clone(), (a - b).abs().max().double_value(&[]) > 0.0))
        .collect()
}

#[test]
fn every_network_and_mlp_is_updated_by_a_step() {
    let dir = TempDir::new("grad");
    let (rainy, clean) = make_data(&dir.0);
    let args = tiny_args(&dir.0, rainy, clean, "run");
    let mut t = Trainer::new(&args).unwrap();
    let before = snapshot(&t);
    let l = t.train_step();
    assert!(l.values.iter().all(|v| v.is_finite()), "{l:?}");
    let after = snapshot(&t);
    let groups = changed_groups(&before, &after);
    for prefix in ["back.", "rain.", "disc.", "mlp_loc.", "mlp_layer."] {
        let mine: Vec<_> = groups
            .iter()
            .filter(|(n, _)| n.starts_with(prefix))
            .collect();
        assert!(!mine.is_empty(), "no tensors under {prefix}");
        // Weights of the last linear layer of each MLP must move (they get the gradient of
        // every embedding); check all weights, which catches an optimiser that is never stepped.
        for (n, changed) in mine {
            if n.ends_with("weight") {
                assert!(*changed, "{n} did not change after one step");
            }
        }
    }
}

#[test]
fn official_defects_flag_reproduces_the_frozen_mlps() {
    let dir = TempDir::new("defects");
    let (rainy, clean) = make_data(&dir.0);
    let mut args = tiny_args(&dir.0, rainy, clean, "run");
    args.official_defects = true;
    let mut t = Trainer::new(&args).unwrap();
    let before = snapshot(&t);
    t.train_step();
    let groups = changed_groups(&before, &snapshot(&t));
    // The "never stepped" checks below mean something only if those tensors exist.
    for prefix in ["mlp_loc.", "mlp_layer_b.", "mlp_layer_r."] {
        assert!(
            groups
                .iter()
                .any(|(n, _)| n.starts_with(prefix) && n.ends_with("weight")),
            "official: no {prefix} weights among {:?}",
            groups.iter().map(|(n, _)| n).collect::<Vec<_>>()
        );
    }
    let any = |p: &str| groups.iter().any(|(n, c)| n.starts_with(p) && *c);
    assert!(!any("mlp_loc."), "official: location MLP never stepped");
    assert!(
        !any("mlp_layer_b."),
        "official: image-layer MLP never stepped"
    );
    assert!(any("mlp_layer_r."), "official: rain-layer MLP stepped");
    assert!(any("back.") && any("rain."));
}

#[test]
fn ablations_train_and_record_their_flags() {
    let dir = TempDir::new("ablations");
    let (rainy, clean) = make_data(&dir.0);
    type Flip = fn(&mut TrainArgs);
    let cases: [(&str, Flip, &str); 5] = [
        ("nlcl", |_| {}, "mode=nlcl"),
        ("nolayer", |a| a.no_layer_loss = true, "layer_loss=off"),
        ("noloc", |a| a.no_location_loss = true, "location_loss=off"),
        ("random", |a| a.random_sampling = true, "sampling=random"),
        ("cut", |a| a.cut = true, "mode=cut"),
    ];
    for (name, flip, flag) in cases {
        let mut args = tiny_args(&dir.0, rainy.clone(), clean.clone(), name);
        args.steps = 2;
        flip(&mut args);
        nlcl_train::train(&args).unwrap();
        let ck = Checkpoint::load(&args.out.join("last.safetensors")).unwrap();
        assert_eq!(ck.step(), 2, "{name}");
        let trainer = &ck.metadata[TRAINER];
        assert!(trainer.contains(flag), "{name}: {trainer}");
        assert_eq!(
            ck.get("rain.head.weight").is_some(),
            name != "cut",
            "{name}"
        );
        for f in [
            "losses.png",
            "samples.png",
            "losses.csv",
            "state.toml",
            "options.txt",
        ] {
            assert!(args.out.join(f).exists(), "{name}: {f} missing");
        }
        // The ablation's zeroed terms really are off.
        let csv = std::fs::read_to_string(args.out.join("losses.csv")).unwrap();
        let last: Vec<f64> = csv
            .lines()
            .last()
            .unwrap()
            .split(',')
            .map(|v| v.parse().unwrap())
            .collect();
        match name {
            "nolayer" | "cut" => assert_eq!(last[4], 0.0, "{name} layer"),
            "noloc" => assert_eq!(last[3], 0.0, "{name} location"),
            _ => {}
        }
        if name == "cut" {
            assert_eq!(last[5], 0.0, "cut has no reconstruction term");
        }
    }
}

#[test]
fn rain_overrides_change_the_style_and_are_recorded() {
    let dir = TempDir::new("drops");
    let (rainy, clean) = make_data(&dir.0);
    let mut args = tiny_args(&dir.0, rainy, clean, "drops");
    args.rain_style = "mixed".into();
    assert_eq!(args.rain_style().unwrap().drops, RainStyle::mixed().drops);
    assert!(
        !args.data_text().contains("rain_drops"),
        "unset: not recorded"
    );
    args.rain_drops = Some(0.0);
    assert_eq!(args.rain_style().unwrap().drops, 0.0);
    assert!(args.data_text().contains("rain_style=mixed rain_drops=0 "));
    args.rain_accumulation = Some(0.0);
    assert_eq!(args.rain_style().unwrap().accumulation, (0.0, 0.0));
    assert!(
        args.data_text()
            .contains("rain_drops=0 rain_accumulation=0 ")
    );
    args.rain_accumulation = Some(0.1);
    let (lo, hi) = args.rain_style().unwrap().accumulation;
    assert!(lo <= hi && hi == 0.1, "{lo} {hi}");
    args.rain_drops = Some(1.5);
    let err = args.rain_style().unwrap_err().to_string();
    assert!(err.contains("--rain-drops 1.5"), "{err}");
    args.rain_drops = None;
    args.rain_accumulation = Some(-0.5);
    let err = args.rain_style().unwrap_err().to_string();
    assert!(err.contains("--rain-accumulation -0.5"), "{err}");
    args.rain_accumulation = Some(0.0);
    args.rain_sharp_downpour = Some(0.5);
    assert_eq!(args.rain_style().unwrap().sharp_downpour, 0.5);
    assert!(
        args.data_text()
            .contains("rain_accumulation=0 rain_sharp_downpour=0.5 ")
    );
    args.rain_sharp_downpour = Some(2.0);
    let err = args.rain_style().unwrap_err().to_string();
    assert!(err.contains("--rain-sharp-downpour 2"), "{err}");
    args.rain_sharp_downpour = None;
    // Fitted streak ranges: parsed, drawn on their share of the images, recorded.
    let fit =
        "angle=-12.0:4.0 length=14.0:38.0 coverage=0.0200:0.0900 brightness=0.300:0.700 blur=0:2";
    args.rain_fit = Some(fit.into());
    args.rain_fit_share = 0.6;
    let style = args.rain_style().unwrap();
    assert_eq!(
        style
            .fitted
            .iter()
            .map(|f| f.to_string())
            .collect::<Vec<_>>(),
        [fit]
    );
    assert_eq!(style.fitted_share, 0.6);
    assert!(
        args.data_text()
            .contains(&format!("rain_fit=[{fit}] rain_fit_share=0.6 "))
    );
    // Several ranges (the joint fit): each is kept.
    args.rain_fit = Some(format!("{fit}; {}", fit.replace("-12.0:4.0", "10.0:14.0")));
    assert_eq!(args.rain_style().unwrap().fitted.len(), 2);
    args.rain_fit_share = 1.5;
    let err = args.rain_style().unwrap_err().to_string();
    assert!(err.contains("--rain-fit-share 1.5"), "{err}");
    args.rain_fit_share = 0.6;
    args.rain_fit = Some("angle=4:-12".into());
    let err = format!("{:#}", args.rain_style().unwrap_err());
    assert!(
        err.contains("--rain-fit") && err.contains("angle=4:-12"),
        "{err}"
    );
}

#[test]
fn resume_continues_from_the_saved_step_and_weights() {
    let dir = TempDir::new("resume");
    let (rainy, clean) = make_data(&dir.0);
    let mut args = tiny_args(&dir.0, rainy, clean, "run");
    args.steps = 3;
    args.checkpoint_every = 2;
    args.keep_checkpoints = true;
    nlcl_train::train(&args).unwrap();
    // Only periodic checkpoints are kept (step 2), the final one lives in last.safetensors.
    let kept = args.out.join("checkpoints").join("step-000002.safetensors");
    assert_eq!(Checkpoint::load(&kept).unwrap().step(), 2);
    assert!(
        !args
            .out
            .join("checkpoints")
            .join("step-000003.safetensors")
            .exists()
    );
    let saved = Checkpoint::load(&args.out.join("last.safetensors")).unwrap();
    assert_eq!(saved.step(), 3);
    // Resuming with a different architecture on the command line keeps the checkpoint's.
    args.steps = 5;
    args.width = 8;
    let t = Trainer::new(&args).unwrap();
    assert_eq!(t.step, 3);
    assert_eq!(t.spec.width, 4);
    assert_eq!(t.history.len(), 3, "loss history restored");
    for (name, x) in t.named_tensors() {
        let (_, v) = saved.get(&name).unwrap();
        let y = Vec::<f32>::try_from(x.contiguous().view([-1])).unwrap();
        assert!(y == v, "{name} differs from the checkpoint");
    }
    drop(t);
    nlcl_train::train(&args).unwrap();
    let ck = Checkpoint::load(&args.out.join("last.safetensors")).unwrap();
    assert_eq!(ck.step(), 5);
    // --init fine-tunes from a checkpoint into a fresh run, starting at step 0.
    let mut ft = args.clone();
    ft.out = dir.0.join("finetune");
    ft.width = 4;
    ft.init = Some(args.out.join("last.safetensors"));
    let t = Trainer::new(&ft).unwrap();
    assert_eq!(t.step, 0);
    let (_, v) = ck.get("back.head.weight").unwrap();
    let x = t
        .named_tensors()
        .into_iter()
        .find(|(n, _)| n == "back.head.weight")
        .unwrap()
        .1;
    assert!(Vec::<f32>::try_from(x.contiguous().view([-1])).unwrap() == v);
    // Like a resume, --init takes the checkpoint's architecture over the command line's (the
    // weights only fit that one), so fine-tuning a shipped model needs no architecture flags.
    ft.width = 8;
    ft.out = dir.0.join("finetune8");
    let t = Trainer::new(&ft).unwrap();
    assert_eq!((t.step, t.spec.width), (0, 4));
}

#[test]
fn unreadable_files_are_skipped_and_counted() {
    let dir = TempDir::new("skip");
    let (rainy, clean) = make_data(&dir.0);
    let args = tiny_args(&dir.0, rainy, clean, "run");
    let t = Trainer::new(&args).unwrap();
    // broken.png is listed twice: once under --clean, once under --render-rain-on.
    assert_eq!(t.skipped.len(), 2, "{:?}", t.skipped);
    assert!(t.skipped.iter().all(|s| s.path.ends_with("broken.png")));
    // An empty clean folder is an error, not a panic.
    let empty = dir.0.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let mut bad = args.clone();
    bad.clean = vec![empty];
    bad.out = dir.0.join("bad");
    assert!(Trainer::new(&bad).is_err());
}

/// `--rain-threshold` is recorded as `nlcl.rain_threshold`, read back by the engine's
/// `ModelInfo::rain_threshold` (what the element's auto-bypass uses); out of range is refused.
#[test]
fn export_records_the_rain_threshold() {
    use nlcl_train::export::{Task, export_bytes};
    let dir = TempDir::new("threshold");
    let (rainy, clean) = make_data(&dir.0);
    let args = tiny_args(&dir.0, rainy, clean, "run");
    let ck = Trainer::new(&args).unwrap().checkpoint();
    let bytes = export_bytes(&ck, Task::Derain, false, None, Some(0.3), 0.0).unwrap();
    let meta = nlcl::onnx::read_metadata(&bytes).unwrap();
    assert!(
        meta.iter()
            .any(|(k, v)| k == nlcl::onnx::meta::RAIN_THRESHOLD && v == "0.3"),
        "{meta:?}"
    );
    let opts = nlcl::runtime::SessionOptions {
        threads: 1,
        ..Default::default()
    };
    let model = nlcl::runtime::Model::from_bytes(&bytes, "test", &opts).unwrap();
    assert_eq!(model.info().rain_threshold(), Some(0.3));
    let plain = export_bytes(&ck, Task::Derain, false, None, None, 0.0).unwrap();
    let model = nlcl::runtime::Model::from_bytes(&plain, "test", &opts).unwrap();
    assert_eq!(model.info().rain_threshold(), None);
    let err = export_bytes(&ck, Task::Derain, false, None, Some(300.0), 0.0)
        .unwrap_err()
        .to_string();
    assert!(err.contains("--rain-threshold 300"), "{err}");
}

#[test]
fn exported_onnx_matches_the_torch_network() {
    let dir = TempDir::new("parity");
    let (rainy, clean) = make_data(&dir.0);
    // (unshuffle, global residual, detail radius); the detail layer's box mean reaches past
    // the 36x44 frame's edges, so its border handling is compared too.
    for (unshuffle, residual, detail) in [(2usize, true, 0usize), (1, false, 0), (2, true, 5)] {
        let mut args = tiny_args(
            &dir.0,
            rainy.clone(),
            clean.clone(),
            &format!("run{unshuffle}-{detail}"),
        );
        args.unshuffle = unshuffle;
        args.residual = residual;
        args.detail_radius = detail;
        let mut t = Trainer::new(&args).unwrap();
        t.train_step();
        let ck = t.checkpoint();
        let bytes = nlcl_train::export::export_bytes(
            &ck,
            nlcl_train::export::Task::Derain,
            true,
            None,
            None,
            0.0,
        )
        .unwrap();
        let meta = nlcl::onnx::read_metadata(&bytes).unwrap();
        assert!(
            meta.iter()
                .any(|(k, v)| k == TRAINER && v.contains("mode=nlcl"))
        );
        assert!(meta.iter().any(|(k, v)| k == STEPS && v == "1"));
        let opts = nlcl::runtime::SessionOptions {
            threads: 1,
            ..Default::default()
        };
        // An export ONNX Runtime cannot load is a failure, not a reason to skip the comparison.
        let mut model =
            nlcl::runtime::Model::from_bytes(&bytes, "test", &opts).unwrap_or_else(|e| {
                panic!("s{unshuffle} h{detail}: ONNX Runtime cannot load the export: {e}")
            });
        let (n, h, w) = (2usize, 36usize, 44usize);
        tch::manual_seed(9);
        // Moderate inputs so that the graph's output clamp rarely matters; both sides clamp.
        let x = Tensor::rand(
            [n as i64, 3, h as i64, w as i64],
            (Kind::Float, Device::Cpu),
        ) * 1.6
            - 0.8;
        let input = Vec::<f32>::try_from(x.contiguous().view([-1])).unwrap();
        let mut clean_out = vec![0f32; input.len()];
        let mut rain_out = vec![0f32; input.len()];
        model
            .run(&input, n, h, w, &mut clean_out, Some(&mut rain_out))
            .unwrap();
        let (b, r) = tch::no_grad(|| {
            (
                t.back().forward(&x).clamp(-1.0, 1.0),
                t.rain().unwrap().forward(&x).clamp(-1.0, 1.0),
            )
        });
        for (name, ours, theirs) in [("clean", b, clean_out), ("rain", r, rain_out)] {
            let ours = Vec::<f32>::try_from(ours.contiguous().view([-1])).unwrap();
            let max = ours
                .iter()
                .zip(&theirs)
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                max < 1e-4,
                "{name} s{unshuffle} h{detail}: max abs error {max}"
            );
            eprintln!("parity {name} unshuffle {unshuffle} detail {detail}: max abs error {max:e}");
        }
    }
}

#[test]
fn checkpoint_eval_matches_the_shared_evaluator_on_its_export() {
    use nlcl::evaluate::{self, Rgb8};
    let dir = TempDir::new("eval");
    let (rainy, clean) = make_data(&dir.0);
    let mut args = tiny_args(&dir.0, rainy, clean, "run");
    args.ema = 0.5;
    let mut t = Trainer::new(&args).unwrap();
    t.train_step();
    let ck = t.checkpoint();
    let ck_path = dir.0.join("ck.safetensors");
    ck.save(&ck_path).unwrap();

    // A paired set (odd sizes: padded to the size multiple and cropped back): streaks on
    // synthetic clean images.
    let pairs = dir.0.join("pairs");
    let (input_dir, target_dir) = (pairs.join("input"), pairs.join("target"));
    std::fs::create_dir_all(&input_dir).unwrap();
    std::fs::create_dir_all(&target_dir).unwrap();
    for i in 0..3 {
        let target = synthetic_clean(51, 45, 200 + i);
        let mut input = target.clone();
        for (x, _, p) in input.enumerate_pixels_mut() {
            if x % 7 == 0 {
                p.0 = p.0.map(|v| v.saturating_add(40));
            }
        }
        target.save(target_dir.join(format!("p{i}.png"))).unwrap();
        input.save(input_dir.join(format!("p{i}.png"))).unwrap();
    }

    // `nlcl-train eval` with both spellings of the paired set.
    for (pairs_flag, input, target) in [
        (Some(pairs.clone()), None, None),
        (None, Some(input_dir.clone()), Some(target_dir.clone())),
    ] {
        nlcl_train::eval::evaluate(&nlcl_train::eval::EvalArgs {
            run: ck_path.clone(),
            pairs: pairs_flag,
            input,
            target,
            clean: Some(target_dir.clone()),
            device: DeviceChoice::Cpu,
            limit: None,
        })
        .unwrap();
    }

    // The checkpoint through libtorch...
    let (_vs, g) = nlcl_train::eval::load_back(&ck, Device::Cpu).unwrap();
    let spec = ck.spec().unwrap();
    let (torch, n) =
        nlcl_train::eval::eval_paired(&g, &spec, &input_dir, &target_dir, None, Device::Cpu)
            .unwrap();
    assert_eq!(n, 3);
    let (torch_dnh, _) =
        nlcl_train::eval::eval_identity(&g, &spec, &target_dir, None, Device::Cpu).unwrap();

    // ... against its export through ONNX Runtime, as `nlcl eval` runs it.
    let bytes = nlcl_train::export::export_bytes(
        &ck,
        nlcl_train::export::Task::Derain,
        false,
        None,
        None,
        0.0,
    )
    .unwrap();
    let opts = nlcl::runtime::SessionOptions {
        threads: 1,
        ..Default::default()
    };
    let mut model = nlcl::runtime::Model::from_bytes(&bytes, "test", &opts).unwrap();
    let mut derain =
        |img: &Rgb8| Ok::<_, anyhow::Error>(model.derain_rgb8(&img.data, img.width, img.height)?);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&input_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let ort = evaluate::eval_pairs(
        &files,
        &target_dir,
        nlcl_train::eval::load_rgb8,
        &mut derain,
        |_| {},
    );
    assert_eq!((ort.scored, ort.skipped), (3, 0));
    let ort = ort.mean().unwrap();
    let clean_files: Vec<PathBuf> = files
        .iter()
        .map(|f| target_dir.join(f.file_name().unwrap()))
        .collect();
    let ort_dnh = evaluate::eval_clean(
        &clean_files,
        nlcl_train::eval::load_rgb8,
        &mut derain,
        |_| {},
    )
    .mean()
    .unwrap();
    eprintln!("torch {torch:?}\nort   {ort:?}\ntorch {torch_dnh:?}\nort   {ort_dnh:?}");
    assert_eq!(torch.input_psnr, ort.input_psnr);
    assert_eq!(torch.input_ssim, ort.input_ssim);
    assert!((torch.output_psnr - ort.output_psnr).abs() < 0.01);
    assert!((torch.output_ssim - ort.output_ssim).abs() < 1e-4);
    assert!((torch_dnh.psnr_y - ort_dnh.psnr_y).abs() < 0.01);
    assert!((torch_dnh.psnr_rgb - ort_dnh.psnr_rgb).abs() < 0.01);
}
