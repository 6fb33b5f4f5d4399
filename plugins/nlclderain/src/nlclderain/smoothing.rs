//! `temporal-smoothing`: the engine's [`ChangeSmoother`] on the frames as they are written
//! back, one stream's state, forgotten whenever frames stop following each other (a flush, new
//! caps, a frame left untouched).

use nlcl::output_view::OutputView;
use nlcl::temporal::ChangeSmoother;

use super::settings::FrameSettings;

pub(super) struct Smoothing {
    smoother: Option<ChangeSmoother>,
    /// The settings `smoother` was made with.
    params: (f32, f32),
    /// The view of the previous frame: the CPU path smooths what the view wrote, so a new view
    /// starts afresh.
    view: OutputView,
    /// The input frame's bytes, kept while the CPU path writes the result over them.
    input: Vec<u8>,
}

impl Smoothing {
    pub fn new() -> Self {
        Smoothing {
            smoother: None,
            params: (0.0, 0.0),
            view: OutputView::Clean,
            input: Vec::new(),
        }
    }

    /// The smoother for the next frame, or `None` (state forgotten) when smoothing is off or
    /// the frame shows the rain layer, which is not a picture of the scene.
    pub fn for_frame(&mut self, settings: &FrameSettings) -> Option<&mut ChangeSmoother> {
        if settings.temporal != self.params {
            self.params = settings.temporal;
            // The property's range is the engine's, so this is not expected to fail; if it
            // does, smoothing stays off rather than stopping the stream.
            self.smoother = ChangeSmoother::new(settings.temporal.0, settings.temporal.1)
                .ok()
                .filter(|s| !s.is_off());
        }
        if settings.output != self.view {
            self.view = settings.output;
            self.reset();
        }
        if settings.output == OutputView::Rain {
            return None;
        }
        self.smoother.as_mut()
    }

    /// Keeps the bytes of `buffer` (the input frame) for [`Smoothing::smooth_buffer`].
    pub fn keep_input(&mut self, buffer: &gst::BufferRef) -> Result<(), gst::FlowError> {
        let map = buffer.map_readable().map_err(|_| gst::FlowError::Error)?;
        self.input.clear();
        self.input.extend_from_slice(&map);
        Ok(())
    }

    /// Smooths the derained frame written into `buffer` against the kept input bytes.
    pub fn smooth_buffer(&mut self, buffer: &mut gst::Buffer) -> Result<(), gst::FlowError> {
        let Some(smoother) = self.smoother.as_mut() else {
            return Ok(());
        };
        let mut map = buffer
            .make_mut()
            .map_writable()
            .map_err(|_| gst::FlowError::Error)?;
        smoother.smooth_bytes(&self.input, &mut map);
        Ok(())
    }

    /// Forgets the previous frame: the next one is taken as the model made it.
    pub fn reset(&mut self) {
        if let Some(s) = self.smoother.as_mut() {
            s.reset();
        }
    }
}
