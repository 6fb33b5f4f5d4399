//! Steadier output on a still camera: the change the model makes to a sample, carried over
//! from frame to frame where the input stands still.
//!
//! Frames are derained one at a time, so the small changes a model makes to a still scene (a
//! level or a few on fine bright texture) differ slightly from frame to frame, and a dry still
//! clip comes out less steady than it went in (README, "Temporal smoothing (still cameras)").
//! [`ChangeSmoother`] keeps, per sample, a running mean of the model's change (input less
//! output) and uses it where the input has not moved since the previous frame; where the input
//! moved by more than a few levels (a streak arrived or left, the camera panned, something
//! passed), the new change is taken as it is, so moving rain is removed as before.

/// Input change, in 8-bit levels, at which the carried change weighs half as much as on a
/// still sample (the default of [`ChangeSmoother::new`]'s `motion_levels`).
pub const DEFAULT_MOTION_LEVELS: f32 = 2.0;

/// Largest carry: at 1 the first frame's change would be kept forever.
pub const MAX_CARRY: f32 = 0.99;

/// Settings [`ChangeSmoother::new`] refuses.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum SmoothingError {
    #[error("temporal smoothing {0}: must be in [0, 0.99]")]
    Carry(f32),
    #[error("motion threshold {0}: must be more than 0 and at most 255 levels")]
    Motion(f32),
}

/// Checks a carry (`temporal-smoothing`) as [`ChangeSmoother::new`] does, for callers that
/// only pass it on (to the element).
pub fn check_carry(carry: f32) -> Result<(), SmoothingError> {
    if (0.0..=MAX_CARRY).contains(&carry) {
        Ok(())
    } else {
        Err(SmoothingError::Carry(carry))
    }
}

/// How far, in levels, the unrounded output of a sample may move from the byte it was given in
/// the previous frame before the byte changes: rounding alone (0.5) turns a drift of a
/// hundredth of a level into a one-level flicker on every sample near a rounding boundary.
const HYSTERESIS: f32 = 0.8;

/// The running state of one stream of frames (one per element, reset on flushes and caps
/// changes).
#[derive(Debug, Clone)]
pub struct ChangeSmoother {
    carry: f32,
    motion_sq: f32,
    /// The previous frame's input and output samples.
    previous_in: Vec<u8>,
    previous_out: Vec<u8>,
    /// The change behind the previous output (input less output, in levels, unrounded).
    change: Vec<f32>,
}

impl ChangeSmoother {
    /// `carry` (0 = off, up to [`MAX_CARRY`]) is how much of the previous frame's change a
    /// still sample keeps: the output's change then follows the model's new change at
    /// `1 - carry` of its rate. `motion_levels` is the input change at which the carry halves
    /// (it falls as `m^2 / (m^2 + d^2)` with the input change `d`): above the camera's noise,
    /// below the contrast of the rain to remove.
    pub fn new(carry: f32, motion_levels: f32) -> Result<Self, SmoothingError> {
        check_carry(carry)?;
        if !(motion_levels > 0.0 && motion_levels <= 255.0) {
            return Err(SmoothingError::Motion(motion_levels));
        }
        Ok(ChangeSmoother {
            carry,
            motion_sq: motion_levels * motion_levels,
            previous_in: Vec::new(),
            previous_out: Vec::new(),
            change: Vec::new(),
        })
    }

    /// Whether it leaves every frame as the model made it.
    pub fn is_off(&self) -> bool {
        self.carry == 0.0
    }

    /// Forgets the previous frame (the element does on flushes, caps changes and frames it
    /// leaves untouched): the next frame is taken as the model made it. Without a reset, a
    /// frame that does not follow the previous one is still safe: its samples moved, so little
    /// is carried.
    pub fn reset(&mut self) {
        self.previous_in.clear();
        self.previous_out.clear();
        self.change.clear();
    }

    /// Smooths a derained frame's bytes in place against the frame's input bytes (the same
    /// layout, any format whose samples are bytes: the change is taken sample by sample, so
    /// padding and alpha, equal on both sides, stay as they are).
    pub fn smooth_bytes(&mut self, input: &[u8], output: &mut [u8]) {
        if self.is_off() {
            return;
        }
        let n = input.len().min(output.len());
        let (input, output) = (&input[..n], &mut output[..n]);
        if self.previous_in.len() != n {
            // First frame, or a new size: nothing to carry. (Refilled in place: the element
            // resets the state often, and its per-frame path allocates nothing once running.)
            self.previous_in.clear();
            self.previous_in.extend_from_slice(input);
            self.previous_out.clear();
            self.previous_out.extend_from_slice(output);
            self.change.clear();
            self.change.extend(
                input
                    .iter()
                    .zip(output.iter())
                    .map(|(&i, &o)| f32::from(i) - f32::from(o)),
            );
            return;
        }
        let state = self
            .previous_in
            .iter_mut()
            .zip(self.previous_out.iter_mut())
            .zip(self.change.iter_mut());
        for ((&i, o), ((prev_in, prev_out), carried)) in
            input.iter().zip(output.iter_mut()).zip(state)
        {
            let now = f32::from(i);
            let moved = now - f32::from(*prev_in);
            let keep = self.carry * self.motion_sq / (self.motion_sq + moved * moved);
            let change = keep * *carried + (1.0 - keep) * (now - f32::from(*o));
            let value = now - change;
            if (value - f32::from(*prev_out)).abs() > HYSTERESIS {
                *prev_out = value.round().clamp(0.0, 255.0) as u8;
            }
            *o = *prev_out;
            *prev_in = i;
            *carried = change;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A model that changes every sample by a noisy amount around 3 levels.
    fn jittery(input: &[u8], frame: usize) -> Vec<u8> {
        input
            .iter()
            .enumerate()
            .map(|(k, &v)| {
                let jitter = ((k * 7 + frame * 13) % 5) as f32 - 2.0;
                (f32::from(v) - 3.0 - jitter).round().clamp(0.0, 255.0) as u8
            })
            .collect()
    }

    fn mean_change(a: &[u8], b: &[u8]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(&x, &y)| (f64::from(x) - f64::from(y)).abs())
            .sum::<f64>()
            / a.len() as f64
    }

    #[test]
    fn a_still_scene_comes_out_steadier_and_moving_streaks_are_removed_as_before() {
        let still = vec![100u8; 64];
        let mut smoother = ChangeSmoother::new(0.9, 2.0).unwrap();
        let (mut raw_change, mut smooth_change) = (0.0, 0.0);
        let (mut last_raw, mut last_smooth) = (None::<Vec<u8>>, None::<Vec<u8>>);
        for frame in 0..30 {
            let raw = jittery(&still, frame);
            let mut smoothed = raw.clone();
            smoother.smooth_bytes(&still, &mut smoothed);
            if let (Some(r), Some(s)) = (&last_raw, &last_smooth)
                && frame > 10
            {
                raw_change += mean_change(r, &raw);
                smooth_change += mean_change(s, &smoothed);
            }
            last_raw = Some(raw);
            last_smooth = Some(smoothed);
        }
        assert!(raw_change > 0.0);
        assert!(
            smooth_change < 0.3 * raw_change,
            "{smooth_change} vs {raw_change}"
        );
        // A streak of 40 levels arrives on one sample: the input moved, so the model's
        // removal is written as it is, not mixed with the old change.
        let mut rainy = still.clone();
        rainy[5] = 140;
        let mut out = still.clone();
        smoother.smooth_bytes(&rainy, &mut out);
        assert!(out[5] <= 101, "streak left at {}", out[5]);
        // And when it leaves, nothing of its removal lingers.
        let mut out = still.clone();
        smoother.smooth_bytes(&still, &mut out);
        assert!(out[5] >= 99, "ghost of the streak: {}", out[5]);
    }

    #[test]
    fn off_resets_and_new_sizes_take_the_frame_as_it_is() {
        let mut off = ChangeSmoother::new(0.0, 2.0).unwrap();
        assert!(off.is_off());
        let mut out = vec![7u8, 9];
        off.smooth_bytes(&[10, 10], &mut out);
        assert_eq!(out, [7, 9]);

        let mut s = ChangeSmoother::new(0.5, 2.0).unwrap();
        let mut first = vec![90u8; 4];
        s.smooth_bytes(&[100; 4], &mut first);
        assert_eq!(first, [90; 4], "the first frame is the model's");
        let mut second = vec![100u8; 4];
        s.smooth_bytes(&[100; 4], &mut second);
        assert_eq!(second, [95; 4], "half the old change of 10 carried");
        let mut resized = vec![100u8; 6];
        s.smooth_bytes(&[100; 6], &mut resized);
        assert_eq!(resized, [100; 6], "a new size is a first frame");
        let mut changed = vec![90u8; 6];
        s.smooth_bytes(&[100; 6], &mut changed);
        assert_eq!(changed, [95; 6], "half the carried change of 0");
        s.reset();
        let mut after_reset = vec![90u8; 6];
        s.smooth_bytes(&[100; 6], &mut after_reset);
        assert_eq!(
            after_reset, [90; 6],
            "after a reset the frame is the model's"
        );
    }

    #[test]
    fn bad_settings_are_named() {
        assert_eq!(
            ChangeSmoother::new(1.0, 2.0).unwrap_err().to_string(),
            "temporal smoothing 1: must be in [0, 0.99]"
        );
        assert!(
            ChangeSmoother::new(0.5, 0.0)
                .unwrap_err()
                .to_string()
                .contains("motion threshold 0")
        );
        assert!(ChangeSmoother::new(f32::NAN, 2.0).is_err());
        assert_eq!(check_carry(1.5), Err(SmoothingError::Carry(1.5)));
        assert_eq!(check_carry(0.9), Ok(()));
        assert!(ChangeSmoother::new(0.5, f32::NAN).is_err());
    }
}
