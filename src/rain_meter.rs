//! How much rain a model removed from a frame, and when it is dry enough to stop deraining.
//!
//! The rain intensity of a frame is the mean absolute difference between the model's input
//! and its output, in 8-bit levels, over the frame's pixels and channels: about 0.5 on dry
//! frames with the built-in model, several levels in rain (README, "Rain meter").
//! [`RainMeter`] turns those measurements into a decision per frame for automatic bypass:
//! derain every frame while it rains; after a run of dry frames, pass frames through
//! untouched and only check every n-th one; start deraining again when a check finds rain.
//! Two thresholds (dry below `threshold`, rain again above `threshold * RESUME_FACTOR`) and
//! the run length keep the mode from flickering.

/// A check must measure this many times the threshold to resume deraining (hysteresis).
pub const RESUME_FACTOR: f64 = 1.5;

/// Whether `t` is a usable threshold: a finite number of 8-bit levels in `[0, 255]` (what a
/// model file may record as `nlcl.rain_threshold`).
pub fn is_valid_threshold(t: f64) -> bool {
    (0.0..=255.0).contains(&t)
}

/// Mean `|input - output|` of the top-left `height x width` of two planar RGB tensors of size
/// `3 x th x tw` (values in `[-1, 1]`, the output clamped as it will be written), in 8-bit
/// levels. `None` when the sizes do not fit or a value is not finite.
pub fn tensor_intensity(
    input: &[f32],
    output: &[f32],
    th: usize,
    tw: usize,
    height: usize,
    width: usize,
) -> Option<f64> {
    let plane = th.checked_mul(tw)?;
    if height > th || width > tw || input.len() < 3 * plane || output.len() < 3 * plane {
        return None;
    }
    let mut sum = 0f64;
    for c in 0..3 {
        for y in 0..height {
            let row = c * plane + y * tw;
            let (a, b) = (&input[row..row + width], &output[row..row + width]);
            // Rows in f32 (fast, and exact enough for a mean), the total in f64.
            let mut s = 0f32;
            for (&x, &o) in a.iter().zip(b) {
                s += (x - o.clamp(-1.0, 1.0)).abs();
            }
            sum += f64::from(s);
        }
    }
    let n = (3 * height * width) as f64;
    (sum.is_finite() && n > 0.0).then(|| sum / n * 127.5)
}

/// Mean absolute difference of two byte slices of the same frame layout (the GPU frame path
/// compares its packed input and output frames: for RGB formats that is the intensity above,
/// for YUV formats the same measure on luma and chroma samples).
pub fn bytes_intensity(input: &[u8], output: &[u8]) -> Option<f64> {
    if input.len() != output.len() || input.is_empty() {
        return None;
    }
    let sum: u64 = input
        .iter()
        .zip(output)
        .map(|(&a, &b)| u64::from(a.abs_diff(b)))
        .sum();
    Some(sum as f64 / input.len() as f64)
}

/// What to do with the next frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameAction {
    /// Derain it.
    Derain,
    /// Run the model to measure the rain, but pass the frame through untouched.
    Check,
    /// Pass it through untouched without running the model.
    PassThrough,
}

/// The automatic-bypass decision (see the module documentation).
#[derive(Debug, Clone)]
pub struct RainMeter {
    threshold: f64,
    dry_run: usize,
    check_every: usize,
    below: usize,
    bypassing: bool,
    since_check: usize,
}

impl RainMeter {
    /// Frames below `threshold` (levels) for `dry_run` measurements in a row start the bypass;
    /// while bypassing, every `check_every`-th frame is checked.
    pub fn new(threshold: f64, dry_run: usize, check_every: usize) -> Self {
        RainMeter {
            threshold,
            dry_run: dry_run.max(1),
            check_every: check_every.max(1),
            below: 0,
            bypassing: false,
            since_check: 0,
        }
    }

    /// Whether frames are being passed through.
    pub fn bypassing(&self) -> bool {
        self.bypassing
    }

    /// Decides the next frame.
    pub fn next_frame(&mut self) -> FrameAction {
        if !self.bypassing {
            return FrameAction::Derain;
        }
        self.since_check += 1;
        if self.since_check >= self.check_every {
            self.since_check = 0;
            FrameAction::Check
        } else {
            FrameAction::PassThrough
        }
    }

    /// Takes the intensity measured on a derained or checked frame (in the order the frames
    /// were measured; results of frames decided before a switch still count).
    pub fn observe(&mut self, intensity: f64) {
        if self.bypassing {
            if intensity >= self.threshold * RESUME_FACTOR {
                self.bypassing = false;
                self.below = 0;
            }
        } else if intensity < self.threshold {
            self.below += 1;
            if self.below >= self.dry_run {
                self.bypassing = true;
                // The first check comes a full interval after the switch.
                self.since_check = 0;
            }
        } else {
            self.below = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn intensity_is_the_mean_absolute_difference_in_levels() {
        // 2x2 frame in a 2x3 tensor (a padded column that must not count).
        let (th, tw) = (2, 3);
        let input = vec![0.0f32; 3 * th * tw];
        let mut output = input.clone();
        // One channel value of one pixel 51 levels darker (0.4 in tensor units), one in the
        // padded column (ignored), one beyond the clamp (2.0 counts as 1.0: 127.5 levels).
        output[0] = -0.4;
        output[2] = 5.0;
        output[tw] = 2.0;
        let got = tensor_intensity(&input, &output, th, tw, 2, 2).unwrap();
        let want = (0.4 + 1.0) * 127.5 / 12.0;
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        assert_eq!(tensor_intensity(&input, &output, th, tw, 3, 2), None);
        let mut nan = output.clone();
        nan[1] = f32::NAN;
        assert_eq!(tensor_intensity(&input, &nan, th, tw, 2, 2), None);
        assert_eq!(bytes_intensity(&[0, 10, 20], &[2, 10, 14]), Some(8.0 / 3.0));
        assert_eq!(bytes_intensity(&[0], &[0, 1]), None);
    }

    #[test]
    fn meter_bypasses_after_a_dry_run_checks_and_resumes_with_hysteresis() {
        let mut m = RainMeter::new(1.0, 3, 4);
        // Rain: every frame derained; a dry frame between rainy ones resets the run.
        for i in [5.0, 0.5, 0.5, 2.0, 0.5, 0.5] {
            assert_eq!(m.next_frame(), FrameAction::Derain);
            m.observe(i);
        }
        assert!(!m.bypassing());
        m.observe(0.2);
        assert!(m.bypassing());
        // Bypassing: three pass-throughs, then a check, repeatedly.
        let actions: Vec<FrameAction> = (0..8).map(|_| m.next_frame()).collect();
        use FrameAction::*;
        assert_eq!(
            actions,
            [
                PassThrough,
                PassThrough,
                PassThrough,
                Check,
                PassThrough,
                PassThrough,
                PassThrough,
                Check
            ]
        );
        // A check between the thresholds does not resume (no flicker around the threshold)...
        m.observe(1.2);
        assert!(m.bypassing());
        // ...one well above it does.
        m.observe(1.6);
        assert!(!m.bypassing());
        assert_eq!(m.next_frame(), Derain);
        // And bypassing again needs a full dry run.
        m.observe(0.1);
        m.observe(0.1);
        assert!(!m.bypassing());
        m.observe(0.1);
        assert!(m.bypassing());
    }
}
