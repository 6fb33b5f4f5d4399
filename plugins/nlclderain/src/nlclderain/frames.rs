//! GStreamer <-> engine frame adapters: the pixel formats the element takes, a stream's YUV
//! encoding, and views of `gst::Buffer`s as the engine's frames.

use gst_video::prelude::*;

use nlcl::convert::{
    self, ColorMatrix, ColorRange, ConvertError, FrameMut, FrameRef, PixelFormat, YuvEncoding,
};
use nlcl::worker::{FrameSpec, PayloadKind};

/// The GStreamer format of each engine format: the one table of the formats `nlclderain`
/// takes (no catch-all arm, so a format the engine adds must be named here).
pub(super) fn video_format(format: PixelFormat) -> gst_video::VideoFormat {
    use gst_video::VideoFormat as V;
    match format {
        PixelFormat::Rgb => V::Rgb,
        PixelFormat::Bgr => V::Bgr,
        PixelFormat::Rgba => V::Rgba,
        PixelFormat::Bgra => V::Bgra,
        PixelFormat::Rgbx => V::Rgbx,
        PixelFormat::Bgrx => V::Bgrx,
        PixelFormat::Xrgb => V::Xrgb,
        PixelFormat::Xbgr => V::Xbgr,
        PixelFormat::I420 => V::I420,
        PixelFormat::Nv12 => V::Nv12,
    }
}

/// The engine format of a GStreamer one, if the engine converts it.
pub(super) fn pixel_format(format: gst_video::VideoFormat) -> Option<PixelFormat> {
    PixelFormat::ALL
        .into_iter()
        .find(|&p| video_format(p) == format)
}

/// The formats of the pad templates: every format the engine converts, in its order.
pub(super) fn video_formats() -> impl Iterator<Item = gst_video::VideoFormat> {
    PixelFormat::ALL.into_iter().map(video_format)
}

/// The YUV matrix and range of a stream, from its colorimetry (what `videoconvert` would use):
/// an unknown matrix is GStreamer's default for the height, an unknown range is limited
/// (`gst_video_color_range_offsets`). A matrix the engine does not know is an error naming it,
/// never silently another matrix. RGB formats need no encoding.
pub(super) fn yuv_encoding(info: &gst_video::VideoInfo) -> Result<YuvEncoding, String> {
    if !info.is_yuv() {
        return Ok(YuvEncoding::default());
    }
    use gst_video::VideoColorMatrix as M;
    let colorimetry = info.colorimetry();
    let matrix = match colorimetry.matrix() {
        M::Bt601 => ColorMatrix::Bt601,
        M::Bt709 => ColorMatrix::Bt709,
        M::Bt2020 => ColorMatrix::Bt2020,
        M::Smpte240m => ColorMatrix::Smpte240m,
        M::Fcc => ColorMatrix::Fcc,
        M::Unknown => ColorMatrix::gst_default_for_height(info.height() as usize),
        other => {
            return Err(format!(
                "Unsupported colour matrix {other:?} of a YUV stream (colorimetry={colorimetry}): \
                 nlclderain reads BT.601, BT.709, BT.2020, SMPTE 240M and FCC; put videoconvert \
                 before it to convert to RGB"
            ));
        }
    };
    let range = match colorimetry.range() {
        gst_video::VideoColorRange::Range0_255 => ColorRange::Full,
        _ => ColorRange::Limited,
    };
    Ok(YuvEncoding::new(matrix, range))
}

/// [`yuv_encoding`] in the streaming thread, where caps were checked by `set_info` already.
fn stream_encoding(info: &gst_video::VideoInfo) -> Result<YuvEncoding, gst::FlowError> {
    yuv_encoding(info).map_err(|_| gst::FlowError::NotNegotiated)
}

fn strides_of(strides: &[i32]) -> Result<[usize; 3], gst::FlowError> {
    let mut out = [0usize; 3];
    for (dst, &s) in out.iter_mut().zip(strides.iter()) {
        *dst = usize::try_from(s).map_err(|_| gst::FlowError::NotSupported)?;
    }
    Ok(out)
}

pub(super) fn frame_view<'a>(
    frame: &'a gst_video::VideoFrameRef<&gst::BufferRef>,
) -> Result<FrameRef<'a>, gst::FlowError> {
    let format = pixel_format(frame.format()).ok_or(gst::FlowError::NotNegotiated)?;
    let planes = frame.planes_data();
    Ok(FrameRef {
        format,
        width: frame.width() as usize,
        height: frame.height() as usize,
        planes: [planes[0], planes[1], planes[2]],
        strides: strides_of(frame.plane_stride())?,
    })
}

/// Maps `buffer` (made writable) as a `format` frame of `info` and lets `write` fill it; the
/// outer error is a mapping failure, the inner one `write`'s.
fn write_frame(
    buffer: &mut gst::Buffer,
    info: &gst_video::VideoInfo,
    format: PixelFormat,
    write: impl FnOnce(&mut FrameMut) -> Result<(), ConvertError>,
) -> Result<Result<(), ConvertError>, gst::FlowError> {
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buffer.make_mut(), info)
        .map_err(|_| gst::FlowError::Error)?;
    let strides = strides_of(frame.plane_stride())?;
    let (width, height) = (frame.width() as usize, frame.height() as usize);
    let [p0, p1, p2, _] = frame.planes_data_mut();
    let mut out = FrameMut {
        format,
        width,
        height,
        planes: [p0, p1, p2],
        strides,
    };
    Ok(write(&mut out))
}

/// How one frame travels in a job: the per-frame side of the engine's
/// [`nlcl::worker::Payload`]. Frames of the same slot can share a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Slot {
    /// Converted on the CPU into a `3 x th x tw` tensor (the frame padded to the model's size
    /// multiple).
    Tensor { th: usize, tw: usize },
    /// Copied tightly packed ([`FrameSpec::frame_len`] bytes), converted on the GPU.
    Packed(FrameSpec),
}

/// A frame of the negotiated caps as the engine takes it.
#[derive(Clone)]
pub(super) struct FrameLayout {
    pub info: gst_video::VideoInfo,
    pub format: PixelFormat,
    pub encoding: YuvEncoding,
    pub slot: Slot,
}

impl FrameLayout {
    /// `info`'s frames for a worker taking `kind` payloads, padded to `size_multiple` when
    /// converted to tensors.
    pub fn new(
        info: gst_video::VideoInfo,
        size_multiple: usize,
        kind: PayloadKind,
    ) -> Result<Self, gst::FlowError> {
        let (width, height) = (info.width() as usize, info.height() as usize);
        let format = pixel_format(info.format()).ok_or(gst::FlowError::NotNegotiated)?;
        let encoding = stream_encoding(&info)?;
        let slot = match kind {
            PayloadKind::Tensors => {
                let (th, tw) = convert::padded_size(height, width, size_multiple);
                Slot::Tensor { th, tw }
            }
            PayloadKind::Frames => {
                let spec = FrameSpec {
                    format,
                    width,
                    height,
                    encoding,
                };
                spec.frame_len().ok_or(gst::FlowError::NotSupported)?;
                Slot::Packed(spec)
            }
        };
        Ok(FrameLayout {
            info,
            format,
            encoding,
            slot,
        })
    }

    pub fn width(&self) -> usize {
        self.info.width() as usize
    }

    pub fn height(&self) -> usize {
        self.info.height() as usize
    }

    /// Copies a tightly packed finished frame (the GPU frame path's result) into `buffer`.
    pub fn write_packed(
        &self,
        buffer: &mut gst::Buffer,
        packed: &[u8],
    ) -> Result<Result<(), ConvertError>, gst::FlowError> {
        write_frame(buffer, &self.info, self.format, |out| {
            convert::tight_frame(self.format, out.width, out.height, packed)
                .and_then(|src| convert::copy_frame(&src, out))
        })
    }

    /// Converts a finished `3 x th x tw` tensor into `buffer`; `alpha` is scratch space for the
    /// alpha plane.
    pub fn write_tensor(
        &self,
        buffer: &mut gst::Buffer,
        tensor: &[f32],
        (th, tw): (usize, usize),
        alpha: &mut Vec<u8>,
    ) -> Result<Result<(), ConvertError>, gst::FlowError> {
        let format = self.format;
        // Only RGBA/BGRA carry real alpha, which the write-back would otherwise overwrite.
        let keep_alpha = matches!(format, PixelFormat::Rgba | PixelFormat::Bgra);
        if keep_alpha {
            let frame =
                gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), &self.info)
                    .map_err(|_| gst::FlowError::Error)?;
            alpha.clear();
            alpha.extend_from_slice(frame.plane_data(0).map_err(|_| gst::FlowError::Error)?);
        }
        let alpha = &*alpha;
        write_frame(buffer, &self.info, format, |out| {
            let alpha_view = keep_alpha.then(|| FrameRef {
                format,
                width: out.width,
                height: out.height,
                planes: [&alpha[..], &[], &[]],
                strides: out.strides,
            });
            convert::tensor_to_frame(tensor, th, tw, self.encoding, alpha_view.as_ref(), out)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(colorimetry: gst_video::VideoColorimetry) -> gst_video::VideoInfo {
        gst::init().unwrap();
        gst_video::VideoInfo::builder(gst_video::VideoFormat::I420, 32, 16)
            .colorimetry(&colorimetry)
            .build()
            .unwrap()
    }

    #[test]
    fn every_engine_format_maps_to_the_gstreamer_format_of_its_name() {
        gst::init().unwrap();
        for p in PixelFormat::ALL {
            assert_eq!(video_format(p).to_str(), p.name());
            assert_eq!(pixel_format(video_format(p)), Some(p));
        }
        assert_eq!(video_formats().count(), PixelFormat::ALL.len());
        assert_eq!(pixel_format(gst_video::VideoFormat::Yuy2), None);
    }

    #[test]
    fn yuv_encoding_follows_colorimetry_and_refuses_the_rgb_matrix() {
        use gst_video::{
            VideoColorMatrix as M, VideoColorPrimaries as P, VideoColorRange as R,
            VideoTransferFunction as T,
        };
        let of = |r, m| {
            yuv_encoding(&info(gst_video::VideoColorimetry::new(
                r,
                m,
                T::Unknown,
                P::Unknown,
            )))
        };
        assert_eq!(
            of(R::Range0_255, M::Bt601),
            Ok(YuvEncoding::new(ColorMatrix::Bt601, ColorRange::Full))
        );
        assert_eq!(
            of(R::Range16_235, M::Bt2020),
            Ok(YuvEncoding::new(ColorMatrix::Bt2020, ColorRange::Limited))
        );
        // Unknown range is limited, unknown matrix GStreamer's default for the height.
        assert_eq!(
            of(R::Unknown, M::Unknown),
            Ok(YuvEncoding::new(ColorMatrix::Bt601, ColorRange::Limited))
        );
        // The RGB matrix on a YUV stream (caps parsing replaces it, a VideoInfo built in code
        // can carry it) is refused by name, never read as another matrix.
        let error = of(R::Range0_255, M::Rgb).unwrap_err();
        assert!(
            error.contains("Rgb") && error.contains("videoconvert"),
            "{error}"
        );
    }
}
