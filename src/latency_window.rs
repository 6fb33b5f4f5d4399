//! Latencies over a sliding window, for telemetry (the element's `stats`, the benchmarks).

use std::collections::VecDeque;
use std::time::Duration;

/// Count, mean and percentiles of recent durations; keeps the last `window` samples so memory
/// stays flat on endless streams, while count and mean cover the whole run.
#[derive(Debug, Clone)]
pub struct Latencies {
    window: usize,
    recent: VecDeque<f64>,
    count: u64,
    total_ms: f64,
}

impl Latencies {
    /// Keeps the last `window` samples for percentiles (at least 1).
    pub fn new(window: usize) -> Self {
        Latencies {
            window: window.max(1),
            recent: VecDeque::with_capacity(window.max(1)),
            count: 0,
            total_ms: 0.0,
        }
    }

    /// Records one duration.
    pub fn record(&mut self, d: Duration) {
        let ms = d.as_secs_f64() * 1e3;
        if self.recent.len() == self.window {
            self.recent.pop_front();
        }
        self.recent.push_back(ms);
        self.count += 1;
        self.total_ms += ms;
    }

    /// Samples recorded since creation.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Mean in milliseconds over all samples (0 when empty).
    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.total_ms / self.count as f64
        }
    }

    /// Percentile `p` in [0, 100] of the recent window, in milliseconds (nearest rank; 0 when empty).
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.recent.is_empty() {
            return 0.0;
        }
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        v.sort_by(f64::total_cmp);
        let rank = ((p.clamp(0.0, 100.0) / 100.0) * v.len() as f64).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut l = Latencies::new(100);
        for ms in 1..=100 {
            l.record(Duration::from_millis(ms));
        }
        assert!((l.percentile_ms(50.0) - 50.0).abs() < 1e-9);
        assert!((l.percentile_ms(99.0) - 99.0).abs() < 1e-9);
        assert!((l.mean_ms() - 50.5).abs() < 1e-9);
        assert_eq!(Latencies::new(4).percentile_ms(50.0), 0.0);
    }

    #[test]
    fn window_bounds_memory_but_mean_covers_all() {
        let mut l = Latencies::new(2);
        for ms in [10, 20, 30] {
            l.record(Duration::from_millis(ms));
        }
        assert_eq!(l.count(), 3);
        assert!((l.percentile_ms(0.0) - 20.0).abs() < 1e-9);
        assert!((l.mean_ms() - 20.0).abs() < 1e-9);
    }
}
