//! A progress bar on stderr for long simulations: shown only when stderr
//! is a terminal, the run lasts more than a second, and `--quiet` is off.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tiersync_engine::Time;
use tiersync_simnet::world::{Hooks, TraceRow};

/// How much wall time a run takes before its bar appears: a shorter run
/// ends without drawing one.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// Whether a run may draw a bar at all: only when stderr is a terminal and
/// `--quiet` is off, so a pipe, a log file or a batch job never gets one.
fn wanted(stderr_is_terminal: bool, quiet: bool) -> bool {
    stderr_is_terminal && !quiet
}

/// Whether a wanted bar appears, `waited` wall time into the run: only
/// once more than [`SHOW_AFTER`] has passed.
fn due(waited: Duration) -> bool {
    waited > SHOW_AFTER
}

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
            enabled: wanted(std::io::IsTerminal::is_terminal(&std::io::stderr()), quiet),
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
        if !self.shown && due(waited) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A bar for a day's run starting at the Unix epoch.
    fn bar(quiet: bool) -> Progress {
        Progress::new("tiered", Time::EPOCH, Time::from_secs(86_400), quiet)
    }

    /// Moves a bar's start `by` into the past, as if the run had gone on
    /// that long.
    fn backdate(p: &mut Progress, by: Duration) {
        p.started = p.started.checked_sub(by).expect("the clock goes back that far");
    }

    /// Only a terminal without `--quiet` may get a bar: a pipe or a file
    /// never does, and `--quiet` turns it off on a terminal too.
    #[test]
    fn a_bar_is_wanted_only_on_a_terminal_without_quiet() {
        assert!(wanted(true, false));
        assert!(!wanted(true, true), "--quiet on a terminal");
        assert!(!wanted(false, false), "stderr is a pipe or a file");
        assert!(!wanted(false, true));
    }

    /// A bar appears only once a run has lasted more than a second, not
    /// at a second exactly.
    #[test]
    fn a_bar_is_due_only_after_more_than_a_second() {
        assert!(!due(Duration::ZERO));
        assert!(!due(Duration::from_millis(999)));
        assert!(!due(Duration::from_secs(1)), "a second exactly is not over a second");
        assert!(due(Duration::from_secs(1) + Duration::from_nanos(1)));
        assert!(due(Duration::from_secs(60)));
    }

    /// `Progress::new` asks the real stderr whether it is a terminal: a
    /// bar is enabled exactly when stderr is one, and never with `quiet`.
    #[test]
    fn a_new_bar_follows_stderr_and_quiet() {
        let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
        assert_eq!(bar(false).enabled, terminal);
        assert!(!bar(true).enabled);
    }

    /// A quiet bar stays hidden however long the run goes on.
    #[test]
    fn a_quiet_bar_never_shows() {
        let mut p = bar(true);
        backdate(&mut p, Duration::from_secs(5));
        p.progress(Time::from_secs(3600));
        assert!(!p.shown);
        assert!(p.bar.is_hidden());
        p.finish().expect("no trace to flush");
    }

    /// An enabled bar (stderr a terminal, no `--quiet`) stays hidden in a
    /// run's first second and appears at the first progress after it.
    #[test]
    fn an_enabled_bar_shows_only_after_a_second() {
        let mut p = bar(false);
        p.enabled = true;
        p.progress(Time::from_secs(60));
        assert!(!p.shown, "shown within the first second");
        backdate(&mut p, Duration::from_secs(2));
        p.progress(Time::from_secs(120));
        assert!(p.shown, "not shown after two seconds");
        assert_eq!(p.bar.position(), 120, "it shows simulated seconds since the start");
        p.finish().expect("no trace to flush");
    }
}
