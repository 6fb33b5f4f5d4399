//! Image-quality metrics as the deraining literature computes them.
//!
//! All image entry points take packed 8-bit RGB buffers (`R, G, B` per pixel, row-major, no row
//! padding, exactly `width * height * 3` bytes).
//!
//! # Conventions
//!
//! * **Y channel** ([`rgb_to_y`]): ITU-R BT.601 "studio swing" luma as MATLAB's `rgb2ycbcr`
//!   defines it, `Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255` with `R, G, B` in
//!   `[0, 255]`, giving `Y` in `[16, 235]`. `Y` is kept as an **unrounded `f64`**: that is what
//!   the evaluation code behind most deraining papers does (`BasicSR`'s
//!   `calculate_psnr` / `calculate_ssim(..., test_y_channel=True)`, whose `to_y_channel` computes
//!   `bgr2ycbcr(img / 255., y_only=True) * 255.` in floating point, explicitly "without round").
//!   `BasicSR` carries `float32` intermediates; this module uses `f64` throughout, which changes
//!   results by less than 1e-6 dB / 1e-7 SSIM. MATLAB's own `rgb2ycbcr` on a `uint8` image
//!   rounds `Y` to an integer; that older convention is *not* used here.
//! * **PSNR** ([`psnr`], [`psnr_y`], [`psnr_rgb`]): `10 log10(data_range² / MSE)` with the MSE
//!   in `f64`, identical to scikit-image's `peak_signal_noise_ratio(ref, test, data_range=255)`.
//!   Identical inputs give `f64::INFINITY`; average per-image values with [`mean_psnr`] (which
//!   caps each value at [`PSNR_CAP_DB`]) so that one perfect frame does not turn the mean into
//!   infinity.
//! * **SSIM** ([`ssim`], [`ssim_y`]): identical to scikit-image's
//!   `structural_similarity(ref, test, gaussian_weights=True, sigma=1.5,
//!   use_sample_covariance=False, data_range=255)`, i.e. Wang et al. 2004: `K1 = 0.01`,
//!   `K2 = 0.03`, local statistics weighted by a Gaussian of sigma 1.5 truncated at 3.5 sigma
//!   (an 11-tap kernel, built like `scipy.ndimage`'s), population (co)variances, and the mean
//!   taken over the SSIM map with a border of 5 pixels cropped on every side. scikit-image
//!   filters with `mode='reflect'`, but every pixel that survives the crop has its whole 11x11
//!   window inside the image, so the border mode cannot influence the result; this
//!   implementation therefore filters only the "valid" region (separably, streaming through the
//!   image with an 11-row ring buffer, and splitting large images over threads).

use std::num::NonZeroUsize;

/// Value that [`mean_psnr`] and [`cap_psnr`] substitute for larger (including infinite) PSNRs.
///
/// 100 dB corresponds to an RMS error of about 2.6e-3 grey levels at `data_range = 255`, so
/// capping there only affects pairs that are identical or differ imperceptibly.
pub const PSNR_CAP_DB: f64 = 100.0;

/// Standard deviation of the SSIM Gaussian window (Wang et al. 2004).
pub const SSIM_SIGMA: f64 = 1.5;

/// Side of the SSIM window: `2 * int(3.5 * 1.5 + 0.5) + 1 = 11`, as scikit-image derives it
/// with `gaussian_weights=True` (filter truncated at 3.5 sigma).
pub const SSIM_WIN_SIZE: usize = 2 * SSIM_RADIUS + 1;

/// Smallest width and height [`ssim`] accepts: scikit-image rejects images smaller than the
/// window (`win_size exceeds image extent`), which is 11 with Gaussian weights (the 7x7 its
/// error message mentions is the window of the default, non-Gaussian mode).
pub const SSIM_MIN_SIDE: usize = SSIM_WIN_SIZE;

/// Radius of the SSIM Gaussian kernel: `int(truncate * sigma + 0.5)` with `truncate = 3.5`.
const SSIM_RADIUS: usize = 5;

const SSIM_K1: f64 = 0.01;
const SSIM_K2: f64 = 0.03;

/// Below this many pixels [`ssim`] does not bother spawning threads.
const SSIM_PARALLEL_MIN_PIXELS: usize = 512 * 512;
/// Minimum number of SSIM output rows per thread.
const SSIM_MIN_ROWS_PER_THREAD: usize = 64;

/// Errors returned by the metric functions for inputs they cannot measure.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricsError {
    /// Width or height is zero.
    #[error("image is empty ({width}x{height})")]
    EmptyImage {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// `width * height * channels` does not fit in `usize`.
    #[error("image dimensions {width}x{height} overflow usize")]
    DimensionsOverflow {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// A buffer's length is not what the dimensions require (too short, or with trailing data).
    #[error("buffer holds {actual} values, but a {width}x{height} image needs exactly {expected}")]
    BufferLength {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Required length (`width * height * channels`).
        expected: usize,
        /// Length supplied.
        actual: usize,
    },
    /// The two images (or planes) being compared have different sizes.
    #[error("images differ in size: {a} vs {b} values")]
    SizeMismatch {
        /// Length of the first (reference) buffer.
        a: usize,
        /// Length of the second (test) buffer.
        b: usize,
    },
    /// The image is smaller than the SSIM window in at least one dimension.
    #[error("image {width}x{height} is too small for SSIM: both sides must be at least {min}")]
    TooSmall {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// Smallest accepted side ([`SSIM_MIN_SIDE`]).
        min: usize,
    },
    /// `data_range` is not a finite, strictly positive number.
    #[error("data_range must be finite and > 0, got {0}")]
    InvalidDataRange(f64),
}

/// Checks dimensions and returns `width * height * channels`.
fn expected_len(width: usize, height: usize, channels: usize) -> Result<usize, MetricsError> {
    if width == 0 || height == 0 {
        return Err(MetricsError::EmptyImage { width, height });
    }
    width
        .checked_mul(height)
        .and_then(|n| n.checked_mul(channels))
        .ok_or(MetricsError::DimensionsOverflow { width, height })
}

/// Checks that `buf` holds exactly one `width x height x channels` image.
fn check_buffer(
    buf_len: usize,
    width: usize,
    height: usize,
    channels: usize,
) -> Result<(), MetricsError> {
    let expected = expected_len(width, height, channels)?;
    if buf_len != expected {
        return Err(MetricsError::BufferLength {
            width,
            height,
            expected,
            actual: buf_len,
        });
    }
    Ok(())
}

/// Checks that two RGB8 buffers are both exactly `width x height` images.
fn check_pair_rgb(a: &[u8], b: &[u8], width: usize, height: usize) -> Result<(), MetricsError> {
    if a.len() != b.len() {
        return Err(MetricsError::SizeMismatch {
            a: a.len(),
            b: b.len(),
        });
    }
    check_buffer(a.len(), width, height, 3)
}

fn check_data_range(data_range: f64) -> Result<(), MetricsError> {
    if data_range.is_finite() && data_range > 0.0 {
        Ok(())
    } else {
        Err(MetricsError::InvalidDataRange(data_range))
    }
}

/// BT.601 luma of one pixel, MATLAB `rgb2ycbcr` scaling, unrounded.
#[inline]
fn luma(r: u8, g: u8, b: u8) -> f64 {
    16.0 + (65.481 * f64::from(r) + 128.553 * f64::from(g) + 24.966 * f64::from(b)) / 255.0
}

/// Converts a packed RGB8 image to its Y plane (`width * height` values, row-major).
///
/// `Y = 16 + (65.481 R + 128.553 G + 24.966 B) / 255`, in `[16, 235]`, not rounded (the
/// `BasicSR` `to_y_channel` convention; see the [module documentation](self)).
///
/// # Errors
///
/// [`MetricsError::EmptyImage`], [`MetricsError::DimensionsOverflow`], or
/// [`MetricsError::BufferLength`] when `rgb.len() != width * height * 3`.
pub fn rgb_to_y(rgb: &[u8], width: usize, height: usize) -> Result<Vec<f64>, MetricsError> {
    check_buffer(rgb.len(), width, height, 3)?;
    Ok(rgb
        .chunks_exact(3)
        .map(|p| luma(p[0], p[1], p[2]))
        .collect())
}

/// Mean squared error of two equally long, non-empty sequences, in `f64`.
fn mse<I: Iterator<Item = (f64, f64)>>(pairs: I, n: usize) -> f64 {
    let sum: f64 = pairs
        .map(|(a, b)| {
            let d = a - b;
            d * d
        })
        .sum();
    sum / n as f64
}

fn psnr_from_mse(mse: f64, data_range: f64) -> f64 {
    // mse == 0 gives +inf, as scikit-image (numpy) does.
    10.0 * (data_range * data_range / mse).log10()
}

/// PSNR in dB between two planes of the same length: `10 log10(data_range² / MSE)`.
///
/// Matches scikit-image's `peak_signal_noise_ratio(a, b, data_range=data_range)`; the function
/// is symmetric in `a` and `b`. Returns `f64::INFINITY` when the planes are identical (see
/// [`mean_psnr`] for averaging such values).
///
/// # Errors
///
/// [`MetricsError::SizeMismatch`] if the lengths differ, [`MetricsError::EmptyImage`] if they
/// are empty, [`MetricsError::InvalidDataRange`] unless `data_range` is finite and positive.
pub fn psnr(a: &[f64], b: &[f64], data_range: f64) -> Result<f64, MetricsError> {
    if a.len() != b.len() {
        return Err(MetricsError::SizeMismatch {
            a: a.len(),
            b: b.len(),
        });
    }
    if a.is_empty() {
        return Err(MetricsError::EmptyImage {
            width: 0,
            height: 0,
        });
    }
    check_data_range(data_range)?;
    let m = mse(a.iter().copied().zip(b.iter().copied()), a.len());
    Ok(psnr_from_mse(m, data_range))
}

/// PSNR in dB on the Y channel of two packed RGB8 images, `data_range = 255`.
///
/// The literature's deraining PSNR: [`rgb_to_y`] on both images, then [`psnr`]. Equals
/// scikit-image's `peak_signal_noise_ratio(y_ref, y_test, data_range=255)` on those planes.
/// Returns `f64::INFINITY` for identical luma.
///
/// # Errors
///
/// [`MetricsError::SizeMismatch`] if the buffers differ in length, otherwise the errors of
/// [`rgb_to_y`].
pub fn psnr_y(a: &[u8], b: &[u8], width: usize, height: usize) -> Result<f64, MetricsError> {
    check_pair_rgb(a, b, width, height)?;
    let n = width * height;
    let m = mse(
        a.chunks_exact(3)
            .zip(b.chunks_exact(3))
            .map(|(p, q)| (luma(p[0], p[1], p[2]), luma(q[0], q[1], q[2]))),
        n,
    );
    Ok(psnr_from_mse(m, 255.0))
}

/// PSNR in dB over all three channels of two packed RGB8 images, `data_range = 255`.
///
/// Equals scikit-image's `peak_signal_noise_ratio(a, b, data_range=255)` on the `H x W x 3`
/// arrays. Meant for "do no harm" checks (output vs. input on clean frames), where colour
/// shifts that the Y channel hides must count. Returns `f64::INFINITY` for identical images.
///
/// # Errors
///
/// As [`psnr_y`].
pub fn psnr_rgb(a: &[u8], b: &[u8], width: usize, height: usize) -> Result<f64, MetricsError> {
    check_pair_rgb(a, b, width, height)?;
    let sum: u64 = a
        .iter()
        .zip(b)
        .map(|(&x, &y)| {
            let d = u64::from(x.abs_diff(y));
            d * d
        })
        .sum();
    Ok(psnr_from_mse(sum as f64 / a.len() as f64, 255.0))
}

/// Mean per-channel difference `b - a` of two interleaved RGB8 images, in 8-bit levels: the
/// colour cast a model puts on an image (`a` the input, `b` the output). `[0, 0, 0]` for no cast.
pub fn mean_channel_shift(
    a: &[u8],
    b: &[u8],
    width: usize,
    height: usize,
) -> Result<[f64; 3], MetricsError> {
    check_pair_rgb(a, b, width, height)?;
    let mut sum = [0i64; 3];
    for (pa, pb) in a.chunks_exact(3).zip(b.chunks_exact(3)) {
        for c in 0..3 {
            sum[c] += i64::from(pb[c]) - i64::from(pa[c]);
        }
    }
    let n = (width * height) as f64;
    Ok(sum.map(|s| s as f64 / n))
}

/// Caps a PSNR value at [`PSNR_CAP_DB`] (infinity for identical images becomes 100 dB).
///
/// NaN is passed through unchanged.
#[must_use]
pub fn cap_psnr(db: f64) -> f64 {
    if db > PSNR_CAP_DB { PSNR_CAP_DB } else { db }
}

/// Mean of per-image PSNR values, each first capped at [`PSNR_CAP_DB`] with [`cap_psnr`].
///
/// Identical image pairs (PSNR `+inf`) therefore count as 100 dB instead of making the mean
/// infinite. Returns `None` for an empty input. A NaN value makes the mean NaN.
#[must_use]
pub fn mean_psnr<I: IntoIterator<Item = f64>>(values: I) -> Option<f64> {
    let (sum, n) = values
        .into_iter()
        .fold((0.0_f64, 0_usize), |(s, n), v| (s + cap_psnr(v), n + 1));
    (n > 0).then(|| sum / n as f64)
}

/// Mean SSIM of two `width x height` planes (row-major), scikit-image convention.
///
/// Equals `skimage.metrics.structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
/// use_sample_covariance=False, data_range=data_range)` (11x11 Gaussian window, `K1 = 0.01`,
/// `K2 = 0.03`, mean over the map without its 5-pixel border). Identical planes give exactly
/// `1.0`. Images of 512x512 pixels and more are split over up to
/// `std::thread::available_parallelism()` scoped threads; the result does not depend on the
/// thread count (bit for bit).
///
/// # Errors
///
/// [`MetricsError::SizeMismatch`] if the planes differ in length, the dimension errors of
/// [`rgb_to_y`] (with one channel), [`MetricsError::TooSmall`] if either side is below
/// [`SSIM_MIN_SIDE`], [`MetricsError::InvalidDataRange`] unless `data_range` is finite and
/// positive.
pub fn ssim(
    a: &[f64],
    b: &[f64],
    width: usize,
    height: usize,
    data_range: f64,
) -> Result<f64, MetricsError> {
    if a.len() != b.len() {
        return Err(MetricsError::SizeMismatch {
            a: a.len(),
            b: b.len(),
        });
    }
    check_buffer(a.len(), width, height, 1)?;
    check_ssim_size(width, height)?;
    check_data_range(data_range)?;
    let src = PlanePair { a, b, width };
    Ok(ssim_unchecked(
        &src,
        height,
        data_range,
        default_threads(width, height),
    ))
}

/// Mean SSIM on the Y channel of two packed RGB8 images, `data_range = 255`.
///
/// The literature's deraining SSIM: [`rgb_to_y`] on both images, then [`ssim`] with
/// `data_range = 255`, i.e. scikit-image's `structural_similarity(y_ref, y_test,
/// gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)`. The Y
/// planes are converted row by row as the filter streams through the image, never stored
/// whole.
///
/// # Errors
///
/// [`MetricsError::SizeMismatch`], the errors of [`rgb_to_y`], and [`MetricsError::TooSmall`]
/// for images under 11 pixels on a side.
pub fn ssim_y(a: &[u8], b: &[u8], width: usize, height: usize) -> Result<f64, MetricsError> {
    check_pair_rgb(a, b, width, height)?;
    check_ssim_size(width, height)?;
    let src = RgbPair { a, b, width };
    Ok(ssim_unchecked(
        &src,
        height,
        255.0,
        default_threads(width, height),
    ))
}

/// Y-channel PSNR and SSIM of a pair of packed RGB8 images: `(psnr_db, ssim)`.
///
/// The same values as [`psnr_y`] and [`ssim_y`], with the inputs checked once.
///
/// # Errors
///
/// As [`ssim_y`].
pub fn psnr_ssim_y(
    a: &[u8],
    b: &[u8],
    width: usize,
    height: usize,
) -> Result<(f64, f64), MetricsError> {
    check_pair_rgb(a, b, width, height)?;
    check_ssim_size(width, height)?;
    let s = ssim_unchecked(
        &RgbPair { a, b, width },
        height,
        255.0,
        default_threads(width, height),
    );
    Ok((psnr_y(a, b, width, height)?, s))
}

fn check_ssim_size(width: usize, height: usize) -> Result<(), MetricsError> {
    if width < SSIM_MIN_SIDE || height < SSIM_MIN_SIDE {
        return Err(MetricsError::TooSmall {
            width,
            height,
            min: SSIM_MIN_SIDE,
        });
    }
    Ok(())
}

/// Threads [`ssim`] uses for a `width x height` image.
fn default_threads(width: usize, height: usize) -> usize {
    if width.saturating_mul(height) < SSIM_PARALLEL_MIN_PIXELS {
        return 1;
    }
    std::thread::available_parallelism()
        .map_or(1, NonZeroUsize::get)
        .min((height - 2 * SSIM_RADIUS) / SSIM_MIN_ROWS_PER_THREAD)
        .max(1)
}

/// The normalised 11-tap Gaussian, as `scipy.ndimage._gaussian_kernel1d(1.5, 0, 5)` builds it.
fn gaussian_kernel() -> [f64; SSIM_WIN_SIZE] {
    let sigma2 = SSIM_SIGMA * SSIM_SIGMA;
    let mut k = [0.0_f64; SSIM_WIN_SIZE];
    for (i, w) in k.iter_mut().enumerate() {
        let x = i as f64 - SSIM_RADIUS as f64;
        *w = (-0.5 / sigma2 * x * x).exp();
    }
    let sum: f64 = k.iter().sum();
    for w in &mut k {
        *w /= sum;
    }
    k
}

/// `Σ_j k[j] v(j)` for the symmetric kernel, in the same order of operations as the blocked
/// loops of [`SsimFilter`], so that every output value is rounded identically wherever it sits.
#[inline]
fn symmetric_tap(k: &[f64; SSIM_WIN_SIZE], v: impl Fn(usize) -> f64) -> f64 {
    let mut acc = k[SSIM_RADIUS] * v(SSIM_RADIUS);
    for (j, &kj) in k[..SSIM_RADIUS].iter().enumerate() {
        acc += kj * (v(j) + v(2 * SSIM_RADIUS - j));
    }
    acc
}

/// Number of filtered quantities: `a`, `b`, `a²`, `b²`, `a·b`.
const NQ: usize = 5;

/// Pixels per register block in the filter loops.
const BLOCK: usize = 8;

/// A pair of equally sized images that SSIM reads one row at a time.
trait RowPair: Sync {
    /// Width in pixels.
    fn width(&self) -> usize;
    /// Writes row `r` of both images and their products into `out`, five runs of `width`
    /// values: `a`, `b`, `a²`, `b²`, `a·b`.
    fn products(&self, r: usize, out: &mut [f64]);
}

fn fill_products(out: &mut [f64], w: usize, pixels: impl Iterator<Item = (f64, f64)>) {
    let (pa, rest) = out.split_at_mut(w);
    let (pb, rest) = rest.split_at_mut(w);
    let (paa, rest) = rest.split_at_mut(w);
    let (pbb, pab) = rest.split_at_mut(w);
    let outs = pa
        .iter_mut()
        .zip(pb.iter_mut())
        .zip(paa.iter_mut().zip(pbb.iter_mut()).zip(pab.iter_mut()));
    for (((oa, ob), ((oaa, obb), oab)), (x, y)) in outs.zip(pixels) {
        *oa = x;
        *ob = y;
        *oaa = x * x;
        *obb = y * y;
        *oab = x * y;
    }
}

/// Two `f64` planes.
struct PlanePair<'a> {
    a: &'a [f64],
    b: &'a [f64],
    width: usize,
}

impl RowPair for PlanePair<'_> {
    fn width(&self) -> usize {
        self.width
    }

    fn products(&self, r: usize, out: &mut [f64]) {
        let w = self.width;
        let row_a = &self.a[r * w..(r + 1) * w];
        let row_b = &self.b[r * w..(r + 1) * w];
        fill_products(out, w, row_a.iter().copied().zip(row_b.iter().copied()));
    }
}

/// Two packed RGB8 images, read as their Y planes.
struct RgbPair<'a> {
    a: &'a [u8],
    b: &'a [u8],
    width: usize,
}

impl RowPair for RgbPair<'_> {
    fn width(&self) -> usize {
        self.width
    }

    fn products(&self, r: usize, out: &mut [f64]) {
        let n = self.width * 3;
        let row_a = &self.a[r * n..(r + 1) * n];
        let row_b = &self.b[r * n..(r + 1) * n];
        let pixels = row_a
            .chunks_exact(3)
            .zip(row_b.chunks_exact(3))
            .map(|(p, q)| (luma(p[0], p[1], p[2]), luma(q[0], q[1], q[2])));
        fill_products(out, self.width, pixels);
    }
}

/// SSIM on validated inputs (both images `src.width() x height`, both sides at least
/// [`SSIM_MIN_SIDE`], valid `data_range`), split over `threads` threads (0 counts as 1).
fn ssim_unchecked<S: RowPair>(src: &S, height: usize, data_range: f64, threads: usize) -> f64 {
    let kernel = gaussian_kernel();
    let filter = SsimFilter {
        kernel: &kernel,
        c1: (SSIM_K1 * data_range).powi(2),
        c2: (SSIM_K2 * data_range).powi(2),
    };
    let out_h = height - 2 * SSIM_RADIUS;
    let out_w = src.width() - 2 * SSIM_RADIUS;

    // One partial sum per output row, summed in row order at the end, so the result is the
    // same whatever the number of threads.
    let mut row_sums = vec![0.0_f64; out_h];
    if threads <= 1 {
        filter.rows(src, 0, &mut row_sums);
    } else {
        let rows_per_thread = out_h.div_ceil(threads);
        let filter = &filter;
        let band_sums = move |first: usize| {
            let mut sums = vec![0.0_f64; rows_per_thread.min(out_h - first)];
            filter.rows(src, first, &mut sums);
            sums
        };
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..out_h)
                .step_by(rows_per_thread)
                .map(|first| {
                    let spawned = std::thread::Builder::new()
                        .name("nlcl-ssim".into())
                        .spawn_scoped(s, move || band_sums(first));
                    (first, spawned)
                })
                .collect();
            for (first, spawned) in handles {
                let sums = match spawned {
                    Ok(handle) => match handle.join() {
                        Ok(sums) => sums,
                        Err(panic) => std::panic::resume_unwind(panic),
                    },
                    // The OS refused a thread: do that band here instead.
                    Err(_) => band_sums(first),
                };
                row_sums[first..first + sums.len()].copy_from_slice(&sums);
            }
        });
    }
    let total: f64 = row_sums.iter().sum();
    total / (out_w * out_h) as f64
}

/// The Gaussian window and SSIM constants.
struct SsimFilter<'a> {
    kernel: &'a [f64; SSIM_WIN_SIZE],
    c1: f64,
    c2: f64,
}

impl SsimFilter<'_> {
    /// Computes the SSIM row sums for output rows `first .. first + sums.len()`.
    ///
    /// Output row `y` (and column `x`) is centred on input row `y + 5` (column `x + 5`); the
    /// 11 horizontally filtered input rows it needs are kept in a ring buffer.
    fn rows<S: RowPair>(&self, src: &S, first: usize, sums: &mut [f64]) {
        let w = src.width();
        let out_w = w - 2 * SSIM_RADIUS;
        // products[q * w ..][..w]: the five quantities of the current input row.
        let mut products = vec![0.0_f64; NQ * w];
        // ring[slot][q * out_w ..][..out_w]: horizontally filtered rows.
        let mut ring = vec![vec![0.0_f64; NQ * out_w]; SSIM_WIN_SIZE];
        // The current output row's vertically filtered quantities, same layout.
        let mut filtered = vec![0.0_f64; NQ * out_w];

        let last = first + sums.len(); // exclusive, in output rows
        for r in first..last + 2 * SSIM_RADIUS {
            src.products(r, &mut products);
            let slot = &mut ring[r % SSIM_WIN_SIZE];
            for (dst, row) in slot.chunks_exact_mut(out_w).zip(products.chunks_exact(w)) {
                self.horizontal(row, dst);
            }
            if let Some(y) = r.checked_sub(2 * SSIM_RADIUS)
                && y >= first
            {
                let rows: [&[f64]; SSIM_WIN_SIZE] =
                    std::array::from_fn(|j| ring[(y + j) % SSIM_WIN_SIZE].as_slice());
                sums[y - first] = self.vertical_ssim(&rows, &mut filtered, out_w);
            }
        }
    }

    /// "Valid" correlation of `src` with the kernel: `dst[x] = Σ_j k[j] src[x + j]`.
    fn horizontal(&self, src: &[f64], dst: &mut [f64]) {
        let k = self.kernel;
        let mut blocks = dst.chunks_exact_mut(BLOCK);
        let mut x = 0;
        for block in &mut blocks {
            if let Some(s) = src[x..].first_chunk::<{ BLOCK + 2 * SSIM_RADIUS }>() {
                // The kernel is symmetric: pair tap j with tap 10 - j.
                let mut acc = [0.0_f64; BLOCK];
                for (l, a) in acc.iter_mut().enumerate() {
                    *a = k[SSIM_RADIUS] * s[SSIM_RADIUS + l];
                }
                for (j, &kj) in k[..SSIM_RADIUS].iter().enumerate() {
                    for (l, a) in acc.iter_mut().enumerate() {
                        *a += kj * (s[j + l] + s[2 * SSIM_RADIUS - j + l]);
                    }
                }
                block.copy_from_slice(&acc);
            }
            x += BLOCK;
        }
        for (i, d) in blocks.into_remainder().iter_mut().enumerate() {
            *d = symmetric_tap(k, |j| src[x + i + j]);
        }
    }

    /// Vertical correlation of the 11 horizontally filtered rows of one output row into
    /// `filtered` (same layout as a ring slot), then the sum of the SSIM map over that row.
    fn vertical_ssim(
        &self,
        rows: &[&[f64]; SSIM_WIN_SIZE],
        filtered: &mut [f64],
        out_w: usize,
    ) -> f64 {
        let k = self.kernel;
        let n = filtered.len();
        let mut x = 0;
        while x + BLOCK <= n {
            let block = |j: usize| rows[j][x..].first_chunk::<BLOCK>();
            let mut acc = [0.0_f64; BLOCK];
            if let Some(c) = block(SSIM_RADIUS) {
                for (a, &v) in acc.iter_mut().zip(c) {
                    *a = k[SSIM_RADIUS] * v;
                }
            }
            // Symmetric kernel: rows j and 10 - j share a weight.
            for (j, &kj) in k[..SSIM_RADIUS].iter().enumerate() {
                if let (Some(lo), Some(hi)) = (block(j), block(2 * SSIM_RADIUS - j)) {
                    for ((a, &u), &v) in acc.iter_mut().zip(lo).zip(hi) {
                        *a += kj * (u + v);
                    }
                }
            }
            filtered[x..x + BLOCK].copy_from_slice(&acc);
            x += BLOCK;
        }
        for (i, d) in filtered[x..].iter_mut().enumerate() {
            *d = symmetric_tap(k, |j| rows[j][x + i]);
        }

        let (ux, rest) = filtered.split_at(out_w);
        let (uy, rest) = rest.split_at(out_w);
        let (uxx, rest) = rest.split_at(out_w);
        let (uyy, uxy) = rest.split_at(out_w);
        // Several partial sums, so the additions do not form one long dependency chain.
        let mut lanes = [0.0_f64; BLOCK];
        let values = ux
            .iter()
            .zip(uy)
            .zip(uxx.iter().zip(uyy).zip(uxy))
            .map(|((&mx, &my), ((&mxx, &myy), &mxy))| self.ssim_value(mx, my, mxx, myy, mxy));
        for (i, v) in values.enumerate() {
            lanes[i % BLOCK] += v;
        }
        lanes.iter().sum()
    }

    /// One SSIM map value from the filtered `a`, `b`, `a²`, `b²`, `a·b` (skimage's formula).
    #[inline]
    fn ssim_value(&self, ux: f64, uy: f64, uxx: f64, uyy: f64, uxy: f64) -> f64 {
        let vx = uxx - ux * ux;
        let vy = uyy - uy * uy;
        let vxy = uxy - ux * uy;
        let a1 = 2.0 * ux * uy + self.c1;
        let a2 = 2.0 * vxy + self.c2;
        let b1 = ux * ux + uy * uy + self.c1;
        let b2 = vx + vy + self.c2;
        (a1 * a2) / (b1 * b2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_shift_measures_a_cast_and_clipping() {
        // A 2x1 image; the second pixel's red cannot rise above 255.
        let a = [10u8, 100, 200, 250, 0, 3];
        let b = [14u8, 100, 197, 255, 0, 0];
        let s = mean_channel_shift(&a, &b, 2, 1).unwrap();
        assert_eq!(s, [4.5, 0.0, -3.0]);
        assert_eq!(mean_channel_shift(&a, &a, 2, 1).unwrap(), [0.0; 3]);
        assert!(mean_channel_shift(&a, &b[..3], 2, 1).is_err());
    }

    // ---- Deterministic test images -------------------------------------------------------
    //
    // The same generator, in Python, produced the reference numbers below:
    //
    // ```python
    // import numpy as np
    // from skimage.metrics import peak_signal_noise_ratio, structural_similarity
    //
    // def xorshift32(s):
    //     while True:
    //         s ^= (s << 13) & 0xFFFFFFFF
    //         s ^= s >> 17
    //         s ^= (s << 5) & 0xFFFFFFFF
    //         yield s
    //
    // def clamp(v):
    //     return max(0, min(255, v))
    //
    // def base_image(w, h, seed):
    //     rng = xorshift32(seed)
    //     img = np.zeros((h, w, 3), np.uint8)
    //     for y in range(h):
    //         for x in range(w):
    //             for c in range(3):
    //                 v = (x * 200) // (w - 1) + (y * 50) // (h - 1) + c * 20
    //                 img[y, x, c] = clamp(v + next(rng) % 21 - 10)
    //     return img
    //
    // def noisy(img, seed, amp):
    //     rng = xorshift32(seed)
    //     h, w, _ = img.shape
    //     out = img.copy()
    //     for y in range(h):
    //         for x in range(w):
    //             for c in range(3):
    //                 out[y, x, c] = clamp(int(img[y, x, c]) + next(rng) % (2 * amp + 1) - amp)
    //     return out
    //
    // def shifted(img):                      # one pixel to the right, first column repeated
    //     out = img.copy()
    //     out[:, 1:, :] = img[:, :-1, :]
    //     return out
    //
    // def blurred(img):                      # 3x3 box, integer mean, clamp-to-edge
    //     h, w, _ = img.shape
    //     out = img.copy()
    //     for y in range(h):
    //         for x in range(w):
    //             for c in range(3):
    //                 s = 0
    //                 for dy in (-1, 0, 1):
    //                     for dx in (-1, 0, 1):
    //                         yy = min(max(y + dy, 0), h - 1)
    //                         xx = min(max(x + dx, 0), w - 1)
    //                         s += int(img[yy, xx, c])
    //                 out[y, x, c] = s // 9
    //     return out
    //
    // def fnv1a(b):
    //     hsh = 0xcbf29ce484222325
    //     for v in b:
    //         hsh ^= int(v)
    //         hsh = (hsh * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    //     return hsh
    //
    // def to_y(img):  # BasicSR to_y_channel convention, float64, unrounded
    //     f = img.astype(np.float64)
    //     return 16.0 + (65.481 * f[..., 0] + 128.553 * f[..., 1] + 24.966 * f[..., 2]) / 255.0
    //
    // for (w, h, seed) in [(37, 29, 0x12345678), (64, 48, 0x9E3779B9)]:
    //     ref = base_image(w, h, seed)
    //     for dist in [noisy(ref, seed ^ 0xDEADBEEF, 20), shifted(ref), blurred(ref)]:
    //         ya, yb = to_y(ref), to_y(dist)
    //         psnr_y = peak_signal_noise_ratio(ya, yb, data_range=255)
    //         ssim_y = structural_similarity(ya, yb, gaussian_weights=True, sigma=1.5,
    //                                        use_sample_covariance=False, data_range=255)
    //         psnr_rgb = peak_signal_noise_ratio(ref.astype(np.float64),
    //                                            dist.astype(np.float64), data_range=255)
    //         print(fnv1a(ref.tobytes()), fnv1a(dist.tobytes()), psnr_y, ssim_y, psnr_rgb)
    // ```
    //
    // scikit-image 0.26.0, numpy 2.x, Python 3.11. (Computing Y exactly as BasicSR does, with
    // float32 intermediates, moves these by < 1e-6 dB and < 3e-8 SSIM.)

    struct XorShift32(u32);

    impl XorShift32 {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 17;
            self.0 ^= self.0 << 5;
            self.0
        }
    }

    fn clamp(v: i64) -> u8 {
        v.clamp(0, 255) as u8
    }

    fn base_image(w: usize, h: usize, seed: u32) -> Vec<u8> {
        let mut rng = XorShift32(seed);
        let mut img = Vec::with_capacity(w * h * 3);
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let v = (x * 200 / (w - 1) + y * 50 / (h - 1) + c * 20) as i64;
                    img.push(clamp(v + i64::from(rng.next() % 21) - 10));
                }
            }
        }
        img
    }

    fn noisy(img: &[u8], seed: u32, amp: u32) -> Vec<u8> {
        let mut rng = XorShift32(seed);
        img.iter()
            .map(|&p| clamp(i64::from(p) + i64::from(rng.next() % (2 * amp + 1)) - i64::from(amp)))
            .collect()
    }

    fn shifted(img: &[u8], w: usize, h: usize) -> Vec<u8> {
        let mut out = img.to_vec();
        for y in 0..h {
            for x in 1..w {
                for c in 0..3 {
                    out[(y * w + x) * 3 + c] = img[(y * w + x - 1) * 3 + c];
                }
            }
        }
        out
    }

    fn blurred(img: &[u8], w: usize, h: usize) -> Vec<u8> {
        let mut out = img.to_vec();
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let mut s = 0_u32;
                    for dy in -1_isize..=1 {
                        for dx in -1_isize..=1 {
                            let yy = y.saturating_add_signed(dy).min(h - 1);
                            let xx = x.saturating_add_signed(dx).min(w - 1);
                            s += u32::from(img[(yy * w + xx) * 3 + c]);
                        }
                    }
                    out[(y * w + x) * 3 + c] = (s / 9) as u8;
                }
            }
        }
        out
    }

    fn fnv1a(bytes: &[u8]) -> u64 {
        bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }

    struct Case {
        name: &'static str,
        hash: u64,
        psnr_y: f64,
        ssim_y: f64,
        psnr_rgb: f64,
    }

    /// `(width, height, seed, fnv1a(reference), [noise, shift, blur])`, from the script above.
    #[allow(clippy::type_complexity)]
    const REFERENCE: [(usize, usize, u32, u64, [Case; 3]); 2] = [
        (
            37,
            29,
            0x1234_5678,
            0x861c_de19_568a_7967,
            [
                Case {
                    name: "noise",
                    hash: 0x0999_1c1c_28b4_8ff0,
                    psnr_y: 31.219_345_017_4,
                    ssim_y: 0.803_457_878_572,
                    psnr_rgb: 26.797_686_866_1,
                },
                Case {
                    name: "shift",
                    hash: 0x6c20_716b_3cda_c8b0,
                    psnr_y: 31.572_028_654_2,
                    ssim_y: 0.875_663_572_905,
                    psnr_rgb: 28.173_606_816_6,
                },
                Case {
                    name: "blur",
                    hash: 0x7e41_4acf_57ca_99db,
                    psnr_y: 37.735_539_517_7,
                    ssim_y: 0.941_409_894_220,
                    psnr_rgb: 33.171_598_871_0,
                },
            ],
        ),
        (
            64,
            48,
            0x9E37_79B9,
            0x4272_12e2_c88e_b080,
            [
                Case {
                    name: "noise",
                    hash: 0x274e_624b_2f00_4b70,
                    psnr_y: 31.449_590_116_0,
                    ssim_y: 0.724_225_785_616,
                    psnr_rgb: 26.791_452_375_7,
                },
                Case {
                    name: "shift",
                    hash: 0x3550_1d13_39e5_ce48,
                    psnr_y: 33.308_768_457_9,
                    ssim_y: 0.796_082_681_562,
                    psnr_rgb: 29.093_005_558_9,
                },
                Case {
                    name: "blur",
                    hash: 0x03cd_7597_349a_85b9,
                    psnr_y: 37.912_217_274_9,
                    ssim_y: 0.901_421_920_107,
                    psnr_rgb: 33.141_105_721_3,
                },
            ],
        ),
    ];

    #[test]
    fn matches_scikit_image() {
        for (w, h, seed, ref_hash, cases) in &REFERENCE {
            let (w, h) = (*w, *h);
            let reference = base_image(w, h, *seed);
            assert_eq!(
                fnv1a(&reference),
                *ref_hash,
                "{w}x{h} reference bytes differ"
            );
            let distorted = [
                noisy(&reference, seed ^ 0xDEAD_BEEF, 20),
                shifted(&reference, w, h),
                blurred(&reference, w, h),
            ];
            for (case, test) in cases.iter().zip(&distorted) {
                let what = format!("{w}x{h} {}", case.name);
                assert_eq!(fnv1a(test), case.hash, "{what}: test bytes differ");

                let p = psnr_y(&reference, test, w, h).unwrap();
                assert!((p - case.psnr_y).abs() < 1e-3, "{what}: psnr_y {p}");
                let s = ssim_y(&reference, test, w, h).unwrap();
                assert!((s - case.ssim_y).abs() < 1e-4, "{what}: ssim_y {s}");
                let pr = psnr_rgb(&reference, test, w, h).unwrap();
                assert!((pr - case.psnr_rgb).abs() < 1e-3, "{what}: psnr_rgb {pr}");

                // Much tighter in practice: only summation order differs.
                assert!((p - case.psnr_y).abs() < 1e-8, "{what}: psnr_y {p}");
                assert!((s - case.ssim_y).abs() < 1e-10, "{what}: ssim_y {s}");

                let (p2, s2) = psnr_ssim_y(&reference, test, w, h).unwrap();
                assert_eq!((p2, s2), (p, s), "{what}: psnr_ssim_y");
                // Symmetric.
                assert!((psnr_y(test, &reference, w, h).unwrap() - p).abs() < 1e-12);
                assert!((ssim_y(test, &reference, w, h).unwrap() - s).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn y_conversion() {
        let y = rgb_to_y(&[0, 0, 0, 255, 255, 255, 255, 0, 0, 10, 20, 30], 2, 2).unwrap();
        assert!((y[0] - 16.0).abs() < 1e-12);
        assert!((y[1] - 235.0).abs() < 1e-12);
        assert!((y[2] - (16.0 + 65.481)).abs() < 1e-12);
        let expect = 16.0 + (65.481 * 10.0 + 128.553 * 20.0 + 24.966 * 30.0) / 255.0;
        assert!((y[3] - expect).abs() < 1e-12);
        // Not rounded.
        assert!(y[3].fract() != 0.0);
    }

    #[test]
    fn identical_images() {
        let (w, h) = (37, 29);
        let img = base_image(w, h, 7);
        assert_eq!(psnr_y(&img, &img, w, h).unwrap(), f64::INFINITY);
        assert_eq!(psnr_rgb(&img, &img, w, h).unwrap(), f64::INFINITY);
        assert_eq!(ssim_y(&img, &img, w, h).unwrap(), 1.0);
        // Flat images too (zero variance).
        let flat = vec![128_u8; 11 * 11 * 3];
        assert_eq!(ssim_y(&flat, &flat, 11, 11).unwrap(), 1.0);
        assert_eq!(psnr_ssim_y(&img, &img, w, h).unwrap(), (f64::INFINITY, 1.0));
    }

    #[test]
    fn psnr_capping() {
        assert_eq!(cap_psnr(f64::INFINITY), PSNR_CAP_DB);
        assert_eq!(cap_psnr(30.0), 30.0);
        assert!(cap_psnr(f64::NAN).is_nan());
        assert_eq!(mean_psnr([30.0, f64::INFINITY]), Some(65.0));
        assert_eq!(mean_psnr(Vec::new()), None);
    }

    #[test]
    fn plane_psnr() {
        let a = [0.0, 0.0, 0.0, 0.0];
        let b = [1.0, 1.0, 1.0, 1.0];
        assert!((psnr(&a, &b, 1.0).unwrap() - 0.0).abs() < 1e-12);
        assert!((psnr(&a, &b, 10.0).unwrap() - 20.0).abs() < 1e-12);
        assert!(matches!(
            psnr(&a, &b[..3], 1.0),
            Err(MetricsError::SizeMismatch { a: 4, b: 3 })
        ));
        assert!(matches!(
            psnr(&[], &[], 1.0),
            Err(MetricsError::EmptyImage { .. })
        ));
        assert!(matches!(
            psnr(&a, &b, 0.0),
            Err(MetricsError::InvalidDataRange(_))
        ));
        assert!(matches!(
            psnr(&a, &b, f64::NAN),
            Err(MetricsError::InvalidDataRange(_))
        ));
    }

    #[test]
    fn bad_inputs() {
        let a = base_image(16, 16, 1);
        let b = base_image(16, 15, 1);
        assert!(matches!(
            psnr_y(&a, &b, 16, 16),
            Err(MetricsError::SizeMismatch { .. })
        ));
        assert!(matches!(
            ssim_y(&a, &b, 16, 16),
            Err(MetricsError::SizeMismatch { .. })
        ));
        assert!(matches!(
            psnr_rgb(&a, &b, 16, 16),
            Err(MetricsError::SizeMismatch { .. })
        ));
        // Buffer too short / too long for the stated dimensions.
        assert!(matches!(
            psnr_y(&b, &b, 16, 16),
            Err(MetricsError::BufferLength {
                expected: 768,
                actual: 720,
                ..
            })
        ));
        assert!(matches!(
            ssim_y(&a, &a, 16, 15),
            Err(MetricsError::BufferLength { .. })
        ));
        assert!(matches!(
            rgb_to_y(&a[..10], 2, 2),
            Err(MetricsError::BufferLength { .. })
        ));
        assert!(matches!(
            rgb_to_y(&[], 0, 5),
            Err(MetricsError::EmptyImage { .. })
        ));
        assert!(matches!(
            rgb_to_y(&a, usize::MAX, 2),
            Err(MetricsError::DimensionsOverflow { .. })
        ));
        // Smaller than the 11x11 SSIM window.
        let tiny = base_image(10, 20, 3);
        assert!(matches!(
            ssim_y(&tiny, &tiny, 10, 20),
            Err(MetricsError::TooSmall {
                width: 10,
                height: 20,
                min: 11
            })
        ));
        let tiny = base_image(7, 7, 3);
        assert!(matches!(
            ssim_y(&tiny, &tiny, 7, 7),
            Err(MetricsError::TooSmall { .. })
        ));
        // PSNR has no minimum size.
        assert_eq!(psnr_y(&tiny, &tiny, 7, 7).unwrap(), f64::INFINITY);
        let y = vec![0.0; 121];
        assert!(matches!(
            ssim(&y, &y, 11, 11, -1.0),
            Err(MetricsError::InvalidDataRange(_))
        ));
        assert!(matches!(
            ssim(&y, &y[..120], 11, 11, 255.0),
            Err(MetricsError::SizeMismatch { .. })
        ));
    }

    /// Compares the streaming (optionally threaded) implementation against a direct full-map
    /// computation with `mode='reflect'` filtering.
    #[test]
    fn matches_direct_reflect_implementation() {
        let (w, h) = (150, 110);
        let a = base_image(w, h, 11);
        let b = blurred(&noisy(&a, 12, 15), w, h);
        let ya = rgb_to_y(&a, w, h).unwrap();
        let yb = rgb_to_y(&b, w, h).unwrap();
        let direct = direct_ssim(&ya, &yb, w, h, 255.0);
        let planes = PlanePair {
            a: &ya,
            b: &yb,
            width: w,
        };
        let single = ssim_unchecked(&planes, h, 255.0, 1);
        assert!((single - direct).abs() < 1e-12, "{single} vs {direct}");
        assert_eq!(ssim(&ya, &yb, w, h, 255.0).unwrap(), single);
        assert_eq!(ssim_y(&a, &b, w, h).unwrap(), single);
        // The row split does not change the result, bit for bit.
        let rgb = RgbPair {
            a: &a,
            b: &b,
            width: w,
        };
        for threads in [0, 2, 3, 7, 100] {
            assert_eq!(ssim_unchecked(&planes, h, 255.0, threads), single);
            assert_eq!(ssim_unchecked(&rgb, h, 255.0, threads), single);
        }
        // data_range is honoured.
        let s1 = ssim(&ya, &yb, w, h, 1.0).unwrap();
        let direct1 = direct_ssim(&ya, &yb, w, h, 1.0);
        assert!((s1 - direct1).abs() < 1e-12, "{s1} vs {direct1}");
    }

    /// scipy.ndimage 'reflect' (half-sample symmetric) index.
    fn reflect(i: isize, n: usize) -> usize {
        let n = n as isize;
        let period = 2 * n;
        let m = i.rem_euclid(period);
        (if m < n { m } else { period - 1 - m }) as usize
    }

    fn gaussian_filter_reflect(p: &[f64], w: usize, h: usize) -> Vec<f64> {
        let k = gaussian_kernel();
        let r = SSIM_RADIUS as isize;
        let mut tmp = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                tmp[y * w + x] = (-r..=r)
                    .map(|d| k[(d + r) as usize] * p[y * w + reflect(x as isize + d, w)])
                    .sum();
            }
        }
        let mut out = vec![0.0; w * h];
        for y in 0..h {
            for x in 0..w {
                out[y * w + x] = (-r..=r)
                    .map(|d| k[(d + r) as usize] * tmp[reflect(y as isize + d, h) * w + x])
                    .sum();
            }
        }
        out
    }

    /// Line-by-line transcription of skimage's `structural_similarity` (Gaussian branch).
    fn direct_ssim(a: &[f64], b: &[f64], w: usize, h: usize, range: f64) -> f64 {
        let mul = |p: &[f64], q: &[f64]| p.iter().zip(q).map(|(x, y)| x * y).collect::<Vec<_>>();
        let ux = gaussian_filter_reflect(a, w, h);
        let uy = gaussian_filter_reflect(b, w, h);
        let uxx = gaussian_filter_reflect(&mul(a, a), w, h);
        let uyy = gaussian_filter_reflect(&mul(b, b), w, h);
        let uxy = gaussian_filter_reflect(&mul(a, b), w, h);
        let c1 = (0.01 * range) * (0.01 * range);
        let c2 = (0.03 * range) * (0.03 * range);
        let pad = (SSIM_WIN_SIZE - 1) / 2;
        let mut sum = 0.0;
        for y in pad..h - pad {
            for x in pad..w - pad {
                let i = y * w + x;
                let vx = uxx[i] - ux[i] * ux[i];
                let vy = uyy[i] - uy[i] * uy[i];
                let vxy = uxy[i] - ux[i] * uy[i];
                let s = ((2.0 * ux[i] * uy[i] + c1) * (2.0 * vxy + c2))
                    / ((ux[i] * ux[i] + uy[i] * uy[i] + c1) * (vx + vy + c2));
                sum += s;
            }
        }
        sum / ((w - 2 * pad) * (h - 2 * pad)) as f64
    }

    /// Timing on a 4288x2848 image (the largest Rain100H-style frames); run with
    /// `cargo test --release -- --ignored --nocapture large_image_speed`.
    #[test]
    #[ignore = "timing only; run in release"]
    fn large_image_speed() {
        let (w, h) = (4288, 2848);
        let a: Vec<u8> = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
        let b = noisy(&a, 5, 10);
        let t = std::time::Instant::now();
        let (p, s) = psnr_ssim_y(&a, &b, w, h).unwrap();
        let dt = t.elapsed();
        println!("{w}x{h}: psnr_y {p:.4} ssim_y {s:.6} in {dt:?}");
        let t = std::time::Instant::now();
        let s1 = ssim_y(&a, &b, w, h).unwrap();
        println!("ssim_y alone {:?}", t.elapsed());
        assert_eq!(s, s1);
        let t = std::time::Instant::now();
        let s2 = ssim_unchecked(
            &RgbPair {
                a: &a,
                b: &b,
                width: w,
            },
            h,
            255.0,
            1,
        );
        println!("ssim_y on one thread {:?}", t.elapsed());
        assert_eq!(s, s2);
    }
}
