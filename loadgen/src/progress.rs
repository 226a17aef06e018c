//! Live progress on stderr: an indicatif bar with the current rate and p99 when stderr is a
//! terminal, one plain line per interval otherwise, nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::IntervalSample;

/// Where progress goes.
#[derive(Debug)]
pub enum Progress {
    /// No output.
    Quiet,
    /// One line per interval.
    Lines {
        /// Printed before each line (target and round).
        label: String,
    },
    /// A terminal bar.
    Bar {
        /// The bar of the current phase (None between phases).
        bar: Option<ProgressBar>,
        /// Shown in front of the bar.
        label: String,
    },
}

impl Progress {
    /// Picks bar, lines or nothing for this process's stderr.
    pub fn new(quiet: bool) -> Self {
        if quiet {
            Self::Quiet
        } else if std::io::stderr().is_terminal() {
            Self::Bar {
                bar: None,
                label: String::new(),
            }
        } else {
            Self::Lines {
                label: String::new(),
            }
        }
    }

    /// Starts a new phase, e.g. `"http://a/ round 1/4"`.
    pub fn begin(&mut self, what: &str, length: Duration) {
        match self {
            Self::Quiet => {}
            Self::Lines { label } => {
                *label = what.to_owned();
                eprintln!("{what}: running for {:.1} s", length.as_secs_f64());
            }
            Self::Bar { bar, label } => {
                *label = what.to_owned();
                let b = ProgressBar::new(length.as_millis().try_into().unwrap_or(u64::MAX));
                let style =
                    ProgressStyle::with_template("{prefix} [{bar:30}] {elapsed}/{duration} {msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_bar())
                        .progress_chars("=> ");
                b.set_style(style);
                b.set_prefix(what.to_owned());
                *bar = Some(b);
            }
        }
    }

    /// Shows one finished interval.
    pub fn interval(&mut self, s: &IntervalSample, total: Duration) {
        let rate = s.completed as f64 / s.length.as_secs_f64();
        let p99 = s.corrected.value_at_quantile(0.99) as f64 / 1000.0;
        let phase = if s.warmup { " (warm-up)" } else { "" };
        match self {
            Self::Quiet => {}
            Self::Lines { label } => eprintln!(
                "{label}: {:6.1} s  {rate:10.0} req/s  p99 {p99:9.3} ms  errors {}{phase}",
                (s.start + s.length).min(total).as_secs_f64(),
                s.errors
            ),
            Self::Bar { bar: Some(b), .. } => {
                b.set_position(
                    (s.start + s.length)
                        .as_millis()
                        .try_into()
                        .unwrap_or(u64::MAX),
                );
                b.set_message(format!(
                    "{rate:.0} req/s  p99 {p99:.3} ms  errors {}{phase}",
                    s.errors
                ));
            }
            Self::Bar { bar: None, .. } => {}
        }
    }

    /// Ends the current phase.
    pub fn end(&mut self) {
        if let Self::Bar { bar, .. } = self {
            if let Some(b) = bar.take() {
                b.finish_and_clear();
            }
        }
    }

    /// Prints a warning so it cannot be missed (also when `--quiet`).
    pub fn warn(&mut self, message: &str) {
        match self {
            Self::Bar { bar: Some(b), .. } => b.suspend(|| eprintln!("WARNING: {message}")),
            _ => eprintln!("WARNING: {message}"),
        }
    }
}
