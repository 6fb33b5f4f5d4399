//! Test helpers shared by the convert tests: a tiny RNG, owned frames with chosen strides,
//! and the formats and sizes the tests sweep.

use super::{
    ChromaUpsampling, ColorMatrix, FrameMut, FrameRef, PixelFormat, frame_to_tensor_with,
    tensor_len,
};

/// Tiny xorshift so the crate needs no `rand`.
pub(super) struct Rng(pub(super) u64);
impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub(super) fn byte(&mut self) -> u8 {
        (self.next() >> 32) as u8
    }
    pub(super) fn range(&mut self, lo: u8, hi: u8) -> u8 {
        lo + (self.next() % (u64::from(hi - lo) + 1)) as u8
    }
}

pub(super) const RGB_FAMILY: [PixelFormat; 8] = [
    PixelFormat::Rgb,
    PixelFormat::Bgr,
    PixelFormat::Rgba,
    PixelFormat::Bgra,
    PixelFormat::Rgbx,
    PixelFormat::Bgrx,
    PixelFormat::Xrgb,
    PixelFormat::Xbgr,
];
pub(super) const SIZES: [(usize, usize); 8] = [
    (1, 1),
    (3, 5),
    (7, 2),
    (2, 7),
    (1, 6),
    (5, 1),
    (16, 9),
    (33, 17),
];

/// Owned planes for a frame; plane lengths are exactly `stride * (rows-1) + row_bytes`
/// so the shorter last row is exercised everywhere.
pub(super) struct Planes {
    pub(super) format: PixelFormat,
    pub(super) width: usize,
    pub(super) height: usize,
    pub(super) data: [Vec<u8>; 3],
    pub(super) strides: [usize; 3],
}

impl Planes {
    pub(super) fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        extra: usize,
        fill: u8,
    ) -> Self {
        let mut data: [Vec<u8>; 3] = Default::default();
        let mut strides = [0; 3];
        for p in 0..format.n_planes() {
            let (row, rows) = format.plane_dims(p, width, height).unwrap();
            strides[p] = row + extra;
            data[p] = vec![fill; strides[p] * (rows - 1) + row];
        }
        Self {
            format,
            width,
            height,
            data,
            strides,
        }
    }
    pub(super) fn random(
        format: PixelFormat,
        w: usize,
        h: usize,
        extra: usize,
        rng: &mut Rng,
    ) -> Self {
        let mut p = Self::new(format, w, h, extra, 0);
        p.data.iter_mut().flatten().for_each(|b| *b = rng.byte());
        p
    }
    pub(super) fn frame(&self) -> FrameRef<'_> {
        FrameRef {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: [&self.data[0], &self.data[1], &self.data[2]],
            strides: self.strides,
        }
    }
    pub(super) fn frame_mut(&mut self) -> FrameMut<'_> {
        let [a, b, c] = &mut self.data;
        FrameMut {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: [a, b, c],
            strides: self.strides,
        }
    }
    /// The meaningful bytes of plane `p`, row by row (stride padding excluded).
    pub(super) fn rows(&self, p: usize) -> Vec<&[u8]> {
        let (row, rows) = self.format.plane_dims(p, self.width, self.height).unwrap();
        (0..rows)
            .map(|y| &self.data[p][y * self.strides[p]..][..row])
            .collect()
    }
    /// Bytes between rows (stride padding) of plane `p`.
    pub(super) fn gaps(&self, p: usize) -> Vec<u8> {
        let (row, rows) = self.format.plane_dims(p, self.width, self.height).unwrap();
        (0..rows - 1)
            .flat_map(|y| {
                self.data[p][y * self.strides[p] + row..(y + 1) * self.strides[p]].to_vec()
            })
            .collect()
    }
}

pub(super) fn to_tensor(
    frame: &FrameRef,
    up: ChromaUpsampling,
    m: usize,
) -> (Vec<f32>, usize, usize) {
    let mut t = vec![f32::NAN; tensor_len(frame.height, frame.width, m)];
    let (ph, pw) = frame_to_tensor_with(frame, ColorMatrix::Bt601, up, m, &mut t).unwrap();
    assert_eq!(t.len(), 3 * ph * pw);
    assert!(
        t.iter().all(|v| (-1.0..=1.0).contains(v)),
        "unwritten or out of range"
    );
    (t, ph, pw)
}
