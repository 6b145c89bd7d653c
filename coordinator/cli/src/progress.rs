//! Progress on long steps: spinners when stderr is a terminal, plain lines when it is not.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// A spinner for one step; hidden when stderr is not a terminal (CI, pipes).
pub fn step(message: &str) -> ProgressBar {
    if !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
    );
    bar.set_message(message.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    bar
}

/// A status that changes while something runs: a spinner on a terminal, else every new value
/// printed once as a plain line, so CI logs and pipes see the progress too.
pub struct Status {
    bar: ProgressBar,
    plain: bool,
    last: String,
}

impl Status {
    pub fn new(message: &str) -> Self {
        Status {
            bar: step(message),
            plain: !std::io::stderr().is_terminal(),
            last: String::new(),
        }
    }

    pub fn set(&mut self, message: String) {
        if message == self.last {
            return;
        }
        if self.plain {
            eprintln!("{message}");
        } else {
            self.bar.set_message(message.clone());
        }
        self.last = message;
    }

    pub fn finish(self) {
        self.bar.finish_and_clear();
    }
}
