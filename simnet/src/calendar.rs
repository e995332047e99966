//! Local wall-clock time at a site, from the IANA rules bundled with jiff.
//!
//! Sites schedule their synchronisation in their own time zone (02:00–04:00
//! local, say), background traffic follows the local working day, and
//! business-hours traffic is judged by local time. All of that needs real
//! rules, daylight saving included: a daily job at 03:00 in London runs at
//! 03:00 UTC in winter and 02:00 UTC in summer. The rules come from the tz
//! database compiled into the binary, so a run never depends on the host's
//! `/usr/share/zoneinfo`.

use jiff::civil::{self, Date, Weekday};
use jiff::tz::{AmbiguousOffset, TimeZone};
use thiserror::Error;
use tiersync_engine::Time;

/// Minutes in a civil day; a minute-of-day is below this.
pub const MINUTES_PER_DAY: u32 = 24 * 60;

/// A problem building a [`LocalClock`], usually from a scenario file.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The name is not in the bundled IANA tz database.
    #[error("unknown time zone {name:?}: {source}")]
    UnknownTimeZone {
        /// The name as given.
        name: String,
        /// jiff's explanation.
        source: jiff::Error,
    },
}

/// Converts simulated instants to a site's local wall-clock time.
///
/// Every method is a pure function of its arguments and the bundled rules.
#[derive(Clone, Debug)]
pub struct LocalClock {
    /// The site's time zone.
    pub tz: TimeZone,
}

impl LocalClock {
    /// A clock for a time zone already built.
    pub fn new(tz: TimeZone) -> Self {
        LocalClock { tz }
    }

    /// A clock for an IANA zone name such as `"Europe/London"`.
    pub fn for_zone(name: &str) -> Result<Self, CalendarError> {
        TimeZone::get(name)
            .map(LocalClock::new)
            .map_err(|source| CalendarError::UnknownTimeZone { name: name.to_owned(), source })
    }

    /// UTC, for links and tests that do not care about local time.
    pub fn utc() -> Self {
        LocalClock::new(TimeZone::UTC)
    }

    /// The local civil date and time at instant `t`.
    #[inline]
    pub fn local_datetime(&self, t: Time) -> civil::DateTime {
        self.tz.to_datetime(t.to_jiff())
    }

    /// The local hour of day at `t`, 0–23: the index into a site's diurnal
    /// background-load table.
    #[inline]
    pub fn local_hour(&self, t: Time) -> u8 {
        self.local_datetime(t).hour() as u8
    }

    /// The local minute of day at `t`, 0–1439.
    #[inline]
    pub fn local_minute_of_day(&self, t: Time) -> u32 {
        let local = self.local_datetime(t);
        local.hour() as u32 * 60 + local.minute() as u32
    }

    /// The local day of the week at `t`.
    #[inline]
    pub fn local_weekday(&self, t: Time) -> Weekday {
        self.local_datetime(t).weekday()
    }

    /// Whether `t` falls in a local working window.
    ///
    /// The window runs from `window_start_min` (inclusive) to
    /// `window_end_min` (exclusive), both minutes of the local day; `days`
    /// says which days it applies to, Monday first. A window whose end is
    /// before its start crosses midnight, and belongs to the day on which it
    /// starts: 22:00–06:00 on Friday covers Saturday 03:00. Equal ends make
    /// an empty window.
    pub fn is_business_hours(
        &self,
        t: Time,
        window_start_min: u32,
        window_end_min: u32,
        days: [bool; 7],
    ) -> bool {
        let local = self.local_datetime(t);
        let minute = local.hour() as u32 * 60 + local.minute() as u32;
        let today = local.weekday().to_monday_zero_offset() as usize;
        let yesterday = (today + 6) % 7;
        if window_start_min <= window_end_min {
            days[today] && (window_start_min..window_end_min).contains(&minute)
        } else {
            (days[today] && minute >= window_start_min)
                || (days[yesterday] && minute < window_end_min)
        }
    }

    /// The first instant strictly after `after` at which the local clock
    /// shows `minute_of_day`, for scheduling daily jobs in local time.
    ///
    /// It yields at most one instant per local date, so a daily job runs
    /// once a day whatever daylight saving does:
    /// - in a gap (the clock jumps over that minute, as 01:30 in London on
    ///   the last Sunday of March) it is the instant the gap ends, when the
    ///   clock first shows a later time (02:00 BST that day);
    /// - in a fold (the clock shows that minute twice, as 01:30 in London on
    ///   the last Sunday of October) it is the first occurrence only.
    ///
    /// # Panics
    ///
    /// If `minute_of_day` is not below [`MINUTES_PER_DAY`]: scenario
    /// validation must reject such a value before it gets here.
    pub fn next_local_time_of_day(&self, after: Time, minute_of_day: u32) -> Time {
        assert!(
            minute_of_day < MINUTES_PER_DAY,
            "minute of day {minute_of_day} is not below {MINUTES_PER_DAY}"
        );
        let mut date = self.local_datetime(after).date();

        // Today's occurrence may already have passed; tomorrow's cannot,
        // since it is at least a civil day later. A third try covers a zone
        // that skipped a whole date (Pacific/Apia on 2011-12-30).
        for _ in 0..3 {
            let candidate = self.resolve(date, minute_of_day);
            if candidate > after {
                return candidate;
            }
            date = match date.tomorrow() {
                Ok(next) => next,
                Err(_) => break,
            };
        }
        Time::MAX
    }

    /// The first instant of the local date that contains `t`: local
    /// midnight, or the end of the gap where a zone skips midnight
    /// (America/Santiago in September).
    pub fn local_day_start(&self, t: Time) -> Time {
        self.resolve(self.local_datetime(t).date(), 0)
    }

    /// The instant at which the local clock shows `minute_of_day` on
    /// `date`: the first occurrence in a fold, the end of the gap in a gap.
    fn resolve(&self, date: Date, minute_of_day: u32) -> Time {
        debug_assert!(minute_of_day < MINUTES_PER_DAY);
        let hour = (minute_of_day / 60) as i8;
        let minute = (minute_of_day % 60) as i8;
        let wall = date.at(hour, minute, 0, 0);
        let ambiguous = self.tz.to_ambiguous_timestamp(wall);
        match ambiguous.offset() {
            AmbiguousOffset::Unambiguous { .. } | AmbiguousOffset::Fold { .. } => {
                ambiguous.earlier().map(Time::from_jiff).unwrap_or(Time::MAX)
            }
            AmbiguousOffset::Gap { after, .. } => {
                // Read with the offset after the gap, the wall time names an
                // instant before the transition; the next transition from
                // there is the gap's end.
                let before_gap = after.to_timestamp(wall).unwrap_or(jiff::Timestamp::MAX);
                self.tz
                    .following(before_gap)
                    .next()
                    .map(|transition| Time::from_jiff(transition.timestamp()))
                    .unwrap_or(Time::MAX)
            }
        }
    }
}

/// A local working window on chosen days, for metering business-hours
/// traffic per site.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BusinessHours {
    /// First minute of the local day inside the window.
    pub start_min: u32,
    /// First minute of the local day after the window; below `start_min`
    /// for a window that crosses midnight.
    pub end_min: u32,
    /// The days the window applies to, Monday first.
    pub days: [bool; 7],
}

impl BusinessHours {
    /// 09:00–17:00, Monday to Friday: the usual office day.
    pub const OFFICE: BusinessHours = BusinessHours {
        start_min: 9 * 60,
        end_min: 17 * 60,
        days: [true, true, true, true, true, false, false],
    };

    /// Whether `t` is inside the window on `clock`.
    #[inline]
    pub fn contains(&self, clock: &LocalClock, t: Time) -> bool {
        clock.is_business_hours(t, self.start_min, self.end_min, self.days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses an RFC 3339 UTC instant such as `2026-03-29T01:00:00Z`.
    fn utc(text: &str) -> Time {
        Time::from_jiff(text.parse().expect("test instants are valid RFC 3339"))
    }

    fn clock(name: &str) -> LocalClock {
        LocalClock::for_zone(name).expect("bundled zone")
    }

    #[test]
    fn unknown_zone_is_an_error() {
        let err = LocalClock::for_zone("Mars/Olympus_Mons").unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus_Mons"));
    }

    #[test]
    fn london_moves_one_hour_in_utc_across_2026_03_29() {
        let london = clock("Europe/London");
        assert_eq!(london.local_hour(utc("2026-03-28T12:00:00Z")), 12);
        assert_eq!(london.local_hour(utc("2026-03-29T12:00:00Z")), 13);
        assert_eq!(london.local_weekday(utc("2026-03-29T12:00:00Z")), Weekday::Sunday);

        // A daily 03:00 job: 03:00 UTC on Saturday, 02:00 UTC from Sunday.
        let three = 3 * 60;
        let saturday = london.next_local_time_of_day(utc("2026-03-27T12:00:00Z"), three);
        assert_eq!(saturday, utc("2026-03-28T03:00:00Z"));
        let sunday = london.next_local_time_of_day(saturday, three);
        assert_eq!(sunday, utc("2026-03-29T02:00:00Z"));
    }

    #[test]
    fn london_gap_takes_the_instant_the_gap_ends() {
        let london = clock("Europe/London");
        // 01:30 does not exist on 2026-03-29: clocks go 01:00 GMT -> 02:00 BST.
        let t = london.next_local_time_of_day(utc("2026-03-28T12:00:00Z"), 90);
        assert_eq!(t, utc("2026-03-29T01:00:00Z"));
        assert_eq!(london.local_minute_of_day(t), 120);
        // The day after, 01:30 BST exists again.
        let next = london.next_local_time_of_day(t, 90);
        assert_eq!(next, utc("2026-03-30T00:30:00Z"));
    }

    #[test]
    fn london_fold_takes_the_first_occurrence_once() {
        let london = clock("Europe/London");
        // 01:30 happens twice on 2026-10-25: at 00:30Z (BST), 01:30Z (GMT).
        let first = london.next_local_time_of_day(utc("2026-10-24T12:00:00Z"), 90);
        assert_eq!(first, utc("2026-10-25T00:30:00Z"));
        let next = london.next_local_time_of_day(first, 90);
        assert_eq!(next, utc("2026-10-26T01:30:00Z"));
    }

    #[test]
    fn sao_paulo_has_no_daylight_saving_since_2019() {
        let sao_paulo = clock("America/Sao_Paulo");
        for summer_or_winter in ["2026-01-15T12:00:00Z", "2026-07-15T12:00:00Z"] {
            let t = utc(summer_or_winter);
            assert_eq!(sao_paulo.local_hour(t), 9);
            let two_am = sao_paulo.next_local_time_of_day(t, 2 * 60);
            assert_eq!(two_am.as_secs() - sao_paulo.local_day_start(t).as_secs(), 26 * 3600);
        }
        let day_start = sao_paulo.local_day_start(utc("2026-11-08T12:00:00Z"));
        assert_eq!(day_start, utc("2026-11-08T03:00:00Z"));
    }

    #[test]
    fn kolkata_is_five_and_a_half_hours_ahead() {
        let kolkata = clock("Asia/Kolkata");
        let t = utc("2026-03-02T00:00:00Z");
        assert_eq!(kolkata.local_hour(t), 5);
        assert_eq!(kolkata.local_minute_of_day(t), 5 * 60 + 30);
        assert_eq!(kolkata.local_day_start(t), utc("2026-03-01T18:30:00Z"));
        assert_eq!(kolkata.next_local_time_of_day(t, 0), utc("2026-03-02T18:30:00Z"));
    }

    #[test]
    fn sydney_daylight_saving_ends_2026_04_05() {
        let sydney = clock("Australia/Sydney");
        let nine = 9 * 60;
        // Friday 09:00 AEDT (+11), Monday 09:00 AEST (+10).
        let friday = sydney.next_local_time_of_day(utc("2026-04-02T12:00:00Z"), nine);
        assert_eq!(friday, utc("2026-04-02T22:00:00Z"));
        let monday = sydney.next_local_time_of_day(utc("2026-04-05T12:00:00Z"), nine);
        assert_eq!(monday, utc("2026-04-05T23:00:00Z"));
        assert_eq!(sydney.local_weekday(monday), Weekday::Monday);
        // 02:30 happens twice on Sunday 2026-04-05; the first is AEDT.
        let fold = sydney.next_local_time_of_day(utc("2026-04-04T12:00:00Z"), 150);
        assert_eq!(fold, utc("2026-04-04T15:30:00Z"));
        // That Sunday lasts 25 hours.
        let sunday_start = sydney.local_day_start(fold);
        let monday_start = sydney.local_day_start(monday);
        assert_eq!(monday_start.as_secs() - sunday_start.as_secs(), 25 * 3600);
    }

    #[test]
    fn santiago_day_start_skips_the_missing_midnight() {
        let santiago = clock("America/Santiago");
        // On 2026-09-06 the clock jumps from 00:00 (-04) to 01:00 (-03).
        let t = utc("2026-09-06T15:00:00Z");
        let start = santiago.local_day_start(t);
        assert_eq!(start, utc("2026-09-06T04:00:00Z"));
        assert_eq!(santiago.local_hour(start), 1);
    }

    #[test]
    fn business_hours_follow_local_days_and_hours() {
        let kolkata = clock("Asia/Kolkata");
        let office = BusinessHours::OFFICE;
        // Monday 2026-03-02 09:00 IST is 03:30 UTC.
        assert!(!office.contains(&kolkata, utc("2026-03-02T03:29:00Z")));
        assert!(office.contains(&kolkata, utc("2026-03-02T03:30:00Z")));
        assert!(office.contains(&kolkata, utc("2026-03-02T11:29:59Z")));
        assert!(!office.contains(&kolkata, utc("2026-03-02T11:30:00Z")));
        // Sunday 2026-03-01 at 12:00 IST is not a working day.
        assert!(!office.contains(&kolkata, utc("2026-03-01T06:30:00Z")));
    }

    #[test]
    fn business_window_across_midnight_belongs_to_its_start_day() {
        let utc_clock = LocalClock::utc();
        let friday_only = [false, false, false, false, true, false, false];
        let night = |at: &str| utc_clock.is_business_hours(utc(at), 22 * 60, 6 * 60, friday_only);
        // Friday 2026-03-06 23:00 and Saturday 03:00 are in; Friday 03:00
        // belongs to Thursday's night, which is off.
        assert!(night("2026-03-06T23:00:00Z"));
        assert!(night("2026-03-07T03:00:00Z"));
        assert!(!night("2026-03-06T03:00:00Z"));
        assert!(!night("2026-03-07T06:00:00Z"));
        // An empty window never matches.
        assert!(!utc_clock.is_business_hours(utc("2026-03-06T12:00:00Z"), 600, 600, [true; 7]));
    }
}
