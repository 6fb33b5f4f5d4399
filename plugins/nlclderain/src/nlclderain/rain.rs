//! Auto-bypass and `nlcl-rain` messages: what the rain intensity measured on frames decides.

use nlcl::rain_meter::{FrameAction, RainMeter};

use super::settings::{DEFAULT_RAIN_THRESHOLD, FrameSettings};

/// Measurements below the threshold in a row before auto-bypass starts.
const DRY_RUN: usize = 8;

/// Auto-bypass decisions and the intensities behind the next `nlcl-rain` message.
pub(super) struct RainWatch {
    /// Auto-bypass decisions, rebuilt when its properties change.
    meter: RainMeter,
    meter_params: (f64, u32),
    /// Rain intensities since the last `nlcl-rain` message: sum and count.
    rain_sum: f64,
    rain_count: u32,
}

/// What one measurement gave.
pub(super) struct Measured {
    pub intensity: f64,
    /// Whether auto-bypass passes frames through now, and whether this measurement switched it.
    pub bypassing: bool,
    pub switched: bool,
    /// The `nlcl-rain` message due now, if one is.
    pub message: Option<gst::Structure>,
}

impl RainWatch {
    pub fn new() -> Self {
        RainWatch {
            meter: RainMeter::new(DEFAULT_RAIN_THRESHOLD, DRY_RUN, 1),
            meter_params: (f64::NAN, 0),
            rain_sum: 0.0,
            rain_count: 0,
        }
    }

    /// What auto-bypass does with the next frame (always derain when it is off), and whether
    /// this call ended a bypass because auto-bypass was switched off.
    pub fn next_frame(&mut self, settings: &FrameSettings) -> (FrameAction, bool) {
        let params = (settings.rain_threshold, settings.bypass_check_interval);
        if !settings.auto_bypass {
            let ended = self.meter.bypassing();
            if ended {
                self.meter = RainMeter::new(params.0, DRY_RUN, params.1 as usize);
            }
            return (FrameAction::Derain, ended);
        }
        if params != self.meter_params {
            // New settings start a fresh decision (the next frames are derained and measured).
            self.meter = RainMeter::new(params.0, DRY_RUN, params.1 as usize);
            self.meter_params = params;
        }
        (self.meter.next_frame(), false)
    }

    /// Takes the rain intensity measured on a frame.
    pub fn observe(&mut self, intensity: f64, settings: &FrameSettings) -> Measured {
        let was = self.meter.bypassing();
        if settings.auto_bypass {
            self.meter.observe(intensity);
        }
        let bypassing = self.meter.bypassing();
        let mut message = None;
        if settings.message_interval > 0 {
            self.rain_sum += intensity;
            self.rain_count += 1;
            if self.rain_count >= settings.message_interval {
                let mean = self.rain_sum / f64::from(self.rain_count);
                message = Some(
                    gst::Structure::builder("nlcl-rain")
                        .field("intensity", mean)
                        .field("last", intensity)
                        .field("frames", self.rain_count)
                        .field("threshold", settings.rain_threshold)
                        .field("raining", mean >= settings.rain_threshold)
                        .field("auto-bypass-active", bypassing)
                        .build(),
                );
                self.rain_sum = 0.0;
                self.rain_count = 0;
            }
        }
        Measured {
            intensity,
            bypassing,
            switched: was != bypassing,
            message,
        }
    }
}
