//! The fetch records a report draws its sync timeline and business-hours
//! breakdown from: every policy request of a local server to its parent,
//! with the answer it got.

use tiersync_simnet::output::{FetchKind, RunOutput};
use tiersync_simnet::scenario::{Scenario, Strategy};
use tiersync_simnet::world::{self, NoHooks, RunOptions};

/// Two sites for two days, checks every 6 hours, one change a day.
const TEXT: &str = r#"
name = "fetches"
seed = 11
start = "2026-03-02T00:00:00Z"
duration = "2d"
[master]
site = "hq"
[client]
poll = "1h"
splay = "30m"
status_every = "2h"
inventory = "1KiB"
[local]
sync_window = "02:00-04:00"
policy_check = "6h"
[[site]]
name = "hq"
timezone = "America/New_York"
[[site]]
name = "london"
parent = "hq"
timezone = "Europe/London"
clients = { windows = 20 }
wan = { bandwidth = "10Mbit/s", latency = "40ms" }
[[site]]
name = "tokyo"
parent = "hq"
timezone = "Asia/Tokyo"
clients = { windows = 10 }
wan = { bandwidth = "5Mbit/s", latency = "90ms" }
[[policy]]
id = "antivirus"
platforms = ["windows"]
content = "40KiB"
[[change]]
at = "2026-03-02T10:00:00Z"
policy = "antivirus"
content = "41KiB"
[[change]]
at = "2026-03-03T10:00:00Z"
policy = "antivirus"
content = "42KiB"
"#;

fn run(overrides: &[(&str, &str)], keep_detail: bool) -> RunOutput {
    let o: Vec<(String, String)> =
        overrides.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let sc = Scenario::from_str_with_overrides(TEXT, "fetches.toml", &o).unwrap();
    let opts =
        RunOptions { strategy: Strategy::Tiered, seed: None, keep_detail, single_thread: false };
    world::run(&sc, &opts, &mut NoHooks)
}

#[test]
fn every_request_of_a_local_server_is_recorded_with_its_answer() {
    let out = run(&[], true);
    let f = &out.detail.fetches;

    // Each local server starts empty, so its first request is the first
    // download of the whole set, which carries both policies' revisions.
    for site in [1, 2] {
        let mine: Vec<_> = f.iter().filter(|r| r.site == site).collect();
        assert_eq!(mine[0].kind, FetchKind::Initial);
        assert!(mine[0].revisions >= 1 && mine[0].reply_bytes > 40 * 1024, "{:?}", mine[0]);
        assert_eq!(mine.iter().filter(|r| r.kind == FetchKind::Initial).count(), 1);

        // A sync per night, as counted in the summary.
        let syncs = mine.iter().filter(|r| r.kind == FetchKind::Sync).count() as u64;
        assert_eq!(syncs, out.summary.sites[site].syncs);

        // Checks every 6 hours over two days.
        let checks = mine.iter().filter(|r| r.kind == FetchKind::Check).count();
        assert!((7..=9).contains(&checks), "{checks} checks");
    }

    // Answers come after their requests, and nothing new is small.
    for r in f {
        let answered = r.answered_unix.expect("an ideal link answers every request");
        assert!(answered >= r.at_unix);
        if r.revisions == 0 {
            assert!(r.reply_bytes < 2048, "{r:?}");
        }
    }

    // Both changes reach both sites in some answer.
    let carried: u32 = f.iter().filter(|r| r.kind != FetchKind::Initial).map(|r| r.revisions).sum();
    assert_eq!(carried, 4);

    // Business hours are those of the site the answer went to: London's
    // 08:00-18:00 is 08:00-18:00 UTC in March.
    for r in f.iter().filter(|r| r.site == 1) {
        let secs = r.answered_unix.unwrap() as i64 - 1_772_409_600; // 2026-03-02T00:00Z
        let hour = secs.rem_euclid(86_400) / 3600;
        let weekday = secs < 5 * 86_400;
        assert_eq!(r.reply_in_business_hours, weekday && (8..18).contains(&hour), "{r:?}");
    }
}

#[test]
fn without_checks_content_moves_only_in_syncs() {
    // A third day, so that London's window follows the second change.
    let out = run(&[("local.policy_check", "off"), ("duration", "3d")], true);
    assert!(out.detail.fetches.iter().all(|r| r.kind != FetchKind::Check));
    let carried: u32 =
        out.detail.fetches.iter().filter(|r| r.kind == FetchKind::Sync).map(|r| r.revisions).sum();
    assert_eq!(carried, 4, "each change in one sync per site");
}

#[test]
fn the_records_are_kept_only_with_the_detail_and_change_no_number() {
    let with = run(&[], true);
    let without = run(&[], false);
    assert!(without.detail.fetches.is_empty());
    assert_eq!(with.summary.trace_hash, without.summary.trace_hash);
    assert_eq!(with.summary.wan.bytes, without.summary.wan.bytes);
}

/// With `local.checks_in_business_hours = false`, no check is answered in
/// a site's business hours (they wait for their end), checks still run
/// outside them, and every client still gets both changes.
#[test]
fn checks_can_keep_out_of_business_hours() {
    let checks_in_hours = |out: &RunOutput| {
        let f = &out.detail.fetches;
        let checks = f.iter().filter(|r| r.kind == FetchKind::Check).count();
        let in_hours =
            f.iter().filter(|r| r.kind == FetchKind::Check && r.reply_in_business_hours).count();
        (checks, in_hours)
    };

    // Around the clock, some of a 6-hourly check's answers land in office
    // hours (Monday and Tuesday at both sites).
    let (_, always) = checks_in_hours(&run(&[], true));
    assert!(always > 0, "the test scenario lost its office-hours checks");

    let out = run(&[("local.checks_in_business_hours", "false")], true);
    let (checks, in_hours) = checks_in_hours(&out);
    assert_eq!(in_hours, 0, "a check ran in business hours");
    assert!(checks > 0, "no check ran at all");
    assert_eq!(out.summary.propagation_seconds.never_applied, 0);
    assert_eq!(out.summary.clients.up_to_date_at_end, out.summary.clients.total);
}
