//! Time as the engine sees it: a UTC instant passed in by the driver.
//!
//! The engine never reads a clock. Every `handle_*` call receives `now`, and
//! every timer the engine asks for is an absolute [`Time`]. The simulator
//! passes virtual time; the TCP runtime passes the wall clock.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A UTC instant: nanoseconds since the Unix epoch.
///
/// Nanoseconds because link serialisation times at gigabit speeds are a few
/// nanoseconds per byte; an `i64` still spans about 292 years either side of
/// 1970.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
pub struct Time(pub i64);

impl Time {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: Time = Time(0);
    /// The largest representable instant; used as "never".
    pub const MAX: Time = Time(i64::MAX);

    /// Builds a time from whole seconds since the epoch.
    pub const fn from_secs(secs: i64) -> Time {
        Time(secs * 1_000_000_000)
    }

    /// Nanoseconds since the epoch.
    pub const fn as_nanos(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch (floored).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1_000_000_000)
    }

    /// Converts to a jiff timestamp, for time-zone arithmetic.
    pub fn to_jiff(self) -> jiff::Timestamp {
        jiff::Timestamp::from_nanosecond(self.0 as i128).unwrap_or(jiff::Timestamp::MAX)
    }

    /// Converts from a jiff timestamp, saturating outside the `i64` range.
    pub fn from_jiff(ts: jiff::Timestamp) -> Time {
        let ns = ts.as_nanosecond();
        Time(ns.clamp(i64::MIN as i128, i64::MAX as i128) as i64)
    }

    /// The time elapsed since `earlier`, or zero if `earlier` is later.
    ///
    /// Exact for any two instants: the gap between the extremes of `i64`
    /// nanoseconds does not fit an `i64` but always fits the `u64` of a
    /// [`Duration`], so the difference is taken unsigned.
    pub fn saturating_since(self, earlier: Time) -> Duration {
        if self.0 <= earlier.0 {
            Duration::ZERO
        } else {
            Duration::from_nanos(self.0.abs_diff(earlier.0))
        }
    }
}

impl Add<Duration> for Time {
    type Output = Time;
    fn add(self, d: Duration) -> Time {
        let ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Time(self.0.saturating_add(ns))
    }
}

impl AddAssign<Duration> for Time {
    fn add_assign(&mut self, d: Duration) {
        *self = *self + d;
    }
}

impl Sub<Duration> for Time {
    type Output = Time;
    fn sub(self, d: Duration) -> Time {
        let ns = i64::try_from(d.as_nanos()).unwrap_or(i64::MAX);
        Time(self.0.saturating_sub(ns))
    }
}

impl fmt::Display for Time {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_jiff())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jiff_round_trip_keeps_nanoseconds() {
        let t = Time(1_772_409_600_123_456_789);
        assert_eq!(Time::from_jiff(t.to_jiff()), t);
        assert_eq!(t.to_jiff().to_string(), "2026-03-02T00:00:00.123456789Z");
    }

    #[test]
    fn saturating_since_never_goes_negative() {
        let a = Time::from_secs(10);
        let b = Time::from_secs(12);
        assert_eq!(b.saturating_since(a), Duration::from_secs(2));
        assert_eq!(a.saturating_since(b), Duration::ZERO);
    }

    /// The extremes overflowed `i64` subtraction (a panic in a debug
    /// build); the gap is exact instead.
    #[test]
    fn saturating_since_spans_the_whole_range() {
        let gap = Time::MAX.saturating_since(Time(i64::MIN));
        assert_eq!(gap, Duration::from_nanos(u64::MAX));
        assert_eq!(Time(i64::MIN).saturating_since(Time::MAX), Duration::ZERO);
    }

    proptest::proptest! {
        /// For any two instants, the elapsed time is their exact distance
        /// when the second is earlier, and zero otherwise.
        #[test]
        fn saturating_since_is_exact(a in proptest::num::i64::ANY, b in proptest::num::i64::ANY) {
            let got = Time(a).saturating_since(Time(b));
            let want = u64::try_from(i128::from(a) - i128::from(b)).unwrap_or(0);
            proptest::prop_assert_eq!(got, Duration::from_nanos(want));
        }
    }
}
