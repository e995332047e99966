//! End-to-end tests of the simulator: determinism, the flat baseline's
//! poll count, the sync window following daylight saving, and convergence
//! of the tiered strategy under loss, duplication and partitions.

use proptest::prelude::*;
use tiersync_simnet::output::RunOutput;
use tiersync_simnet::scenario::{Scenario, Strategy};
use tiersync_simnet::world::{self, NoHooks, RunOptions};

fn load(text: &str) -> Scenario {
    Scenario::from_str_named(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn run(sc: &Scenario, strategy: Strategy, seed: Option<u64>) -> RunOutput {
    let opts = RunOptions { strategy, seed, keep_detail: true };
    world::run(sc, &opts, &mut NoHooks)
}

/// Two sites, a few clients, one change at the master and one at a site.
const SMALL: &str = r#"
name = "small"
seed = 7
start = "2026-03-02T00:00:00Z"
duration = "3d"

[master]
site = "hq"

[client]
poll = "1h"
splay = "30m"
status_every = "1h"
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
clients = { windows = 30, macos = 10 }
wan = { bandwidth = "10Mbit/s", latency = "80ms", background = "office" }

[[site]]
name = "tokyo"
parent = "hq"
timezone = "Asia/Tokyo"
clients = { windows = 20, linux = 10 }
wan = { bandwidth = "5Mbit/s", latency = "170ms" }

[[policy]]
id = "antivirus"
platforms = ["windows", "macos", "linux"]
content = "50KiB"
params = { scan = "daily" }

[[policy]]
id = "firewall"
platforms = ["windows"]
content = "2KiB"
params = { default_inbound = "deny" }

[[change]]
at = "2026-03-02T14:00:00Z"
policy = "antivirus"
content = "50KiB"
origin = "hq"

[[change]]
at = "2026-03-03T09:30:00Z"
policy = "firewall"
params = { default_inbound = "deny", allow = ["vpn"] }
origin = "tokyo"
"#;

/// The same seed gives the same trace hash and the same JSON but for wall
/// time; another seed gives another hash.
#[test]
fn same_seed_same_run_other_seed_other_hash() {
    let sc = load(SMALL);
    for strategy in [Strategy::Tiered, Strategy::Flat, Strategy::FlatConditional] {
        let mut a = run(&sc, strategy, None).summary;
        let mut b = run(&sc, strategy, None).summary;
        a.wall_seconds = 0.0;
        b.wall_seconds = 0.0;
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
        let c = run(&sc, strategy, Some(8)).summary;
        assert_ne!(a.trace_hash, c.trace_hash, "{strategy}");
    }
}

/// Under flat-conditional with no policy changes, the clients send within
/// 1% of clients × duration ÷ poll polls.
#[test]
fn flat_conditional_poll_count_matches_the_schedule() {
    let text = SMALL.split("[[change]]").next().unwrap();
    let sc = load(text);
    let out = run(&sc, Strategy::FlatConditional, None);
    let polls = out.summary.by_kind["poll"].messages as f64;
    let expected = 70.0 * 3.0 * 24.0;
    assert!((polls - expected).abs() / expected < 0.01, "{polls} polls, expected {expected}");
    assert_eq!(out.summary.propagation_seconds.count, 0);
}

/// Every strategy converges on this scenario, and the tiered one carries
/// far fewer WAN bytes than flat while paying in propagation delay.
#[test]
fn strategies_converge_and_differ_as_expected() {
    let sc = load(SMALL);
    let tiered = run(&sc, Strategy::Tiered, None).summary;
    let flat = run(&sc, Strategy::Flat, None).summary;
    let cond = run(&sc, Strategy::FlatConditional, None).summary;
    for s in [&tiered, &flat, &cond] {
        assert_eq!(s.clients.up_to_date_at_end, 70, "{}", s.strategy);
        assert_eq!(s.propagation_seconds.never_applied, 0, "{}", s.strategy);
        assert_eq!(s.clients.reporting_at_master, 70, "{}", s.strategy);
    }
    assert!(flat.wan.bytes > 20 * tiered.wan.bytes, "{} vs {}", flat.wan.bytes, tiered.wan.bytes);
    assert!(cond.wan.bytes > tiered.wan.bytes);
    assert!(tiered.propagation_seconds.p50 > cond.propagation_seconds.p50);
    assert!(tiered.master.messages_in * 100 < flat.master.messages_in);
}

/// Across the last Sunday of March, London's 02:00–02:10 local sync moves
/// from 02:00 UTC (GMT) to 01:00 UTC (BST).
#[test]
fn london_sync_moves_with_daylight_saving() {
    let text = SMALL
        .replace("2026-03-02T00:00:00Z", "2026-03-27T00:00:00Z")
        .replace("duration = \"3d\"", "duration = \"5d\"")
        .replace("02:00-04:00", "02:00-02:10")
        .replace("2026-03-02T14:00:00Z", "2026-03-27T14:00:00Z")
        .replace("2026-03-03T09:30:00Z", "2026-03-28T09:30:00Z");
    let sc = load(&text);
    let out = run(&sc, Strategy::Tiered, None);
    let london = sc.site_index("london").unwrap();
    let mut hours: Vec<(String, u32)> = out
        .detail
        .syncs
        .iter()
        .filter(|(site, _)| *site == london)
        .map(|(_, unix)| {
            let t = jiff::Timestamp::from_second(*unix as i64).unwrap().to_string();
            (t[..10].to_string(), t[11..13].parse().unwrap())
        })
        .collect();
    hours.sort();
    assert_eq!(
        hours,
        vec![
            ("2026-03-27".into(), 2),
            ("2026-03-28".into(), 2),
            ("2026-03-29".into(), 1),
            ("2026-03-30".into(), 1),
            ("2026-03-31".into(), 1),
        ]
    );
}

/// An urgent change takes the wake-up path: every client applies it within
/// minutes instead of hours, and the wake-ups show as their own traffic.
#[test]
fn urgent_change_costs_wakes_and_saves_delay() {
    let normal = load(SMALL);
    let urgent = load(&SMALL.replace(
        "content = \"50KiB\"\norigin = \"hq\"",
        "content = \"50KiB\"\norigin = \"hq\"\nurgent = true",
    ));
    let n = run(&normal, Strategy::Tiered, None).summary;
    let u = run(&urgent, Strategy::Tiered, None).summary;
    assert_eq!(n.by_kind["wake"].messages, 0);
    assert_eq!(u.by_kind["wake"].messages, 2 + 70, "one per local server, one per client");
    assert!(u.by_kind["wake"].bytes > 0);
    assert!(u.propagation_seconds.p50 < n.propagation_seconds.p50 / 5.0, "{u:?}");
    assert_eq!(u.clients.up_to_date_at_end, 70);
}

/// A local server that crashes during its sync window and restarts keeps
/// its store; clients that crash lose their memory and fetch everything
/// again; a skewed clock still syncs. Everyone ends up to date.
#[test]
fn crashes_and_skew_end_converged() {
    let faults = r#"
[[fault]]
kind = "crash"
site = "london"
node = "local"
at = "2026-03-03T02:00:00Z"
restart_after = "3h"

[[fault]]
kind = "crash"
site = "tokyo"
node = "clients"
at = "2026-03-03T12:00:00Z"
restart_after = "10m"

[[fault]]
kind = "skew"
site = "tokyo"
node = "local"
offset = "-90s"
"#;
    let sc = load(&format!("{SMALL}\n{faults}"));
    let s = run(&sc, Strategy::Tiered, None).summary;
    assert!(s.lost_messages > 0, "messages to the crashed server are lost");
    assert_eq!(s.clients.up_to_date_at_end, 70);
    assert_eq!(s.propagation_seconds.never_applied, 0);
    // Tokyo's 30 reinstalled clients downloaded their policies again.
    let normal = run(&load(SMALL), Strategy::Tiered, None).summary;
    assert!(s.by_kind["policy_update"].app_bytes > normal.by_kind["policy_update"].app_bytes);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Under random loss, duplication and a partition that heals at least
    /// a day before the end, every client of the tiered strategy ends on
    /// the master's final policies and every change reached every client.
    #[test]
    fn tiered_converges_under_faults(
        loss in 0.0f64..0.2,
        dup in 0.0f64..0.1,
        site in prop_oneof![Just("london"), Just("tokyo")],
        from_h in 0u32..30,
        len_h in 1u32..18,
        seed in 0u64..1000,
    ) {
        let from = jiff::Timestamp::from_second(1_772_409_600 + i64::from(from_h) * 3600).unwrap();
        let to = jiff::Timestamp::from_second(from.as_second() + i64::from(len_h) * 3600).unwrap();
        let faults = format!(
            "[[fault]]\nkind = \"loss\"\nsite = \"london\"\nrate = {loss}\n\n\
             [[fault]]\nkind = \"duplicate\"\nsite = \"tokyo\"\nrate = {dup}\n\n\
             [[fault]]\nkind = \"partition\"\nsite = \"{site}\"\nfrom = \"{from}\"\nto = \"{to}\"\n"
        );
        let sc = load(&format!("{SMALL}\n{faults}"));
        let s = run(&sc, Strategy::Tiered, Some(seed)).summary;
        prop_assert_eq!(s.clients.up_to_date_at_end, 70);
        prop_assert_eq!(s.propagation_seconds.never_applied, 0);
    }
}
