//! The networks of NLCL in libtorch: the two generators built from a [`ModelSpec`], the PatchGAN
//! discriminator and the projection MLPs of the contrastive losses.
//!
//! Generator variable names are exactly the names [`ModelSpec::convs`] gives (under the path the
//! caller passes, `back` or `rain`), so a checkpoint's `back.*` tensors are what the ONNX writer
//! expects without renaming.

use nlcl::spec::{INSTANCE_NORM_EPS, ModelSpec};
use tch::nn::{self, Init, Module};
use tch::{Kind, Tensor};

/// InstanceNorm without affine parameters, as in the official generator.
pub fn instance_norm(x: &Tensor) -> Tensor {
    x.instance_norm::<Tensor>(
        None,
        None,
        None,
        None,
        true,
        0.1,
        f64::from(INSTANCE_NORM_EPS),
        false,
    )
}

/// LeakyReLU(0.2) as `max(x, 0.2 x)`: libtorch's built-in slope is fixed at 0.01.
pub fn leaky_relu(x: &Tensor) -> Tensor {
    x.maximum(&(x * 0.2))
}

/// PyTorch's default conv/linear initialisation (kaiming_uniform with a = sqrt(5)), which the
/// official generator keeps: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weights and biases.
fn torch_default(fan_in: i64) -> Init {
    let b = 1.0 / (fan_in as f64).sqrt();
    Init::Uniform { lo: -b, up: b }
}

/// Xavier-normal with gain 0.02 (the CUT code base's `init_type=xavier`) for the discriminator
/// and the MLPs.
fn xavier(fan_in: i64, fan_out: i64) -> Init {
    Init::Randn {
        mean: 0.0,
        stdev: 0.02 * (2.0 / (fan_in + fan_out) as f64).sqrt(),
    }
}

fn conv3x3(p: nn::Path, cin: i64, cout: i64, small: bool) -> nn::Conv2D {
    let fan_in = cin * 9;
    let (ws, bs) = if small {
        // Start near zero: the global-residual `out` conv (so `back` starts at the identity)
        // and the last conv of normalisation-free blocks.
        (
            Init::Randn {
                mean: 0.0,
                stdev: 1e-3,
            },
            Init::Const(0.0),
        )
    } else {
        (torch_default(fan_in), torch_default(fan_in))
    };
    nn::conv2d(
        p,
        cin,
        cout,
        3,
        nn::ConvConfig {
            padding: 1,
            ws_init: ws,
            bs_init: bs,
            ..Default::default()
        },
    )
}

/// The input less its (2r+1)x(2r+1) box mean over the pixels inside the frame (the spec's
/// detail layer; the ONNX writer's AveragePool without padded pixels); `x` itself for r = 0.
pub fn detail_layer(x: &Tensor, radius: usize) -> Tensor {
    if radius == 0 {
        return x.shallow_clone();
    }
    let (k, r) = (2 * radius as i64 + 1, radius as i64);
    x - x.avg_pool2d([k, k], [1, 1], [r, r], false, false, None::<i64>)
}

/// One NLCL generator (`back` or `rain`).
#[derive(Debug)]
pub struct Generator {
    spec: ModelSpec,
    /// Subtract the body's output from the input (only `back` with `global_residual`).
    residual: bool,
    head: nn::Conv2D,
    blocks: Vec<(nn::Conv2D, nn::Conv2D)>,
    tail1: nn::Conv2D,
    tail2: nn::Conv2D,
    out: nn::Conv2D,
}

impl Generator {
    /// Builds a generator under `p` (e.g. `vs.root() / "back"`). `residual` selects
    /// `clean = rainy - out`; pass `spec.global_residual` for `back` and `false` for `rain`.
    pub fn new(p: &nn::Path, spec: &ModelSpec, residual: bool) -> Self {
        let w = spec.width as i64;
        let io = spec.io_channels() as i64;
        let head = conv3x3(p / "head", io, w, false);
        let blocks = (0..spec.depth)
            .map(|i| {
                let b = p / "blocks" / i;
                // Without normalisation each block starts as the identity (its second conv near
                // zero, as SkipInit / Fixup do), so the activations stay bounded with depth.
                (
                    conv3x3(&b / "conv1", w, w, false),
                    conv3x3(&b / "conv2", w, w, !spec.instance_norm),
                )
            })
            .collect();
        let tail1 = conv3x3(p / "tail" / "conv1", w, w, false);
        let tail2 = conv3x3(p / "tail" / "conv2", w, w, false);
        let out = conv3x3(p / "out", w, io, residual);
        Generator {
            spec: *spec,
            residual,
            head,
            blocks,
            tail1,
            tail2,
            out,
        }
    }

    /// The layers whose features feed the location (PatchNCE) loss: 0 is the head conv, `i >= 1`
    /// the output of residual block `i`. The official choice is blocks 2, 4, 8 and 12 of 16; for
    /// shallower specs the blocks beyond `depth` are dropped.
    pub fn nce_layers(&self) -> Vec<usize> {
        std::iter::once(0)
            .chain([2, 4, 8, 12].into_iter().filter(|&b| b <= self.spec.depth))
            .collect()
    }

    fn stem(&self, x: &Tensor) -> Tensor {
        let s = self.spec.unshuffle as i64;
        let x = detail_layer(x, self.spec.detail_radius);
        let x = if s > 1 { x.pixel_unshuffle(s) } else { x };
        self.head.forward(&x)
    }

    /// Features at the requested layers (see [`Generator::nce_layers`]), running only as deep
    /// as needed. They are at the body's resolution (input / unshuffle).
    pub fn features(&self, x: &Tensor, layers: &[usize]) -> Vec<Tensor> {
        let last = layers.iter().copied().max().unwrap_or(0);
        let mut feats = Vec::with_capacity(layers.len());
        let mut h = self.stem(x);
        if layers.contains(&0) {
            feats.push(h.shallow_clone());
        }
        for (i, (c1, c2)) in self.blocks.iter().enumerate().take(last) {
            h = self.block(&h, c1, c2);
            if layers.contains(&(i + 1)) {
                feats.push(h.shallow_clone());
            }
        }
        feats
    }

    /// InstanceNorm, or nothing for the normalisation-free spec.
    fn norm(&self, x: Tensor) -> Tensor {
        if self.spec.instance_norm {
            instance_norm(&x)
        } else {
            x
        }
    }

    fn block(&self, h: &Tensor, c1: &nn::Conv2D, c2: &nn::Conv2D) -> Tensor {
        let y = self.norm(c1.forward(h)).relu();
        h + self.norm(c2.forward(&y))
    }

    /// Forward pass (unclamped). For `back` with the global residual: `x - body(x)`.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = self.stem(x);
        for (c1, c2) in &self.blocks {
            h = self.block(&h, c1, c2);
        }
        let h = self.norm(self.tail1.forward(&h)).relu();
        let h = self.tail2.forward(&h);
        let mut y = self.out.forward(&h);
        let s = self.spec.unshuffle as i64;
        if s > 1 {
            y = y.pixel_shuffle(s);
        }
        if self.residual { x - y } else { y }
    }
}

/// PatchGAN discriminator (CUT's `NLayerDiscriminator`, 3 strided layers, InstanceNorm,
/// LeakyReLU 0.2), without CUT's anti-aliased down-sampling.
#[derive(Debug)]
pub struct Discriminator {
    convs: Vec<nn::Conv2D>,
}

impl Discriminator {
    /// `base` is the first layer's channels (official: 64).
    pub fn new(p: &nn::Path, base: i64) -> Self {
        let chans = [3, base, base * 2, base * 4, base * 8, 1];
        let strides = [2, 2, 2, 1, 1];
        let convs = (0..5)
            .map(|i| {
                let (cin, cout) = (chans[i], chans[i + 1]);
                nn::conv2d(
                    p / "convs" / i,
                    cin,
                    cout,
                    4,
                    nn::ConvConfig {
                        stride: strides[i],
                        padding: 1,
                        ws_init: xavier(cin * 16, cout * 16),
                        bs_init: Init::Const(0.0),
                        ..Default::default()
                    },
                )
            })
            .collect();
        Discriminator { convs }
    }

    fn stage(&self, i: usize, x: &Tensor) -> Tensor {
        let y = self.convs[i].forward(x);
        let y = if i == 0 { y } else { instance_norm(&y) };
        leaky_relu(&y)
    }

    /// Channels of the layers [`Discriminator::layer_features`] returns.
    pub fn feature_channels(base: i64) -> [i64; 4] {
        [3, base, base * 2, base * 4]
    }

    /// The layer-loss features: the input and the outputs of the first three (strided) stages.
    pub fn layer_features(&self, x: &Tensor) -> Vec<Tensor> {
        let mut out = vec![x.shallow_clone()];
        let mut h = x.shallow_clone();
        for i in 0..3 {
            h = self.stage(i, &h);
            out.push(h.shallow_clone());
        }
        out
    }

    /// Patch scores (LSGAN: trained towards 1 for real, 0 for fake).
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let mut h = x.shallow_clone();
        for i in 0..4 {
            h = self.stage(i, &h);
        }
        self.convs[4].forward(&h)
    }
}

/// Projection head: Linear(C, 256), ReLU, Linear(256, 256), then L2 normalisation.
#[derive(Debug)]
pub struct Mlp {
    l1: nn::Linear,
    l2: nn::Linear,
}

/// Embedding size of every projection head.
pub const EMBED: i64 = 256;

impl Mlp {
    /// A head for `cin`-channel features.
    pub fn new(p: &nn::Path, cin: i64) -> Self {
        let cfg = |fi, fo| nn::LinearConfig {
            ws_init: xavier(fi, fo),
            bs_init: Some(Init::Const(0.0)),
            bias: true,
        };
        Mlp {
            l1: nn::linear(p / "0", cin, EMBED, cfg(cin, EMBED)),
            l2: nn::linear(p / "2", EMBED, EMBED, cfg(EMBED, EMBED)),
        }
    }

    /// `[n, C] -> [n, 256]`, unit rows.
    pub fn forward(&self, x: &Tensor) -> Tensor {
        let y = self.l2.forward(&self.l1.forward(x).relu());
        let norm = y
            .pow_tensor_scalar(2)
            .sum_dim_intlist(1, true, Kind::Float)
            .sqrt()
            + 1e-7;
        y / norm
    }
}
