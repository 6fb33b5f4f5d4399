//! The loss records of a run: the losses of each step ([`Losses`], in [`LOSS_NAMES`] order)
//! and the history file `losses.csv` (`step,d,gan,...` rows) that a resumed run reads back.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

/// Names of the logged losses, in the order of [`Losses::values`].
pub const LOSS_NAMES: [&str; 11] = [
    "d",
    "gan",
    "location",
    "layer",
    "rec",
    "fid",
    "idt",
    "colour",
    "pair",
    "pair_rain",
    "total",
];

/// Position of a loss in [`LOSS_NAMES`] (and [`Losses::values`]).
pub(crate) fn loss_index(name: &str) -> usize {
    LOSS_NAMES
        .iter()
        .position(|n| *n == name)
        .unwrap_or_else(|| unreachable!("{name} is not in LOSS_NAMES"))
}

/// The losses of one step (0 for disabled terms).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Losses {
    /// Values in [`LOSS_NAMES`] order.
    pub values: [f64; LOSS_NAMES.len()],
}

impl Losses {
    /// `name value` pairs on one line (progress bar, log lines, errors).
    pub fn summary(&self) -> String {
        let mut s = String::new();
        for (n, v) in LOSS_NAMES.iter().zip(self.values) {
            let _ = write!(s, "{n} {v:.3} ");
        }
        s.trim_end().to_string()
    }
}

/// Writes `step,d,gan,...` rows.
pub fn write_history(path: &Path, history: &[(u64, Losses)]) -> anyhow::Result<()> {
    let mut s = format!("step,{}\n", LOSS_NAMES.join(","));
    for (step, l) in history {
        s.push_str(&step.to_string());
        for v in l.values {
            s.push_str(&format!(",{v:.6}"));
        }
        s.push('\n');
    }
    std::fs::write(path, s).with_context(|| format!("writing {}", path.display()))
}

/// Reads a history written by [`write_history`], keeping rows up to `max_step` (a resumed run
/// drops the rows logged after its checkpoint). Missing or malformed files give what parses.
pub fn read_history(path: &Path, max_step: u64) -> Vec<(u64, Losses)> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Vec::new();
    };
    let mut lines = text.lines();
    // Columns by header name, so histories written before a loss was added still load (the
    // missing loss reads as 0).
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let columns: Vec<Option<usize>> = header
        .split(',')
        .skip(1)
        .map(|name| LOSS_NAMES.iter().position(|n| *n == name))
        .collect();
    lines
        .filter_map(|line| {
            let mut it = line.split(',');
            let step: u64 = it.next()?.parse().ok()?;
            let mut values = [0f64; LOSS_NAMES.len()];
            for column in &columns {
                let v: f64 = it.next()?.parse().ok()?;
                if let Some(i) = column {
                    values[*i] = v;
                }
            }
            (step <= max_step).then_some((step, Losses { values }))
        })
        .collect()
}

/// The history as plain series for [`crate::plot::loss_curves`]: the steps, and one series per
/// loss in [`LOSS_NAMES`] order.
pub fn series(history: &[(u64, Losses)]) -> (Vec<u64>, Vec<Vec<f64>>) {
    let steps = history.iter().map(|h| h.0).collect();
    let series = (0..LOSS_NAMES.len())
        .map(|i| history.iter().map(|h| h.1.values[i]).collect())
        .collect();
    (steps, series)
}
