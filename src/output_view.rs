//! What the element writes back: the derained frame, the rain layer the model removed (scaled
//! for viewing), or a split view for demos (left half input, right half derained).
//!
//! Applied to the model's output tensor on the CPU path ([`apply_to_tensor`]) or to the
//! finished frames on the GPU frame path ([`apply_to_frame`]), before the write-back.

use crate::convert::{ConvertError, FrameMut, FrameRef, PixelFormat, validate_layout};

/// The rain layer `|input - output|` is multiplied by this for viewing: streaks of 10 to 60
/// levels become 40 to 240.
pub const RAIN_GAIN: f32 = 4.0;

/// What a frame becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum OutputView {
    /// The derained frame.
    #[default]
    Clean,
    /// The removed rain layer, `RAIN_GAIN x |input - output|`, on black.
    Rain,
    /// Left half the input, right half the derained frame.
    Split,
}

impl OutputView {
    /// Names as the element's `output` property spells them.
    pub const NAMES: [(&'static str, OutputView); 3] = [
        ("clean", OutputView::Clean),
        ("rain", OutputView::Rain),
        ("split", OutputView::Split),
    ];
}

/// Turns the model's output tensor (`3 x th x tw`, frame in the top-left `height x width`) into
/// `view` in place, from the `input` tensor of the same size. Sizes that do not fit leave the
/// output as it is.
pub fn apply_to_tensor(
    view: OutputView,
    input: &[f32],
    output: &mut [f32],
    th: usize,
    tw: usize,
    height: usize,
    width: usize,
) {
    let plane = th * tw;
    if view == OutputView::Clean
        || height > th
        || width > tw
        || input.len() < 3 * plane
        || output.len() < 3 * plane
    {
        return;
    }
    for c in 0..3 {
        for y in 0..height {
            let row = c * plane + y * tw;
            let (a, b) = (&input[row..row + width], &mut output[row..row + width]);
            match view {
                OutputView::Clean => {}
                OutputView::Rain => {
                    for (o, &i) in b.iter_mut().zip(a) {
                        // |i - o| is in [0, 2] tensor units = 2 x (levels / 255).
                        let levels = (i - o.clamp(-1.0, 1.0)).abs() * 0.5 * RAIN_GAIN;
                        *o = levels.min(1.0) * 2.0 - 1.0;
                    }
                }
                OutputView::Split => {
                    let half = width / 2;
                    b[..half].copy_from_slice(&a[..half]);
                }
            }
        }
    }
}

/// Turns the finished `output` frame into `view`, from the `input` frame of the same format
/// and size (the GPU frame path). For YUV formats the rain layer is drawn on luma (chroma
/// neutral); the split keeps the left half of every plane.
pub fn apply_to_frame(
    view: OutputView,
    input: &FrameRef,
    output: &mut FrameMut,
) -> Result<(), ConvertError> {
    if view == OutputView::Clean {
        return Ok(());
    }
    if (input.format, input.width, input.height) != (output.format, output.width, output.height) {
        return Err(ConvertError::FrameMismatch {
            src: format!("{} {}x{}", input.format, input.width, input.height),
            dst: format!("{} {}x{}", output.format, output.width, output.height),
        });
    }
    validate_layout(
        input.format,
        input.width,
        input.height,
        input.planes.map(<[u8]>::len),
        input.strides,
    )?;
    validate_layout(
        output.format,
        output.width,
        output.height,
        output.planes.each_ref().map(|p| p.len()),
        output.strides,
    )?;
    let format = input.format;
    let (w, h) = (input.width, input.height);
    // (row bytes, rows, bytes per column step) of each plane.
    let planes: Vec<(usize, usize, usize)> = match format {
        PixelFormat::I420 => {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            vec![(w, h, 1), (cw, ch, 1), (cw, ch, 1)]
        }
        PixelFormat::Nv12 => {
            let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
            vec![(w, h, 1), (2 * cw, ch, 2)]
        }
        _ => {
            let bpp = format.bytes_per_pixel().unwrap_or(1);
            vec![(w * bpp, h, bpp)]
        }
    };
    for (p, &(row_bytes, rows, step)) in planes.iter().enumerate() {
        let (si, so) = (input.strides[p], output.strides[p]);
        for y in 0..rows {
            // In bounds: both layouts were validated above.
            let a = &input.planes[p][y * si..y * si + row_bytes];
            let b = &mut output.planes[p][y * so..y * so + row_bytes];
            match view {
                OutputView::Clean => {}
                OutputView::Split => {
                    // Whole pixels (or chroma pairs) of the left half of this plane.
                    let half = (row_bytes / step) / 2 * step;
                    b[..half].copy_from_slice(&a[..half]);
                }
                OutputView::Rain if format.is_yuv() && p > 0 => b.fill(128),
                OutputView::Rain => {
                    let (black, white) = if format.is_yuv() {
                        (16.0, 235.0)
                    } else {
                        (0.0, 255.0)
                    };
                    for (o, &i) in b.iter_mut().zip(a) {
                        let v = black + f32::from(i.abs_diff(*o)) * RAIN_GAIN;
                        *o = v.min(white) as u8;
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tensor_views() {
        // One channel row of 4 pixels in a 1x4 frame (3 planes of 1x4).
        let input: Vec<f32> = [0.0, 0.5, -0.5, 1.0].repeat(3);
        let clean: Vec<f32> = [0.0, 0.4, -0.5, 0.8].repeat(3);
        let mut out = clean.clone();
        apply_to_tensor(OutputView::Clean, &input, &mut out, 1, 4, 1, 4);
        assert_eq!(out, clean);
        apply_to_tensor(OutputView::Split, &input, &mut out, 1, 4, 1, 4);
        assert_eq!(&out[..4], &[0.0, 0.5, -0.5, 0.8]);
        let mut out = clean.clone();
        apply_to_tensor(OutputView::Rain, &input, &mut out, 1, 4, 1, 4);
        // 0.1 tensor units = 12.75 levels, x4 = 51 levels: 0.2 on a 0..1 scale, -0.6 as tensor.
        let want = [-1.0, -0.6, -1.0, -0.2];
        for (g, w) in out[..4].iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{out:?}");
        }
    }

    #[test]
    fn frame_views_for_packed_and_yuv() {
        let input = [10u8, 20, 30, 40, 50, 60];
        let mut out = [12u8, 20, 30, 0, 0, 0];
        let rgb = |p: &[u8; 6]| p.to_vec();
        let src = FrameRef {
            format: PixelFormat::Rgb,
            width: 2,
            height: 1,
            planes: [&input, &[], &[]],
            strides: [6, 0, 0],
        };
        {
            let mut dst = FrameMut {
                format: PixelFormat::Rgb,
                width: 2,
                height: 1,
                planes: [&mut out, &mut [], &mut []],
                strides: [6, 0, 0],
            };
            apply_to_frame(OutputView::Rain, &src, &mut dst).unwrap();
        }
        assert_eq!(rgb(&out), vec![8, 0, 0, 160, 200, 240]);
        let mut out = [0u8; 6];
        {
            let mut dst = FrameMut {
                format: PixelFormat::Rgb,
                width: 2,
                height: 1,
                planes: [&mut out, &mut [], &mut []],
                strides: [6, 0, 0],
            };
            apply_to_frame(OutputView::Split, &src, &mut dst).unwrap();
        }
        assert_eq!(rgb(&out), vec![10, 20, 30, 0, 0, 0]);
        // I420 2x2: luma split by column, chroma (one sample) not split; rain: luma, neutral chroma.
        let (y, u, v) = ([100u8, 100, 100, 100], [90u8], [140u8]);
        let yuv = FrameRef {
            format: PixelFormat::I420,
            width: 2,
            height: 2,
            planes: [&y, &u, &v],
            strides: [2, 1, 1],
        };
        let (mut oy, mut ou, mut ov) = ([95u8; 4], [90u8], [140u8]);
        let mut dst = FrameMut {
            format: PixelFormat::I420,
            width: 2,
            height: 2,
            planes: [&mut oy, &mut ou, &mut ov],
            strides: [2, 1, 1],
        };
        apply_to_frame(OutputView::Rain, &yuv, &mut dst).unwrap();
        assert_eq!((oy, ou, ov), ([36; 4], [128], [128]));
    }
}
