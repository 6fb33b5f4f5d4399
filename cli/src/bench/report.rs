//! The report: the machine it ran on, the claims checked, the tables printed.

use super::{BenchArgs, Claim, Machine, Out, Report, TARGET_A, TARGET_B, mb};

pub(super) fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_once(':'))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    Machine {
        cpu: field("model name"),
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        avx512: field("flags").split_whitespace().any(|f| f == "avx512f"),
        load_average: std::fs::read_to_string("/proc/loadavg")
            .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
            .unwrap_or_default(),
    }
}

pub(super) fn claims(report: &mut Report, args: &BenchArgs) {
    let size = args.sizes[0];
    if let Some(r) = report.a.iter().find(|r| r.size == size) {
        report.claims.push(Claim {
            what: format!("(a) element / bare session, {size} {}", r.format),
            value: r.ratio,
            target: TARGET_A,
            met: r.ratio >= TARGET_A,
        });
    }
    if let Some(r) = report
        .b
        .iter()
        .flat_map(|b| &b.rows)
        .find(|r| r.size == size)
    {
        report.claims.push(Claim {
            what: format!("(b) element pipeline / Python loop, {size}"),
            value: r.ratio,
            target: TARGET_B,
            met: r.ratio >= TARGET_B,
        });
    }
}

pub(super) fn print_report(out: &Out, r: &Report, args: &BenchArgs) {
    if !r.a.is_empty() {
        out.say(format!(
            "\n(a) element in a pipeline (videotestsrc ! queue ! nlclderain threads={} ! fakesink) vs bare \
             session (Model::run on a pre-converted tensor), median of {} rounds",
            r.threads, r.rounds
        ));
        out.say(format!(
            "{:<10} {:<10} {:>11} {:>11} {:>7}  {:>10} {:>10}  {:>10} {:>10}",
            "size",
            "format",
            "element fps",
            "bare fps",
            "ratio",
            "el p50 ms",
            "bare p50",
            "el peakMiB",
            "bare peak"
        ));
        for a in &r.a {
            out.say(format!(
                "{:<10} {:<10} {:>11.2} {:>11.2} {:>7.3}  {:>10.2} {:>10.2}  {:>10.1} {:>10.1}",
                a.size.to_string(),
                a.format,
                a.element_fps,
                a.bare_fps,
                a.ratio,
                a.element_latency_p50_ms,
                a.bare_latency_p50_ms,
                a.element_peak_rss_mb,
                a.bare_peak_rss_mb
            ));
        }
    }
    if let Some(b) = &r.b {
        out.say(
            "\n(b) file to file: element pipeline vs the Python loop, same clip, model and threads",
        );
        match &b.skipped {
            Some(reason) => out.say(format!("skipped: {reason}")),
            None => {
                out.say(format!("  element: {}", b.element_pipeline));
                out.say(format!("  python:  {}", b.python_loop));
                out.say(format!(
                    "{:<10} {:>11} {:>10} {:>7}  {:>10} {:>10}  {:>10} {:>10}",
                    "size",
                    "element fps",
                    "python fps",
                    "ratio",
                    "el peakMiB",
                    "py peakMiB",
                    "el out KiB",
                    "py out KiB"
                ));
                for row in &b.rows {
                    out.say(format!(
                        "{:<10} {:>11.2} {:>10.2} {:>7.3}  {:>10.1} {:>10.1}  {:>10.0} {:>10.0}",
                        row.size.to_string(),
                        row.element_fps,
                        row.python_fps,
                        row.ratio,
                        row.element_peak_rss_mb,
                        row.python_peak_rss_mb,
                        row.element_output_kb,
                        row.python_output_kb
                    ));
                }
            }
        }
    }
    if !r.c.is_empty() {
        out.say(
            "\n(c) conversion vs a memory copy of the tensor's bytes (ratio = conversion time / copy time; fastest of 30 interleaved ~2 ms batches)",
        );
        out.say(format!(
            "{:<10} {:<6} {:>12} {:>12} {:>12} {:>12} {:>9} {:>9}",
            "size",
            "format",
            "to tensor us",
            "to frame us",
            "copy frm us",
            "copy tns us",
            "to t/cpy",
            "to f/cpy"
        ));
        for c in &r.c {
            out.say(format!(
                "{:<10} {:<6} {:>12.1} {:>12.1} {:>12.1} {:>12.1} {:>9.2} {:>9.2}",
                c.size.to_string(),
                c.format,
                c.to_tensor_ns / 1e3,
                c.to_frame_ns / 1e3,
                c.copy_frame_bytes_ns / 1e3,
                c.copy_tensor_bytes_ns / 1e3,
                c.to_tensor_vs_copy,
                c.to_frame_vs_copy
            ));
        }
    }
    if !r.d.is_empty() {
        out.say(format!(
            "\n(d) bare sessions side by side (Model::run on a pre-converted tensor), median of {} rounds; \
             ratio = the other model's fps / this model's",
            r.rounds
        ));
        out.say(format!(
            "{:<10} {:>10} {:>10} {:>7}  other model",
            "size", "model fps", "other fps", "ratio"
        ));
        for d in &r.d {
            out.say(format!(
                "{:<10} {:>10.2} {:>10.2} {:>7.3}  {}",
                d.size.to_string(),
                d.model_fps,
                d.versus_fps,
                d.ratio,
                d.versus
            ));
        }
    }
    if let Some(s) = &r.soak {
        out.say(format!(
            "\nsoak: {} frames of {} I420 through nlclderain ({:.1} fps), resident memory every {} frames (MiB):",
            s.frames, s.size, s.fps, args.soak_every
        ));
        let line: Vec<String> = s
            .samples
            .iter()
            .map(|(f, kb)| format!("{f}:{:.1}", mb(*kb)))
            .collect();
        for chunk in line.chunks(8) {
            out.say(format!("  {}", chunk.join("  ")));
        }
        out.say(format!(
            "  growth from frame {} to {}: {:+.2} MiB (bound {:.1} MiB: 5% of the baseline or 20 MiB, \
             whichever is smaller): {}",
            s.baseline_frames,
            s.frames,
            s.growth_kb as f64 / 1024.0,
            s.bound_kb as f64 / 1024.0,
            if s.pass { "flat" } else { "GROWING" }
        ));
        if s.frames < 10_000 {
            out.say("  (shorter than the 10,000 frames of the committed long-run check)");
        }
    }
    if !r.claims.is_empty() {
        out.say("\nclaims:");
        for c in &r.claims {
            out.say(format!(
                "  {}: {:.3} (target >= {}): {}",
                c.what,
                c.value,
                c.target,
                if c.met { "met" } else { "MISSED" }
            ));
        }
    }
}
