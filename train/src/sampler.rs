//! Where the contrastive losses look: non-local self-similarity sampling (NLCL) or uniform
//! random locations (CUT, and the `--random-sampling` ablation).
//!
//! Non-local sampling: pick a random anchor, scan a `window` x `window` neighbourhood of patch
//! positions around it at stride 1, rank the `patch` x `patch` patches there by Euclidean
//! distance to the anchor's patch in a sampling space (raw image or features), and keep the `k`
//! nearest centres. Unlike the official code this works per image, so batches larger than one
//! are supported.

use tch::{Device, Kind, Tensor};

use nlcl::rng::Rng;

/// Sampling parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerConfig {
    /// Non-local self-similarity (true) or uniform random (false).
    pub nonlocal: bool,
    /// Side of the scanned neighbourhood of patch positions (official: 40).
    pub window: i64,
    /// Side of the compared patches (official: 16).
    pub patch: i64,
}

impl Default for SamplerConfig {
    fn default() -> Self {
        SamplerConfig {
            nonlocal: true,
            window: 40,
            patch: 16,
        }
    }
}

/// Sampled centres `(y, x)` for each image of a batch, in the coordinates of the sampling space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Samples {
    /// Height and width of the sampling space.
    pub size: (i64, i64),
    /// Per image, the chosen centres (the same count for every image).
    pub coords: Vec<Vec<(i64, i64)>>,
}

/// Patch geometry on an `h` x `w` map: the effective patch side (shrunk on maps smaller than
/// the patch) and the number of valid top-left positions per axis.
fn geometry(h: i64, w: i64, patch: i64) -> (i64, i64, i64) {
    let p = patch.min(h).min(w).max(1);
    (p, h - p + 1, w - p + 1)
}

/// A `window`-long run of valid top-left positions that contains `a`, shifted inwards at the
/// borders so every anchor gets the same number of candidates.
fn window_range(a: i64, window: i64, n_valid: i64) -> (i64, i64) {
    let win = window.min(n_valid).max(1);
    let start = (a - win / 2).clamp(0, n_valid - win);
    (start, start + win)
}

/// The `k` patch centres nearest (Euclidean distance of `patch` x `patch` patches over all
/// channels) to the anchor's patch, searched in the `window` neighbourhood of the anchor.
///
/// `space` is one image `[C, H, W]`; `anchor` is a patch top-left position. Returns centres
/// (top-left + patch/2), nearest first; fewer than `k` when the window holds fewer patches.
pub fn nearest_patches(
    space: &Tensor,
    anchor: (i64, i64),
    k: usize,
    cfg: &SamplerConfig,
) -> Vec<(i64, i64)> {
    let (_, h, w) = space.size3().expect("sampling space must be [C, H, W]");
    let (p, ny, nx) = geometry(h, w, cfg.patch);
    let (ay, ax) = (anchor.0.clamp(0, ny - 1), anchor.1.clamp(0, nx - 1));
    let (y0, y1) = window_range(ay, cfg.window, ny);
    let (x0, x1) = window_range(ax, cfg.window, nx);
    tch::no_grad(|| {
        let space = space.to_kind(Kind::Float);
        // The region covering every candidate patch of the window.
        let region = space
            .narrow(1, y0, y1 - y0 + p - 1)
            .narrow(2, x0, x1 - x0 + p - 1)
            .unsqueeze(0);
        let anchor_patch = space.narrow(1, ay, p).narrow(2, ax, p).unsqueeze(0);
        // ||P - A||^2 = sum P^2 - 2 P.A + sum A^2, each term as a correlation over the region.
        let cross = region.conv2d::<Tensor>(&anchor_patch, None, 1, 0, 1, 1);
        let ones = Tensor::ones_like(&anchor_patch);
        let sq = region
            .pow_tensor_scalar(2)
            .conv2d::<Tensor>(&ones, None, 1, 0, 1, 1);
        let a2 = anchor_patch.pow_tensor_scalar(2).sum(Kind::Float);
        let dist = (sq - cross * 2.0 + a2).view([-1]);
        let n = dist.size()[0];
        let kk = (k as i64).min(n);
        let (_, idx) = dist.topk(kk, 0, false, true);
        let idx = Vec::<i64>::try_from(idx.to_device(Device::Cpu)).unwrap_or_default();
        let wx = x1 - x0;
        idx.into_iter()
            .map(|i| (y0 + i / wx + p / 2, x0 + i % wx + p / 2))
            .collect()
    })
}

/// Samples `k` centres per image of `space` (`[N, C, H, W]`).
pub fn sample(space: &Tensor, k: usize, cfg: &SamplerConfig, rng: &mut Rng) -> Samples {
    let (n, _, h, w) = space.size4().expect("sampling space must be [N, C, H, W]");
    let mut coords = Vec::with_capacity(n as usize);
    for i in 0..n {
        if cfg.nonlocal {
            let (_, ny, nx) = geometry(h, w, cfg.patch);
            let anchor = (rng.below(ny as u64) as i64, rng.below(nx as u64) as i64);
            coords.push(nearest_patches(&space.get(i), anchor, k, cfg));
        } else {
            // Uniform over all positions without replacement, like CUT's randperm.
            let total = (h * w) as usize;
            let picks = rng.choose_distinct(total, k.min(total));
            coords.push(
                picks
                    .into_iter()
                    .map(|f| (f as i64 / w, f as i64 % w))
                    .collect(),
            );
        }
    }
    Samples {
        size: (h, w),
        coords,
    }
}

/// Gathers the features at the sampled centres, rescaled to `feat`'s size: `[N, C, Hl, Wl]` ->
/// `[N, k, C]`.
pub fn gather(feat: &Tensor, samples: &Samples) -> Tensor {
    let (n, c, hl, wl) = feat.size4().expect("features must be [N, C, H, W]");
    let (h, w) = samples.size;
    let device = feat.device();
    let rows: Vec<Tensor> = (0..n)
        .map(|i| {
            let idx: Vec<i64> = samples.coords[i as usize]
                .iter()
                .map(|&(y, x)| {
                    let yl = (y * hl / h).min(hl - 1);
                    let xl = (x * wl / w).min(wl - 1);
                    yl * wl + xl
                })
                .collect();
            let idx = Tensor::from_slice(&idx).to_device(device);
            feat.get(i)
                .view([c, hl * wl])
                .index_select(1, &idx)
                .transpose(0, 1)
        })
        .collect();
    Tensor::stack(&rows, 0)
}
