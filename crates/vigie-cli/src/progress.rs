//! Progress bars on stderr for long jobs (hidden when stderr is not a terminal).

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use vigie_ml::train::Progress;

/// An indicatif bar per stage.
pub struct Bars {
    bar: Mutex<Option<ProgressBar>>,
}

impl Bars {
    /// No bar yet.
    pub fn new() -> Self {
        Bars { bar: Mutex::new(None) }
    }

    fn with(&self, f: impl FnOnce(&ProgressBar)) {
        if let Ok(guard) = self.bar.lock()
            && let Some(bar) = guard.as_ref()
        {
            f(bar);
        }
    }

    /// Clears the last bar.
    pub fn finish(&self) {
        self.with(ProgressBar::finish_and_clear);
    }
}

impl Progress for Bars {
    fn stage(&self, name: &str, total: u64) {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(
            "{spinner} {msg} [{bar:30}] {pos}/{len} {elapsed_precise} (eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_message(name.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(200));
        if let Ok(mut guard) = self.bar.lock() {
            if let Some(old) = guard.take() {
                old.finish_and_clear();
            }
            *guard = Some(bar);
        }
    }

    fn advance(&self) {
        self.with(|bar| bar.inc(1));
    }

    fn note(&self, text: &str) {
        self.with(|bar| bar.println(format!("  {text}")));
    }
}

/// A spinner with the elapsed time for a job whose steps are not counted
/// (hidden when stderr is not a terminal).
pub struct Spinner {
    bar: ProgressBar,
}

impl Spinner {
    /// Starts spinning with `message`.
    pub fn new(message: &str) -> Self {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template("{spinner} {msg} {elapsed_precise}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner());
        bar.set_style(style);
        bar.set_message(message.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(150));
        Spinner { bar }
    }

    /// Changes the message.
    pub fn set_message(&self, message: &str) {
        self.bar.set_message(message.to_owned());
    }

    /// Prints a line above the spinner.
    pub fn println(&self, line: &str) {
        self.bar.println(line);
    }

    /// Clears the spinner.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
