//! The values of three summary metrics against expectations worked out
//! independently of the metering code: staleness in client-hours, computed
//! by hand from a schedule in which every client's poll time is known; WAN
//! bytes in business hours, recomputed from the per-minute link series and
//! from the trace rows with each site's local time from jiff; and the age
//! of the master's view of each site, recomputed from the run's record of
//! sync starts and the scenario's partition.

use tiersync_simnet::output::RunOutput;
use tiersync_simnet::scenario::{Scenario, Strategy};
use tiersync_simnet::world::{self, Hooks, NoHooks, RunOptions, TraceRow};

fn load(text: &str) -> Scenario {
    Scenario::from_str_named(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn run(sc: &Scenario, strategy: Strategy) -> RunOutput {
    let opts = RunOptions { strategy, seed: None, keep_detail: true, single_thread: false };
    world::run(sc, &opts, &mut NoHooks)
}

/// Unix seconds of an RFC 3339 instant.
fn unix(at: &str) -> f64 {
    at.parse::<jiff::Timestamp>().unwrap_or_else(|e| panic!("{at}: {e}")).as_second() as f64
}

/// Hours from one RFC 3339 instant to another.
fn hours(from: &str, to: &str) -> f64 {
    (unix(to) - unix(from)) / 3600.0
}

/// Monday 2 March 2026 for two days (London on GMT, so its local time is
/// UTC). Clients poll on the hour exactly (no splay, every client starts
/// at 00:00Z); local servers sync once a day in a ten-minute window from
/// 02:00 local and make no checks in between, so a change reaches a site
/// only with its next sync: London's window opens at 02:00Z, Tokyo's
/// (JST, UTC+9) at 17:00Z. The master's own site has no clients.
const HAND: &str = r#"
name = "hand-computed"
seed = 3
start = "2026-03-02T00:00:00Z"
duration = "2d"

[master]
site = "hq"

[client]
poll = "1h"
splay = "0s"
status_every = "1h"
inventory = "1KiB"

[local]
sync_window = "02:00-02:10"

[[site]]
name = "hq"
timezone = "America/New_York"

[[site]]
name = "london"
parent = "hq"
timezone = "Europe/London"
clients = { windows = 6, macos = 4 }
wan = { bandwidth = "10Mbit/s", latency = "80ms" }

[[site]]
name = "tokyo"
parent = "hq"
timezone = "Asia/Tokyo"
clients = { windows = 5, linux = 3 }
wan = { bandwidth = "5Mbit/s", latency = "170ms" }

[[policy]]
id = "antivirus"
platforms = ["windows", "macos", "linux"]
content = "50KiB"

[[policy]]
id = "firewall"
platforms = ["windows"]
content = "2KiB"
params = { default_inbound = "deny" }
"#;

/// Three changes made at the master of [`HAND`]: every client's stale
/// spans follow from the schedule alone. The antivirus change at 10:20Z
/// reaches Tokyo with its sync from 17:00Z and its clients with their
/// 18:00Z poll, London with its sync from 02:00Z the next day and its
/// clients at 03:00Z. The firewall change (Windows only) at 20:00Z reaches
/// London's Windows clients with that same sync, while they are still
/// stale for the antivirus (one span, not two), and Tokyo's at 18:00Z the
/// next day. The second antivirus change at 20:00Z on day two reaches no
/// one before the end: all 18 clients are stale for the last four hours.
/// Each span ends a LAN round trip after a poll (1 ms links, well under a
/// second), so the total lies at most seconds above the hand figure, never
/// below: the test allows 36 s (0.01 h) against 410 h.
#[test]
fn staleness_is_the_hand_computed_client_hours() {
    let changes = r#"
[[change]]
at = "2026-03-02T10:20:00Z"
policy = "antivirus"
content = "51KiB"

[[change]]
at = "2026-03-02T20:00:00Z"
policy = "firewall"
params = { default_inbound = "deny", allow = ["vpn"] }

[[change]]
at = "2026-03-03T20:00:00Z"
policy = "antivirus"
content = "52KiB"
"#;
    let sc = load(&format!("{HAND}\n{changes}"));
    let out = run(&sc, Strategy::Tiered);
    let end = "2026-03-04T00:00:00Z";
    let last = hours("2026-03-03T20:00:00Z", end);
    let london_windows = hours("2026-03-02T10:20:00Z", "2026-03-03T03:00:00Z") + last;
    let london_macos = london_windows;
    let tokyo_windows = hours("2026-03-02T10:20:00Z", "2026-03-02T18:00:00Z")
        + hours("2026-03-02T20:00:00Z", "2026-03-03T18:00:00Z")
        + last;
    let tokyo_linux = hours("2026-03-02T10:20:00Z", "2026-03-02T18:00:00Z") + last;
    let expected =
        6.0 * london_windows + 4.0 * london_macos + 5.0 * tokyo_windows + 3.0 * tokyo_linux;
    assert!((expected - 410.0).abs() < 1e-9, "hand total {expected}");

    // The premise: each client applied each change at the poll the
    // schedule says (delays count from the change's time, here also its
    // assignment, as the changes are made at the master).
    let london = sc.site_index("london").unwrap();
    let applied_at = |change: u16, site: usize| match (change, site) {
        (0, s) if s == london => "2026-03-03T03:00:00Z",
        (0, _) => "2026-03-02T18:00:00Z",
        (1, s) if s == london => "2026-03-03T03:00:00Z",
        (1, _) => "2026-03-03T18:00:00Z",
        _ => panic!("change {change} applied at site {site}"),
    };
    let made = ["2026-03-02T10:20:00Z", "2026-03-02T20:00:00Z"];
    let rows = &out.detail.propagation;
    assert_eq!(rows.len(), 18 + 11, "each antivirus client once, each Windows client once");
    for r in rows {
        let site = usize::from(r.site);
        let want = hours(made[usize::from(r.change)], applied_at(r.change, site)) * 3.6e6;
        let got = r.delay_ms as f64;
        assert!(got >= want && got < want + 1000.0, "{r:?}: expected {want} ms");
    }
    assert_eq!(out.summary.propagation_seconds.never_applied, 18, "the last change");

    let got = out.summary.staleness_client_hours;
    assert!(got >= expected - 1e-9 && got < expected + 0.01, "{got} client-hours, not {expected}");
}

/// Staleness counts from the master's assignment, not from the change's
/// time in the scenario: a Windows-only change made at Tokyo's local
/// server at 10:00Z while that server is down (09:00Z to 12:30Z) is made
/// when it is back, and the master assigns it a revision a WAN trip after
/// 12:30Z. Tokyo's server fetches it at once, so its five Windows clients
/// apply it with their 13:00Z poll (0.5 h stale each); London's six get
/// it with the next sync at 02:00Z and poll at 03:00Z (14.5 h each): 89.5
/// client-hours, where counting from 10:00Z would give 117. Propagation
/// delays, which do count from 10:00Z, show the difference. The span
/// starts a fraction of a second after 12:30Z and ends a LAN round trip
/// after a poll: the test allows 0.01 h either way.
#[test]
fn staleness_counts_from_the_masters_assignment() {
    let extra = r#"
[[change]]
at = "2026-03-02T10:00:00Z"
policy = "firewall"
params = { default_inbound = "deny", allow = ["vpn"] }
origin = "tokyo"

[[fault]]
kind = "crash"
site = "tokyo"
node = "local"
at = "2026-03-02T09:00:00Z"
restart_after = "210m"
"#;
    let sc = load(&format!("{HAND}\n{extra}"));
    let out = run(&sc, Strategy::Tiered);
    assert_eq!(out.summary.changes.deferred, 1);
    let back = "2026-03-02T12:30:00Z";
    let expected =
        6.0 * hours(back, "2026-03-03T03:00:00Z") + 5.0 * hours(back, "2026-03-02T13:00:00Z");
    assert!((expected - 89.5).abs() < 1e-9, "hand total {expected}");

    // Delays from the scenario's 10:00Z: 17 h at London, 3 h at Tokyo.
    let london = sc.site_index("london").unwrap();
    let mut delays: Vec<(bool, u64)> = out
        .detail
        .propagation
        .iter()
        .map(|r| (usize::from(r.site) == london, (r.delay_ms as f64 / 3.6e6).round() as u64))
        .collect();
    delays.sort();
    assert_eq!(delays, [vec![(false, 3); 5], vec![(true, 17); 6]].concat());

    let got = out.summary.staleness_client_hours;
    assert!((got - expected).abs() < 0.01, "{got} client-hours, not {expected}");
}

/// Thursday 26 March 2026 for five days: a weekend, and Europe's switch
/// to summer time on Sunday 29 March (Paris and London move an hour
/// earlier in UTC; Tokyo and Kolkata, UTC+05:30, do not). London sits
/// below a relay `eu`, so flat traffic of London's clients crosses two WAN
/// links with two calendars. Loss on Tokyo's link and a partition of
/// Mumbai's: lost messages count on the link that lost them, partitioned
/// ones on none.
const OFFICE: &str = r#"
name = "office-hours"
seed = 5
start = "2026-03-26T00:00:00Z"
duration = "5d"

[master]
site = "hq"

[client]
poll = "1h"
splay = "30m"
status_every = "1h"
inventory = "1KiB"

[local]
sync_window = "02:00-04:00"
policy_check = "3h"

[[site]]
name = "hq"
timezone = "America/New_York"

[[site]]
name = "eu"
parent = "hq"
timezone = "Europe/Paris"
wan = { bandwidth = "20Mbit/s", latency = "40ms" }

[[site]]
name = "london"
parent = "eu"
timezone = "Europe/London"
clients = { windows = 12, macos = 4 }
wan = { bandwidth = "10Mbit/s", latency = "20ms", background = "office" }

[[site]]
name = "tokyo"
parent = "hq"
timezone = "Asia/Tokyo"
clients = { windows = 10 }
wan = { bandwidth = "5Mbit/s", latency = "170ms", loss = 0.02 }

[[site]]
name = "mumbai"
parent = "hq"
timezone = "Asia/Kolkata"
clients = { linux = 8 }
wan = { bandwidth = "4Mbit/s", latency = "120ms" }

[[policy]]
id = "antivirus"
platforms = ["windows", "macos", "linux"]
content = "50KiB"

[[change]]
at = "2026-03-26T14:00:00Z"
policy = "antivirus"
content = "51KiB"

[[change]]
at = "2026-03-30T07:45:00Z"
policy = "antivirus"
content = "52KiB"

[[fault]]
kind = "partition"
site = "mumbai"
from = "2026-03-27T04:00:00Z"
to = "2026-03-27T09:00:00Z"
"#;

/// Business hours as these tests judge them, from a site's local time:
/// local minutes `from` (inclusive) to `to` (exclusive), across midnight
/// when `to` is before `from` (then the night belongs to the day it
/// starts on), on `days`, Monday first.
struct Office {
    from: i32,
    to: i32,
    days: [bool; 7],
}

/// The default: Monday to Friday, 08:00 to 18:00.
const WEEKDAYS: Office =
    Office { from: 8 * 60, to: 18 * 60, days: [true, true, true, true, true, false, false] };

impl Office {
    /// Whether the second `unix` lies in these hours at `site`.
    fn contains(&self, sc: &Scenario, site: usize, unix: i64) -> bool {
        let t = jiff::Timestamp::from_second(unix).unwrap();
        let local = sc.sites[site].timezone.to_datetime(t);
        let minute = i32::from(local.hour()) * 60 + i32::from(local.minute());
        let today = local.weekday().to_monday_zero_offset() as usize;
        if self.from < self.to {
            self.days[today] && (self.from..self.to).contains(&minute)
        } else {
            (self.days[today] && minute >= self.from)
                || (self.days[(today + 6) % 7] && minute < self.to)
        }
    }
}

/// `wan.business_hours_bytes` and each site's `business_hours_bytes`
/// equal, to the byte, the WAN bytes of the run's per-minute link series
/// (metered at the instant each message starts onto the link, its ACKs
/// with it) whose minute falls in the business hours of the link's site,
/// judged here from the site's local time given by jiff: by default
/// Monday to Friday, 08:00 to 18:00, and with a `[business_hours]` table
/// a window across midnight (on the days it starts) on other days. The
/// bucket is one minute from a whole minute, and every zone's offset is a
/// whole number of minutes, so no minute straddles the edge of business
/// hours. Both sides are non-zero, so neither all nor nothing would pass.
#[test]
fn business_hours_bytes_are_the_wan_bytes_of_local_office_minutes() {
    let night = "[business_hours]\nwindow = \"21:00-06:30\"\ndays = [\"fri\", \"sat\", \"sun\"]\n";
    let weekend = Office {
        from: 21 * 60,
        to: 6 * 60 + 30,
        days: [false, false, false, false, true, true, true],
    };
    let cases = [
        (OFFICE.to_owned(), WEEKDAYS),
        (OFFICE.replacen("[master]", &format!("{night}\n[master]"), 1), weekend),
    ];
    for (text, office) in cases {
        let sc = load(&text);
        for strategy in [Strategy::Flat, Strategy::Tiered] {
            let out = run(&sc, strategy);
            let (s, d) = (&out.summary, &out.detail);
            assert_eq!((d.bucket_seconds, d.start_unix % 60), (60, 0));
            let mut inside = vec![0u64; sc.sites.len()];
            let mut outside = 0;
            for r in d.timeseries.iter().filter(|r| d.links[usize::from(r.link)].wan) {
                let site = d.links[usize::from(r.link)].site;
                let minute = d.start_unix + i64::from(r.bucket) * 60;
                let t = jiff::Timestamp::from_second(minute).unwrap();
                let offset = sc.sites[site].timezone.to_offset(t).seconds();
                assert_eq!(offset % 60, 0, "an offset of whole minutes");
                if office.contains(&sc, site, minute) {
                    inside[site] += r.bytes;
                } else {
                    outside += r.bytes;
                }
            }
            let total: u64 = inside.iter().sum();
            assert_eq!(total + outside, s.wan.bytes, "{strategy}: the series hold every byte");
            assert!(total > 0 && outside > 0, "{strategy}: {total} inside, {outside} outside");
            for (site, want) in s.sites.iter().zip(&inside) {
                assert_eq!(site.business_hours_bytes, *want, "{strategy}: {}", site.site);
            }
            assert_eq!(s.wan.business_hours_bytes, total, "{strategy}");
        }
    }
}

/// What the trace says of one message, per WAN link it was sent onto:
/// (time in ns, [(site of the link, bytes on it)]); and how many messages
/// a link lost, or a partition stopped.
#[derive(Default)]
struct PerLink {
    rows: Vec<(i64, Vec<(String, u64)>)>,
    lost: usize,
    partitioned: usize,
}

impl Hooks for PerLink {
    fn wants_trace(&self) -> bool {
        true
    }

    fn delivered(&mut self, r: &TraceRow<'_>) {
        self.lost += usize::from(r.outcome == "lost");
        self.partitioned += usize::from(r.outcome == "partitioned");
        if r.copy || r.wan_links.is_empty() {
            assert_eq!(r.wan_bytes, 0, "{r:?}");
            return;
        }
        let names: Vec<&str> = r.wan_links.split(';').collect();
        // Every link listed was crossed whole (message and ACKs), but the
        // one a loss draw took it on, which carried the message alone.
        let links: Vec<(String, u64)> = names
            .iter()
            .enumerate()
            .map(|(k, name)| {
                let whole = !(r.outcome == "lost" && k + 1 == names.len());
                (name.to_string(), r.bytes + if whole { r.reverse_bytes } else { 0 })
            })
            .collect();
        assert_eq!(links.iter().map(|l| l.1).sum::<u64>(), r.wan_bytes, "{r:?}");
        self.rows.push((r.at.0, links));
    }
}

/// The business-hours bytes again, from the `--trace` rows: each
/// message's bytes on each WAN link it was sent onto (with its ACKs
/// unless that link lost it), counted for the link's site when the row's
/// time is in that site's local 08:00-18:00 on a weekday, by jiff. The
/// meter judges the instant the message starts onto the link; the row
/// gives when it was delivered, or handed to the link that lost or
/// refused it. Here every message is on the wire well under a second
/// (170 ms of latency at most, a 52 KiB answer takes 0.1 s at 4 Mbit/s),
/// so a row more than a second from an edge of business hours is judged
/// alike either way; a row closer counts in the upper bound only. The
/// summary lies between the bounds, per site; in these runs no row is
/// that close, the bounds meet and the comparison is exact.
#[test]
fn trace_rows_in_local_office_hours_add_up_to_business_hours_bytes() {
    let sc = load(OFFICE);
    let margin_ns = 1_000_000_000;
    for strategy in [Strategy::Flat, Strategy::Tiered] {
        let mut trace = PerLink::default();
        let opts = RunOptions { strategy, seed: None, keep_detail: false, single_thread: false };
        let s = world::run(&sc, &opts, &mut trace).summary;
        if strategy == Strategy::Flat {
            assert!(trace.lost > 0 && trace.partitioned > 0, "{strategy}: no loss to count");
        }
        let (mut sure, mut maybe) = (vec![0u64; sc.sites.len()], vec![0u64; sc.sites.len()]);
        let mut near_edge = 0;
        for (at, links) in &trace.rows {
            for (name, bytes) in links {
                let site = sc.site_index(name).unwrap();
                let judge = |ns: i64| WEEKDAYS.contains(&sc, site, ns.div_euclid(1_000_000_000));
                let (before, after) = (judge(at - margin_ns), judge(at + margin_ns));
                if before && after {
                    sure[site] += bytes;
                } else if before || after {
                    maybe[site] += bytes;
                    near_edge += 1;
                }
            }
        }
        for (i, site) in s.sites.iter().enumerate() {
            let got = site.business_hours_bytes;
            let (low, high) = (sure[i], sure[i] + maybe[i]);
            assert!(
                low <= got && got <= high,
                "{strategy}: {} {got} not in {low}..={high}",
                site.site
            );
        }
        let total: u64 = sure.iter().sum();
        assert!(total > 0, "{strategy}: some traffic in business hours");
        // The bounds meet: the comparison is exact.
        assert_eq!(near_edge, 0, "{strategy}: rows within a second of an edge (bounds held)");
        assert_eq!(s.wan.business_hours_bytes, total, "{strategy}");
    }
}

/// The mean age, hours, of the master's view of a site from `start` to
/// `end` (Unix seconds): it starts at zero, grows by a second a second,
/// and at each `(arrive, as_of)` drops to the age of the information that
/// arrived.
fn mean_age_hours(start: f64, end: f64, updates: &[(f64, f64)]) -> f64 {
    let (mut since, mut info, mut area) = (start, start, 0.0);
    for &(arrive, as_of) in updates.iter().chain([(end, start)].iter()) {
        area += ((arrive - info).powi(2) - (since - info).powi(2)) / 2.0;
        since = arrive;
        info = info.max(as_of);
    }
    area / (end - start) / 3600.0
}

/// The master's view of each site: [`HAND`] over five days, syncs in a
/// two-hour window from 02:00 local, a third site `paris`, and Tokyo's
/// link cut from noon on 4 March to the end (60 h), so Tokyo's syncs of
/// 4, 5 and 6 March (from 17:00Z) are lost. Each site's information is
/// dated when its local server sent the sync that carried it, and reaches
/// the master one link latency later. At the end Tokyo's view is older
/// than the partition (its last sync was on 3 March), the others' younger
/// than a day plus the window. The mean ages equal the integral of the
/// age recomputed from the run's sync starts, those inside the partition
/// left out. The arrival is taken as the send time plus the link's
/// latency, leaving out the sync's serialisation: a few milliseconds,
/// which shift the mean by about that much times a day's age over five
/// days, under 0.01 s; the test allows one second.
#[test]
fn master_view_age_follows_syncs_and_a_partition() {
    let paris = "[[site]]\nname = \"paris\"\nparent = \"hq\"\ntimezone = \"Europe/Paris\"\n\
                 clients = { linux = 4 }\n\
                 wan = { bandwidth = \"10Mbit/s\", latency = \"30ms\" }\n";
    let cut = "[[fault]]\nkind = \"partition\"\nsite = \"tokyo\"\n\
               from = \"2026-03-04T12:00:00Z\"\nto = \"2026-03-07T00:00:00Z\"\n";
    let text = HAND.replacen("duration = \"2d\"", "duration = \"5d\"", 1).replacen(
        "02:00-02:10",
        "02:00-04:00",
        1,
    );
    let sc = load(&format!("{text}\n{paris}\n{cut}"));
    let out = run(&sc, Strategy::Tiered);
    let (start, end) = (unix("2026-03-02T00:00:00Z"), unix("2026-03-07T00:00:00Z"));
    let (cut_from, cut_to) = (unix("2026-03-04T12:00:00Z"), end);
    let window_h = 2.0;

    let by_name = |name: &str| out.summary.sites.iter().find(|s| s.site == name).unwrap();
    assert_eq!(by_name("hq").master_view_age_hours_mean, None, "no clients at hq");
    assert_eq!(by_name("hq").master_view_age_hours_end, None);
    for (name, latency_s) in [("london", 0.080), ("tokyo", 0.170), ("paris", 0.030)] {
        let site = sc.site_index(name).unwrap();
        let mut updates: Vec<(f64, f64)> = out
            .detail
            .syncs
            .iter()
            .filter(|&&(s, t)| s == site && !(name == "tokyo" && t >= cut_from && t < cut_to))
            .map(|&(_, t)| (t + latency_s, t))
            .collect();
        updates.sort_by(|a, b| a.0.total_cmp(&b.0));
        // One sync a day got through: five, or two for Tokyo.
        assert_eq!(updates.len(), if name == "tokyo" { 2 } else { 5 }, "{name}: {updates:?}");
        let last = updates.last().unwrap().1;
        let s = by_name(name);
        let age_end = s.master_view_age_hours_end.unwrap();
        assert!((age_end - (end - last) / 3600.0).abs() < 1e-6, "{name}: {age_end} h at the end");
        if name == "tokyo" {
            assert!(age_end > (cut_to - cut_from) / 3600.0, "{name}: {age_end} h at the end");
        } else {
            assert!(age_end < 24.0 + window_h, "{name}: {age_end} h at the end");
        }
        let mean = s.master_view_age_hours_mean.unwrap();
        let want = mean_age_hours(start, end, &updates);
        assert!((mean - want).abs() < 1.0 / 3600.0, "{name}: mean {mean} h, expected {want} h");
    }
}
