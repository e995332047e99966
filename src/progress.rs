//! A progress bar on stderr for long simulations: shown only when stderr
//! is a terminal, the run lasts more than a second, and `--quiet` is off.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tiersync_engine::Time;
use tiersync_simnet::world::{Hooks, TraceRow};

/// Shows simulated time reached, per strategy.
pub struct Progress {
    bar: ProgressBar,
    started: Instant,
    shown: bool,
    enabled: bool,
    start: Time,
    /// The group this bar is drawn in, when several runs go side by side.
    multi: Option<MultiProgress>,
    trace: Option<csv::Writer<std::fs::File>>,
    /// The first error writing the trace file, reported after the run.
    pub trace_error: Option<csv::Error>,
}

impl Progress {
    /// A bar for a run from `start` to `end` of `strategy`.
    pub fn new(strategy: &str, start: Time, end: Time, quiet: bool) -> Progress {
        let total = end.saturating_since(start).as_secs();
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
        let style = ProgressStyle::with_template(
            "{prefix:>16} [{bar:30}] {msg} simulated ({elapsed} wall)",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(strategy.to_string());
        Progress {
            bar,
            #[allow(clippy::disallowed_methods)] // The bar's timer is wall time by nature.
            started: Instant::now(),
            shown: false,
            enabled: !quiet && std::io::IsTerminal::is_terminal(&std::io::stderr()),
            start,
            multi: None,
            trace: None,
            trace_error: None,
        }
    }

    /// Draws the bar in `multi`, one line among the bars of runs going on
    /// at the same time.
    pub fn in_group(mut self, multi: &MultiProgress) -> Progress {
        self.bar = multi.add(self.bar);
        self.multi = Some(multi.clone());
        self
    }

    /// Also writes every message that ended (delivered or lost) to `writer`.
    pub fn with_trace(mut self, writer: csv::Writer<std::fs::File>) -> Progress {
        self.trace = Some(writer);
        self
    }

    /// Removes the bar and flushes the trace.
    pub fn finish(mut self) -> Result<(), csv::Error> {
        self.bar.finish_and_clear();
        if let Some(e) = self.trace_error.take() {
            return Err(e);
        }
        if let Some(mut w) = self.trace.take() {
            w.flush()?;
        }
        Ok(())
    }
}

impl Hooks for Progress {
    fn progress(&mut self, now: Time) {
        if !self.enabled {
            return;
        }
        #[allow(clippy::disallowed_methods)] // The bar appears after a second of wall time.
        let waited = self.started.elapsed();
        if !self.shown && waited > Duration::from_secs(1) {
            match &self.multi {
                // The first bar of a group to pass a second shows them all.
                Some(m) if m.is_hidden() => {
                    m.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
                }
                Some(_) => {}
                None => self.bar.set_draw_target(ProgressDrawTarget::stderr_with_hz(4)),
            }
            self.shown = true;
        }
        let secs = now.saturating_since(self.start).as_secs();
        self.bar.set_position(secs);
        self.bar.set_message(format!("{:.1} d", secs as f64 / 86_400.0));
    }

    fn wants_trace(&self) -> bool {
        self.trace.is_some()
    }

    fn delivered(&mut self, row: &TraceRow<'_>) {
        let Some(w) = &mut self.trace else { return };
        if self.trace_error.is_some() {
            return;
        }
        let r = w.write_record([
            row.at.to_string().as_str(),
            &row.from.0.to_string(),
            row.from_site,
            &row.to.0.to_string(),
            row.to_site,
            &row.wan_links,
            row.kind,
            &row.bytes.to_string(),
            &row.reverse_bytes.to_string(),
            &row.wan_bytes.to_string(),
            if row.delivered { "true" } else { "false" },
            row.outcome,
            if row.copy { "true" } else { "false" },
        ]);
        if let Err(e) = r {
            self.trace_error = Some(e);
        }
    }
}
