//! The one description of the NLCL generator architecture.
//!
//! The trainer builds its networks from a [`ModelSpec`] and the ONNX writer
//! ([`crate::onnx`]) turns the same spec plus the trained weights into the graph
//! the element runs, so the exported graph is the trained graph by construction.
//!
//! Generator layout (one per layer of the decomposition, `back` and `rain`):
//!
//! ```text
//! [x - BoxMean(2r+1)(x)]         only when `detail_radius` r > 0: the body sees the detail layer
//! [PixelUnshuffle(s)]            only when `unshuffle > 1`: body runs at 1/s resolution
//! head      conv3x3  (3*s*s) -> width
//! blocks.i  conv3x3 width->width, InstanceNorm, ReLU, conv3x3, InstanceNorm, + skip   (depth times)
//! tail      conv3x3, InstanceNorm, ReLU, conv3x3
//! out       conv3x3  width -> (3*s*s)
//! [PixelShuffle(s)]
//! back only, when `global_residual`: clean = rainy - out
//! ```
//!
//! With `instance_norm` off (tag suffix `n`) every InstanceNorm is left out: restoration networks
//! keep absolute intensities, which per-channel normalisation of each frame throws away.
//!
//! With `detail_radius` r > 0 (tag suffix `h{r}`) the body sees only the detail layer, the input
//! less its (2r+1)x(2r+1) box mean (the mean over the window's pixels inside the frame), as DDN
//! and LPNet do: rain lives in the detail layer, and a flat or softly shaded area gives the body
//! nothing to act on, so the model cannot darken bright walls or sky by their brightness alone.
//! The global residual still subtracts the body's output from the full input.
//! InstanceNorm has no affine parameters (epsilon [`INSTANCE_NORM_EPS`]); all convolutions
//! are 3x3, stride 1, zero padding 1, with bias. Tensors are NCHW float32 in [-1, 1].

use std::fmt;

/// Epsilon of every InstanceNorm (PyTorch's default), shared by trainer and writer.
pub const INSTANCE_NORM_EPS: f32 = 1e-5;

/// Image channels in and out (RGB).
pub const IMAGE_CHANNELS: usize = 3;

/// Architecture of an NLCL generator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpec {
    /// Feature channels of the body (official: 32).
    pub width: usize,
    /// Number of residual blocks (official: 16).
    pub depth: usize,
    /// Pixel-unshuffle factor of the stem: 1 = full resolution (official), 2 = body at half
    /// resolution (about 4x cheaper for the same width and depth).
    pub unshuffle: usize,
    /// `back` predicts the rain to subtract (clean = rainy - f(rainy)), so training starts at the
    /// identity. The official layout predicts the clean image directly (false).
    pub global_residual: bool,
    /// InstanceNorm after the block and tail convolutions (official: true). Off gives the
    /// normalisation-free variant (tag suffix `n`).
    pub instance_norm: bool,
    /// Radius of the box low-pass taken off the input before the body (0 = off, the body sees
    /// the image itself). Tag suffix `h{r}`.
    pub detail_radius: usize,
}

impl ModelSpec {
    /// The layout of the official NLCL code (about 316k parameters per generator).
    pub const OFFICIAL: ModelSpec = ModelSpec {
        width: 32,
        depth: 16,
        unshuffle: 1,
        global_residual: false,
        instance_norm: true,
        detail_radius: 0,
    };

    /// Channels entering the head convolution (and leaving the out convolution).
    pub fn io_channels(&self) -> usize {
        IMAGE_CHANNELS * self.unshuffle * self.unshuffle
    }

    /// Frame width and height must be multiples of this; callers pad (edge replication) and crop.
    pub fn size_multiple(&self) -> usize {
        self.unshuffle.max(1)
    }

    /// Checks the values make a buildable network.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.width == 0 || self.width > 1024 {
            return Err(SpecError::Invalid(format!(
                "width {} (must be 1..=1024)",
                self.width
            )));
        }
        if self.depth > 256 {
            return Err(SpecError::Invalid(format!(
                "depth {} (must be 0..=256)",
                self.depth
            )));
        }
        if self.detail_radius > 32 {
            return Err(SpecError::Invalid(format!(
                "detail radius {} (must be 0..=32)",
                self.detail_radius
            )));
        }
        if !matches!(self.unshuffle, 1 | 2 | 4) {
            return Err(SpecError::Invalid(format!(
                "unshuffle {} (must be 1, 2 or 4)",
                self.unshuffle
            )));
        }
        Ok(())
    }

    /// Every convolution of one generator, in forward order, with its weight names (relative to
    /// the generator prefix, e.g. `back.`) and shapes.
    pub fn convs(&self) -> Vec<ConvDesc> {
        let w = self.width;
        let io = self.io_channels();
        let mut v = Vec::with_capacity(2 * self.depth + 4);
        v.push(ConvDesc::new("head", io, w));
        for i in 0..self.depth {
            v.push(ConvDesc::new(&format!("blocks.{i}.conv1"), w, w));
            v.push(ConvDesc::new(&format!("blocks.{i}.conv2"), w, w));
        }
        v.push(ConvDesc::new("tail.conv1", w, w));
        v.push(ConvDesc::new("tail.conv2", w, w));
        v.push(ConvDesc::new("out", w, io));
        v
    }

    /// Parameters of one generator.
    pub fn parameter_count(&self) -> usize {
        self.convs()
            .iter()
            .map(|c| c.out_ch * c.in_ch * 9 + c.out_ch)
            .sum()
    }

    /// Multiply-accumulates of one generator per input pixel.
    pub fn macs_per_pixel(&self) -> usize {
        let per_body_pixel: usize = self.convs().iter().map(|c| c.out_ch * c.in_ch * 9).sum();
        per_body_pixel / (self.unshuffle * self.unshuffle)
    }

    /// Compact name such as `w32d16` or `w16d4s2rn` (s2 = unshuffle 2, r = global residual,
    /// n = normalisation-free, h4 = detail layer of radius 4).
    pub fn tag(&self) -> String {
        let mut s = format!("w{}d{}", self.width, self.depth);
        if self.unshuffle > 1 {
            s.push_str(&format!("s{}", self.unshuffle));
        }
        if self.global_residual {
            s.push('r');
        }
        if !self.instance_norm {
            s.push('n');
        }
        if self.detail_radius > 0 {
            s.push_str(&format!("h{}", self.detail_radius));
        }
        s
    }

    /// Parses [`ModelSpec::tag`] output back.
    pub fn from_tag(tag: &str) -> Result<ModelSpec, SpecError> {
        let bad = || {
            SpecError::Invalid(format!(
                "architecture tag {tag:?} (expected like w32d16 or w16d4s2r)"
            ))
        };
        let rest = tag.strip_prefix('w').ok_or_else(bad)?;
        let (width, rest) = split_number(rest).ok_or_else(bad)?;
        let rest = rest.strip_prefix('d').ok_or_else(bad)?;
        let (depth, mut rest) = split_number(rest).ok_or_else(bad)?;
        let mut unshuffle = 1;
        if let Some(r) = rest.strip_prefix('s') {
            let (u, r) = split_number(r).ok_or_else(bad)?;
            unshuffle = u;
            rest = r;
        }
        let mut detail_radius = 0;
        if let Some(i) = rest.find('h') {
            let (r, tail) = split_number(&rest[i + 1..]).ok_or_else(bad)?;
            if r == 0 || !tail.is_empty() {
                return Err(bad());
            }
            detail_radius = r;
            rest = &rest[..i];
        }
        let (global_residual, instance_norm) = match rest {
            "" => (false, true),
            "r" => (true, true),
            "n" => (false, false),
            "rn" => (true, false),
            _ => return Err(bad()),
        };
        let spec = ModelSpec {
            width,
            depth,
            unshuffle,
            global_residual,
            instance_norm,
            detail_radius,
        };
        spec.validate()?;
        Ok(spec)
    }
}

impl fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.tag())
    }
}

fn split_number(s: &str) -> Option<(usize, &str)> {
    let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    Some((s[..end].parse().ok()?, &s[end..]))
}

/// One 3x3 convolution of a generator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvDesc {
    /// Name relative to the generator prefix: weights are `{prefix}{name}.weight` with shape
    /// `[out_ch, in_ch, 3, 3]` and `{prefix}{name}.bias` with shape `[out_ch]`.
    pub name: String,
    pub in_ch: usize,
    pub out_ch: usize,
}

impl ConvDesc {
    fn new(name: &str, in_ch: usize, out_ch: usize) -> Self {
        ConvDesc {
            name: name.to_string(),
            in_ch,
            out_ch,
        }
    }
}

/// Prefix of the image-layer generator's weights in checkpoints (`back.head.weight`, ...).
pub const BACK_PREFIX: &str = "back.";
/// Prefix of the rain-layer generator's weights in checkpoints.
pub const RAIN_PREFIX: &str = "rain.";

/// An invalid architecture description.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("invalid model spec: {0}")]
    Invalid(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_parameter_count_matches_paper_code() {
        // 3->32 head, 32 convs 32->32 in blocks, 2 in the tail, 32->3 out.
        let p = ModelSpec::OFFICIAL.parameter_count();
        assert_eq!(
            p,
            (32 * 3 * 9 + 32) + 34 * (32 * 32 * 9 + 32) + (3 * 32 * 9 + 3)
        );
        assert!((310_000..320_000).contains(&p), "{p}");
    }

    #[test]
    fn tag_round_trip() {
        let lite = ModelSpec {
            width: 16,
            depth: 4,
            unshuffle: 2,
            global_residual: true,
            instance_norm: true,
            detail_radius: 0,
        };
        let free = ModelSpec {
            instance_norm: false,
            ..lite
        };
        for spec in [
            ModelSpec::OFFICIAL,
            lite,
            free,
            ModelSpec {
                detail_radius: 4,
                ..free
            },
        ] {
            assert_eq!(ModelSpec::from_tag(&spec.tag()).unwrap(), spec);
        }
        assert!(ModelSpec::from_tag("w0d3").is_err());
        assert!(ModelSpec::from_tag("x32d16").is_err());
        assert!(ModelSpec::from_tag("w32d16s3").is_err());
        assert!(ModelSpec::from_tag("w32d16q").is_err());
        assert!(ModelSpec::from_tag("w32d16nr").is_err());
        assert_eq!(ModelSpec::from_tag("w16d4s2rn").unwrap().tag(), "w16d4s2rn");
        assert_eq!(ModelSpec::from_tag("w16d4s2rnh4").unwrap().detail_radius, 4);
        assert!(ModelSpec::from_tag("w16d4s2rnh0").is_err());
        assert!(ModelSpec::from_tag("w16d4s2rnh").is_err());
        assert!(ModelSpec::from_tag("w16d4s2h4rn").is_err());
        assert!(ModelSpec::from_tag("w16d4s2rnh99").is_err());
    }

    #[test]
    fn unshuffle_quarters_cost() {
        let a = ModelSpec {
            unshuffle: 1,
            ..ModelSpec::OFFICIAL
        };
        let b = ModelSpec {
            unshuffle: 2,
            ..ModelSpec::OFFICIAL
        };
        assert!(b.macs_per_pixel() * 3 < a.macs_per_pixel());
        assert_eq!(b.size_multiple(), 2);
    }
}
