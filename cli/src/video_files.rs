//! Video files as `nlcl derain` sees them, without GStreamer: which inputs are videos, where
//! their outputs go, and the settings and results of deraining one (the deraining itself is
//! [`crate::video`], built with the `gstreamer` feature).

use std::path::{Path, PathBuf};

use nlcl::family::ModelSource;
use nlcl::runtime::Provider;

/// File extensions taken for video (case-insensitive).
pub const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mkv", "mov", "avi", "ts", "mts", "m2ts", "webm", "mpg", "mpeg", "flv", "3gp",
];

/// Output names `-o` may give a single video (the container is always MP4).
const MP4_EXTENSIONS: &[&str] = &["mp4", "m4v"];

/// x264 speed presets, fastest first (`--preset`).
pub const PRESETS: &[&str] = &[
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
];

fn has_extension(p: &Path, list: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| list.contains(&e.to_ascii_lowercase().as_str()))
}

/// Whether a file is taken for a video (by its extension).
pub fn is_video(p: &Path) -> bool {
    has_extension(p, VIDEO_EXTENSIONS)
}

/// Whether a path names an MP4 file (`.mp4`, `.m4v`).
pub fn is_mp4_name(p: &Path) -> bool {
    has_extension(p, MP4_EXTENSIONS)
}

/// Where the comparison video of `dst` goes: `NAME-side-by-side.mp4` next to it.
pub fn side_by_side_path(dst: &Path) -> PathBuf {
    let mut name = dst.with_extension("").into_os_string();
    name.push("-side-by-side.mp4");
    PathBuf::from(name)
}

/// How every video of a run is derained and encoded.
// Only the video path (`gstreamer` feature) makes these.
#[cfg_attr(not(feature = "gstreamer"), allow(dead_code))]
pub struct Settings {
    pub model: ModelSource,
    pub provider: Provider,
    pub device_id: i32,
    /// Intra-op threads (already bounded).
    pub threads: u32,
    /// x264 constant rate factor (0-50; `pass=qual` with `quantizer`).
    pub crf: u32,
    /// x264 speed preset (one of [`PRESETS`]).
    pub preset: String,
    /// The element's `temporal-smoothing` (checked against the engine's range).
    pub temporal_smoothing: f64,
}

/// What became of one video.
// Only the video path (`gstreamer` feature) makes these.
#[cfg_attr(not(feature = "gstreamer"), allow(dead_code))]
pub struct Report {
    /// Frames derained (and written).
    pub frames: u64,
    pub seconds: f64,
    /// Where the network really ran (`cpu`, `cuda`, `tensorrt`).
    pub provider: String,
    /// One line per stream besides the derained video: passed through, re-encoded or dropped.
    pub notes: Vec<String>,
}

// Only the video path (`gstreamer` feature) makes these.
#[cfg_attr(not(feature = "gstreamer"), allow(dead_code))]
pub enum Outcome {
    /// The whole file was derained.
    Done(Report),
    /// Ctrl-C: the file was finished early and is playable.
    Interrupted(Report),
    /// Ctrl-C twice, or before the first frame: nothing was kept.
    Aborted,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn videos_are_told_by_extension() {
        assert!(is_video(Path::new("a/b.MP4")));
        assert!(is_video(Path::new("clip.mkv")));
        assert!(!is_video(Path::new("photo.png")));
        assert!(!is_video(Path::new("noext")));
        assert!(is_mp4_name(Path::new("out.m4v")));
        assert!(!is_mp4_name(Path::new("out.mkv")));
        assert_eq!(
            side_by_side_path(Path::new("o/a.mp4")),
            Path::new("o/a-side-by-side.mp4")
        );
    }
}
