//! YUV colorimetry: the element reads and writes a YUV stream in its own matrix and range, so an
//! identity model gives back what GStreamer's `videoconvert` alone gives, for full and limited
//! range and the BT.601, BT.709 and BT.2020 matrices.

mod common;

use common::*;
use gst::prelude::*;

/// Colorimetries under test: (caps string, what it is).
const COLORIMETRIES: [(&str, &str); 6] = [
    ("1:4:0:0", "BT.601 full range"),
    ("2:4:0:0", "BT.601 limited range"),
    ("1:3:5:1", "BT.709 full range"),
    ("bt709", "BT.709 limited range"),
    ("1:6:0:0", "BT.2020 full range"),
    ("bt2020", "BT.2020 limited range"),
];

/// Solid colours of `videotestsrc pattern=solid-color` (ARGB) that the checks use: black,
/// white, a dark grey (where a wrong range shows most), primaries and a skin tone.
const COLOURS: [u32; 7] = [
    0xff00_0000,
    0xffff_ffff,
    0xff14_1414,
    0xffff_0000,
    0xff00_ff00,
    0xff00_00ff,
    0xffc8_8c64,
];

/// One 32x16 frame of `colour`, converted by `videoconvert` to `format` with `colorimetry`,
/// optionally through `nlclderain` with the identity model, and back to RGB.
fn rgb_through(
    model: Option<&std::path::Path>,
    format: &str,
    colorimetry: &str,
    colour: u32,
) -> Result<Vec<u8>, String> {
    let element = model
        .map(|m| format!("! nlclderain model-file=\"{}\" ", m.display()))
        .unwrap_or_default();
    let p = pipeline(&format!(
        "videotestsrc num-buffers=1 pattern=solid-color foreground-color={colour} \
         ! video/x-raw,format=RGB,width=32,height=16 ! videoconvert \
         ! video/x-raw,format={format},colorimetry={colorimetry} {element}\
         ! videoconvert ! video/x-raw,format=RGB ! appsink name=out sync=false"
    ));
    let sink = p
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample();
    let bus = p.bus().unwrap();
    let error = bus
        .pop_filtered(&[gst::MessageType::Error])
        .and_then(|m| match m.view() {
            gst::MessageView::Error(e) => Some(format!("{} ({:?})", e.error(), e.debug())),
            _ => None,
        });
    p.set_state(gst::State::Null).unwrap();
    if let Some(e) = error {
        return Err(e);
    }
    let sample = sample.map_err(|_| "no frame".to_string())?;
    let buffer = sample.buffer().ok_or("no buffer")?;
    let map = buffer.map_readable().map_err(|e| e.to_string())?;
    // RGB rows of 32 pixels are 96 bytes, already 4-byte aligned: the buffer is tight.
    Ok(map.as_slice()[..32 * 16 * 3].to_vec())
}

#[test]
fn identity_model_matches_videoconvert_for_every_range_and_matrix() {
    init();
    let dir = temp_dir();
    let model = write_identity_model(dir.path(), SMALL);
    for format in ["I420", "NV12"] {
        for (colorimetry, what) in COLORIMETRIES {
            for colour in COLOURS {
                let reference = rgb_through(None, format, colorimetry, colour).unwrap();
                let derained = rgb_through(Some(&model), format, colorimetry, colour)
                    .unwrap_or_else(|e| panic!("{format} {what}: {e}"));
                let worst = reference
                    .iter()
                    .zip(&derained)
                    .map(|(a, b)| a.abs_diff(*b))
                    .max()
                    .unwrap();
                // Both paths round to 8 bits twice (videoconvert's fixed point, the element's
                // float); saturated primaries differ by up to 2 levels. A range or matrix mix-up
                // costs 3 to 16 levels on these colours.
                assert!(
                    worst <= 2,
                    "{format} {what}, colour {colour:08x}: differs from videoconvert by {worst} \
                     levels (videoconvert {:?}, nlclderain {:?})",
                    &reference[..3],
                    &derained[..3]
                );
            }
        }
    }
}

#[test]
fn full_range_black_and_white_stay_black_and_white() {
    init();
    let dir = temp_dir();
    let model = write_identity_model(dir.path(), SMALL);
    for (colour, want) in [(0xff00_0000u32, 0u8), (0xffff_ffff, 255)] {
        let rgb = rgb_through(Some(&model), "I420", "1:4:0:0", colour).unwrap();
        assert!(
            rgb.iter().all(|v| v.abs_diff(want) <= 1),
            "full-range {want}: got {:?}",
            &rgb[..6]
        );
    }
}
