//! The wall clock, read in one place.
//!
//! The engine never reads a clock: the driver passes `now`. Here `now` is
//! the wall clock, optionally running `speedup` times faster than real time
//! from the moment the [`Clock`] was made (for `tiersync replay`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tiersync_engine::Time;
use tokio::time::Instant;

/// Reads the operating system's clocks: UTC wall time, and the monotonic
/// instant used for sleeping.
///
/// This is the one function of the daemons that reads a clock; everything
/// else derives time from it, so that a replay can compress time by
/// changing [`Clock`] alone.
#[allow(clippy::disallowed_methods)] // The daemons run on real time, by definition.
fn read_os_clocks() -> (Time, Instant) {
    let wall = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let ns = i64::try_from(wall.as_nanos()).unwrap_or(i64::MAX);
    (Time(ns), Instant::now())
}

/// The engine's time for one process.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Time,
    started: Instant,
    speedup: u32,
}

impl Clock {
    /// Real time.
    pub fn wall() -> Clock {
        Clock::compressed(None, 1)
    }

    /// Time starting at `origin` (the wall clock when `None`) and running
    /// `speedup` times faster than real time.
    pub fn compressed(origin: Option<Time>, speedup: u32) -> Clock {
        let (wall, started) = read_os_clocks();
        Clock { origin: origin.unwrap_or(wall), started, speedup: speedup.max(1) }
    }

    /// Time frozen at `origin` until the monotonic instant `starts`, then
    /// running `speedup` times faster than real time: a replay starts its
    /// nodes and lets them connect before the scenario's first instant.
    pub fn starting_at(origin: Time, speedup: u32, starts: Instant) -> Clock {
        Clock { origin, started: starts, speedup: speedup.max(1) }
    }

    /// The engine's `now`.
    pub fn now(&self) -> Time {
        let (_, instant) = read_os_clocks();
        self.engine_time_at(instant)
    }

    /// How many times faster than real time this clock runs.
    pub fn speedup(&self) -> u32 {
        self.speedup
    }

    /// The engine time at a monotonic instant.
    fn engine_time_at(&self, at: Instant) -> Time {
        let real = at.saturating_duration_since(self.started);
        self.origin + real.saturating_mul(self.speedup)
    }

    /// The monotonic instant at which the engine time `at` arrives.
    pub fn instant_at(&self, at: Time) -> Instant {
        let engine = at.saturating_since(self.origin);
        let real = engine / self.speedup;
        // Instants far in the future (a timer a year away) are capped at a
        // day: the loop wakes, finds nothing due, and sleeps again.
        self.started + real.min(self.real_since_start() + Duration::from_secs(86_400))
    }

    /// The engine time the clock started from.
    pub fn origin(&self) -> Time {
        self.origin
    }

    fn real_since_start(&self) -> Duration {
        let (_, now) = read_os_clocks();
        now.saturating_duration_since(self.started)
    }

    /// An engine-time span as real time.
    pub fn real(&self, engine: Duration) -> Duration {
        engine / self.speedup
    }
}

/// The monotonic clock, for deadlines of the transport (real time).
pub fn monotonic() -> Instant {
    read_os_clocks().1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clock_starting_later_stays_at_its_origin_until_then() {
        let origin = Time(1_000_000_000_000);
        let later = monotonic() + Duration::from_secs(3600);
        let c = Clock::starting_at(origin, 3600, later);
        assert_eq!(c.now(), origin);
        // One engine hour after the origin is one real second after the start.
        let hour = origin + Duration::from_secs(3600);
        assert_eq!(c.instant_at(hour), later + Duration::from_secs(1));
        assert_eq!(c.real(Duration::from_secs(7200)), Duration::from_secs(2));
    }
}
