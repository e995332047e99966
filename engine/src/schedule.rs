//! When a local server synchronises: a daily window in its own time zone.

use jiff::civil::Time as CivilTime;
use jiff::tz::TimeZone;
use rand::RngExt as _;
use rand_pcg::Pcg32;
use serde::{Deserialize, Serialize};

use crate::time::Time;

/// A daily window of local wall-clock time, in minutes after midnight.
///
/// `end` before `start` means the window wraps past midnight
/// (`23:00-01:00`). Daylight saving is honoured: the window is placed by
/// local wall time on each day, so in UTC it moves by an hour when the
/// site's clocks change. A time inside a skipped hour (spring forward) is
/// moved later by the length of the gap; in a repeated hour (fall back)
/// the first occurrence is taken (jiff's "compatible" rule, as RFC 5545).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyWindow {
    /// Minutes after local midnight at which the window opens, 0–1439.
    pub start_min: u16,
    /// Minutes after local midnight at which the window closes, 1–1440
    /// (1440 is the next midnight).
    pub end_min: u16,
}

impl DailyWindow {
    /// The window `02:00-04:00` local, a common default for off-peak
    /// replication.
    pub const NIGHT: DailyWindow = DailyWindow { start_min: 120, end_min: 240 };

    /// The window's instants opening on the local date of `day_offset`
    /// days after the local date of `at`.
    fn on_day(&self, tz: &TimeZone, at: Time, day_offset: i64) -> Option<(Time, Time)> {
        let date = tz.to_datetime(at.to_jiff()).date();
        let date = date.checked_add(jiff::Span::new().days(day_offset)).ok()?;
        let open = civil(self.start_min)?;
        let start = tz.to_timestamp(date.to_datetime(open)).ok()?;
        let wraps = self.end_min <= self.start_min || self.end_min >= 1440;
        let end_date = if wraps { date.tomorrow().ok()? } else { date };
        let close = civil(self.end_min % 1440)?;
        let end = tz.to_timestamp(end_date.to_datetime(close)).ok()?;
        Some((Time::from_jiff(start), Time::from_jiff(end)))
    }

    /// The first window that is still open after `after`: its opening
    /// (or `after` itself when already inside it) and its close.
    pub fn next_after(&self, tz: &TimeZone, after: Time) -> (Time, Time) {
        for offset in -1..=2 {
            if let Some((start, end)) = self.on_day(tz, after, offset)
                && end > after
                && end > start
            {
                return (start.max(after), end);
            }
        }
        // Unreachable for a valid time zone: some window ends within two
        // days. Fall back to a day later rather than panic.
        let day = std::time::Duration::from_secs(86_400);
        (after + day, after + day * 2)
    }

    /// Picks the time of the next synchronisation after `after`: a uniform
    /// point in the rest of the next open window (the splay that keeps
    /// sites from arriving together). Returns it and the window's close.
    pub fn pick_after(&self, tz: &TimeZone, after: Time, rng: &mut Pcg32) -> (Time, Time) {
        let (from, to) = self.next_after(tz, after);
        let span = (to.0 - from.0).max(1);
        (Time(from.0 + rng.random_range(0..span)), to)
    }
}

/// Local hours, on chosen days of the week, in which a local server runs
/// no light policy check: a site's business hours, so that content found by
/// a check is not pulled across the WAN while people use it. A check that
/// falls inside waits for the hours to end; the daily synchronisation is
/// not affected (its window is the operator's choice already).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// The hours, local time; placed per local day, daylight saving
    /// honoured, like a sync window.
    pub window: DailyWindow,
    /// The days on which the window opens, Monday first.
    pub days: [bool; 7],
}

impl QuietHours {
    /// 08:00-18:00, Monday to Friday: the default business hours of the
    /// simulator's metering.
    pub const OFFICE: QuietHours = QuietHours {
        window: DailyWindow { start_min: 8 * 60, end_min: 18 * 60 },
        days: [true, true, true, true, true, false, false],
    };

    /// When `at` lies inside the quiet hours, the instant they end;
    /// otherwise `None`. The day that counts is the one on which the
    /// window opened (for a window across midnight, the evening's).
    pub fn end_if_inside(&self, tz: &TimeZone, at: Time) -> Option<Time> {
        for offset in [-1, 0] {
            let Some((start, end)) = self.window.on_day(tz, at, offset) else { continue };
            if start <= at && at < end {
                let weekday = tz.to_datetime(start.to_jiff()).date().weekday();
                let day = usize::try_from(weekday.to_monday_zero_offset()).unwrap_or(0);
                if self.days.get(day).copied().unwrap_or(false) {
                    return Some(end);
                }
            }
        }
        None
    }
}

fn civil(minute_of_day: u16) -> Option<CivilTime> {
    let h = i8::try_from(minute_of_day / 60).ok()?;
    let m = i8::try_from(minute_of_day % 60).ok()?;
    CivilTime::new(h, m, 0, 0).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Time {
        Time::from_jiff(s.parse().unwrap())
    }

    #[test]
    fn london_window_moves_one_hour_in_utc_across_dst() {
        let tz = TimeZone::get("Europe/London").unwrap();
        let w = DailyWindow::NIGHT;
        // Saturday 2026-03-28: GMT, window 02:00-04:00 UTC.
        let (s, e) = w.next_after(&tz, t("2026-03-28T00:00:00Z"));
        assert_eq!((s, e), (t("2026-03-28T02:00:00Z"), t("2026-03-28T04:00:00Z")));
        // Monday 2026-03-30: BST (UTC+1), window 01:00-03:00 UTC.
        let (s, e) = w.next_after(&tz, t("2026-03-30T00:00:00Z"));
        assert_eq!((s, e), (t("2026-03-30T01:00:00Z"), t("2026-03-30T03:00:00Z")));
    }

    #[test]
    fn inside_a_window_the_rest_of_it_is_used() {
        let tz = TimeZone::get("Asia/Tokyo").unwrap();
        let w = DailyWindow::NIGHT; // 17:00-19:00 UTC
        let (s, e) = w.next_after(&tz, t("2026-03-02T18:00:00Z"));
        assert_eq!((s, e), (t("2026-03-02T18:00:00Z"), t("2026-03-02T19:00:00Z")));
        let (s, _) = w.next_after(&tz, t("2026-03-02T19:00:00Z"));
        assert_eq!(s, t("2026-03-03T17:00:00Z"));
    }

    #[test]
    fn window_wrapping_midnight() {
        let tz = TimeZone::UTC;
        let w = DailyWindow { start_min: 23 * 60, end_min: 60 };
        let (s, e) = w.next_after(&tz, t("2026-03-02T12:00:00Z"));
        assert_eq!((s, e), (t("2026-03-02T23:00:00Z"), t("2026-03-03T01:00:00Z")));
        let (s, e) = w.next_after(&tz, t("2026-03-03T00:30:00Z"));
        assert_eq!((s, e), (t("2026-03-03T00:30:00Z"), t("2026-03-03T01:00:00Z")));
    }

    #[test]
    fn window_ending_at_midnight() {
        let w = DailyWindow { start_min: 22 * 60, end_min: 1440 };
        let (s, e) = w.next_after(&TimeZone::UTC, t("2026-03-02T12:00:00Z"));
        assert_eq!((s, e), (t("2026-03-02T22:00:00Z"), t("2026-03-03T00:00:00Z")));
    }

    #[test]
    fn quiet_hours_end_on_their_own_day_and_only_on_chosen_days() {
        let tz = TimeZone::get("Asia/Tokyo").unwrap(); // UTC+9, no DST
        let q = QuietHours::OFFICE;
        // Monday 2026-03-02 10:00 JST is inside; they end at 18:00 JST.
        let end = q.end_if_inside(&tz, t("2026-03-02T01:00:00Z"));
        assert_eq!(end, Some(t("2026-03-02T09:00:00Z")));
        // 07:59 and 18:00 JST are outside.
        assert_eq!(q.end_if_inside(&tz, t("2026-03-01T22:59:00Z")), None);
        assert_eq!(q.end_if_inside(&tz, t("2026-03-02T09:00:00Z")), None);
        // Saturday 10:00 JST is outside: not a chosen day.
        assert_eq!(q.end_if_inside(&tz, t("2026-03-07T01:00:00Z")), None);
    }

    #[test]
    fn quiet_hours_across_midnight_belong_to_the_evening_they_open() {
        let tz = TimeZone::UTC;
        // 22:00-06:00, opening on Fridays only.
        let mut days = [false; 7];
        days[4] = true;
        let q = QuietHours { window: DailyWindow { start_min: 22 * 60, end_min: 6 * 60 }, days };
        // Saturday 03:00 belongs to Friday's window.
        let end = q.end_if_inside(&tz, t("2026-03-07T03:00:00Z"));
        assert_eq!(end, Some(t("2026-03-07T06:00:00Z")));
        // Sunday 03:00 belongs to Saturday's, which is not chosen.
        assert_eq!(q.end_if_inside(&tz, t("2026-03-08T03:00:00Z")), None);
    }

    #[test]
    fn picks_stay_inside_the_window() {
        use rand::SeedableRng;
        let tz = TimeZone::get("America/Sao_Paulo").unwrap();
        let mut rng = Pcg32::seed_from_u64(3);
        for _ in 0..100 {
            let (at, end) = DailyWindow::NIGHT.pick_after(&tz, t("2026-03-02T00:00:00Z"), &mut rng);
            assert!(at >= t("2026-03-02T05:00:00Z") && at < end);
            assert_eq!(end, t("2026-03-02T07:00:00Z"));
        }
    }
}
