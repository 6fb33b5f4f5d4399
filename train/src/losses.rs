//! The NLCL losses: LSGAN, location contrastive (PatchNCE) and layer contrastive
//! (supervised contrastive between image-layer and rain-layer embeddings).

use tch::{Kind, Reduction, Tensor};

/// LSGAN: mean squared error of the patch scores to 1 (`real`) or 0.
pub fn lsgan(pred: &Tensor, real: bool) -> Tensor {
    let target = if real {
        pred.ones_like()
    } else {
        pred.zeros_like()
    };
    pred.mse_loss(&target, Reduction::Mean)
}

/// Colour-cast penalty: the per-channel mean change `m_c = mean(b_c - o_c)` of each image,
/// minus its grey part `mean_c(m_c)`, summed over channels in absolute value and averaged over
/// the batch. Removing colourless rain may brighten or darken an image evenly; it should not
/// tint it. Inputs `[N, 3, H, W]`.
pub fn colour_shift(b: &Tensor, o: &Tensor) -> Tensor {
    let m = (b - o).mean_dim(&[2i64, 3][..], false, Kind::Float);
    let grey = m.mean_dim(&[1i64][..], true, Kind::Float);
    (m - grey)
        .abs()
        .sum_dim_intlist(&[1i64][..], false, Kind::Float)
        .mean(Kind::Float)
}

/// L1 between `b` and `c` averaged over the rain pixels only: those where the rendered rain
/// (`rainy - clean`, largest over channels) exceeds 3 levels (tensors in [-1, 1]: 1 level =
/// 2/255). With `streaks_only`, the rain's local mean (7x7) is taken off first, so that smooth
/// veils and accumulation fall out of the mask and only streaks and drops stay: a mask that
/// covers veils teaches "darken bright regions", which darkens dry frames. Zero for dry
/// pairs. Streaks cover a few percent of a crop; in the plain L1 their error is diluted by
/// the rest of the image.
pub fn streak_l1(rainy: &Tensor, b: &Tensor, c: &Tensor, streaks_only: bool) -> Tensor {
    let mut rain = (rainy - c).abs().amax([1i64].as_slice(), true);
    if streaks_only {
        let local = rain.avg_pool2d([7, 7], [1, 1], [3, 3], false, false, None::<i64>);
        rain -= local;
    }
    let mask = rain.gt(3.0 * 2.0 / 255.0).to_kind(b.kind());
    let err = (b - c).abs().mean_dim([1i64].as_slice(), true, b.kind());
    (err * &mask).sum(b.kind()) / (mask.sum(b.kind()) + 1.0)
}

/// Mean over images and channels of `|mean(b - c)|` taken over each image's pixels: the
/// global colour (brightness) shift of the output, in tensor units (1 level = 2/255).
pub fn colour_bias(b: &Tensor, c: &Tensor) -> Tensor {
    (b - c)
        .mean_dim([2i64, 3].as_slice(), false, b.kind())
        .abs()
        .mean(b.kind())
}

/// Structural term of the synthetic-pair loss: L1 between the horizontal and vertical finite
/// differences of `b` and `c` (`[N, C, H, W]`), so edges are restored, not only mean intensities.
pub fn gradient_l1(b: &Tensor, c: &Tensor) -> Tensor {
    let (h, w) = (b.size()[2], b.size()[3]);
    let dx = |t: &Tensor| t.narrow(3, 1, w - 1) - t.narrow(3, 0, w - 1);
    let dy = |t: &Tensor| t.narrow(2, 1, h - 1) - t.narrow(2, 0, h - 1);
    (dx(b).l1_loss(&dx(c), Reduction::Mean) + dy(b).l1_loss(&dy(c), Reduction::Mean)) * 0.5
}

/// PatchNCE (CUT): each query `q[n, i]` must pick its key `k[n, i]` (same location of the other
/// image) among the keys of the other sampled locations of the same image.
///
/// `q`, `k`: `[N, K, D]`, unit rows. The keys are detached, as in CUT. Returns the mean
/// cross-entropy over all queries.
pub fn patch_nce(q: &Tensor, k: &Tensor, temperature: f64) -> Tensor {
    let k = k.detach();
    let (n, kk, _) = q.size3().expect("queries must be [N, K, D]");
    let l_pos = (q * &k).sum_dim_intlist(-1, true, Kind::Float); // [N, K, 1]
    let l_neg = q.bmm(&k.transpose(1, 2)); // [N, K, K]
    // A query's own key is the positive; mask it out of the negatives (CUT fills it with -10).
    let eye = Tensor::eye(kk, (Kind::Bool, q.device())).unsqueeze(0);
    let l_neg = l_neg.masked_fill(&eye, -10.0);
    let logits = Tensor::cat(&[l_pos, l_neg], 2) / temperature;
    let logits = logits.view([n * kk, kk + 1]);
    let target = Tensor::zeros([n * kk], (Kind::Int64, q.device()));
    logits.cross_entropy_for_logits(&target)
}

/// How the layer (supervised-contrastive) loss is reduced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LayerLossForm {
    /// The official SupCon mean over all anchors. With 8 image-layer and 128 rain-layer
    /// embeddings its minimum is (8 ln 7 + 128 ln 127) / 136 = 4.674, dominated by the
    /// rain-layer anchors.
    Official,
    /// Each anchor's loss minus its floor ln |P(i)| (so 0 is the optimum and the value reads as
    /// the distance to it), and the two layers' anchors weighted equally (so the 8 image-layer
    /// anchors are not drowned by the 128 rain-layer ones). Gradients per anchor are unchanged.
    Normalized,
}

/// Supervised contrastive loss between image-layer embeddings `zb` (`[N, Kb, D]`, label 1) and
/// rain-layer embeddings `zr` (`[N, Kr, D]`, label 0), per image: every embedding is an anchor,
/// same-layer embeddings are its positives and the other layer's its negatives.
pub fn layer_supcon(zb: &Tensor, zr: &Tensor, temperature: f64, form: LayerLossForm) -> Tensor {
    let (_, kb, _) = zb.size3().expect("zb must be [N, K, D]");
    let (_, kr, _) = zr.size3().expect("zr must be [N, K, D]");
    let device = zb.device();
    let z = Tensor::cat(&[zb, zr], 1); // [N, M, D]
    let m = kb + kr;
    let sim = z.bmm(&z.transpose(1, 2)) / temperature; // [N, M, M]
    let eye = Tensor::eye(m, (Kind::Bool, device)).unsqueeze(0);
    // Exclude each anchor from its own denominator (a large negative, not -inf, so that
    // 0 * (-inf) never makes a NaN below).
    let sim = sim.masked_fill(&eye, -1e9);
    let log_prob = &sim - sim.logsumexp(-1, true);
    let mut labels = vec![1.0f32; kb as usize];
    labels.extend(std::iter::repeat_n(0.0f32, kr as usize));
    let lab = Tensor::from_slice(&labels).to_device(device);
    let same = lab.unsqueeze(1).eq_tensor(&lab.unsqueeze(0));
    let pos = same.logical_and(&eye.squeeze_dim(0).logical_not());
    let pos_f = pos.to_kind(Kind::Float).unsqueeze(0); // [1, M, M]
    let n_pos = pos_f.sum_dim_intlist(-1, false, Kind::Float).clamp_min(1.0); // [1, M]
    let per_anchor = -(log_prob.masked_fill(&pos.logical_not().unsqueeze(0), 0.0) * &pos_f)
        .sum_dim_intlist(-1, false, Kind::Float)
        / &n_pos; // [N, M]
    match form {
        LayerLossForm::Official => per_anchor.mean(Kind::Float),
        LayerLossForm::Normalized => {
            let gap = per_anchor - n_pos.log();
            let b = gap.narrow(1, 0, kb).mean(Kind::Float);
            let r = gap.narrow(1, kb, kr).mean(Kind::Float);
            (b + r) * 0.5
        }
    }
}

/// The official layer loss's minimum for `kb` image-layer and `kr` rain-layer embeddings.
pub fn official_layer_floor(kb: usize, kr: usize) -> f64 {
    let f = |k: usize| if k > 1 { ((k - 1) as f64).ln() } else { 0.0 };
    (kb as f64 * f(kb) + kr as f64 * f(kr)) / (kb + kr) as f64
}
