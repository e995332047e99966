//! End-to-end tests of the simulator: determinism, the flat baseline's
//! poll count, the sync window following daylight saving, and convergence
//! of the tiered strategy under loss, duplication and partitions.

use proptest::prelude::*;
use tiersync_simnet::output::{FetchKind, RunOutput, RunSummary};
use tiersync_simnet::scenario::{Scenario, Strategy};
use tiersync_simnet::world::{self, Hooks, NoHooks, RunOptions, TraceRow};

fn load(text: &str) -> Scenario {
    Scenario::from_str_named(text, "test.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn run(sc: &Scenario, strategy: Strategy, seed: Option<u64>) -> RunOutput {
    let opts = RunOptions { strategy, seed, keep_detail: true, single_thread: false };
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

/// A clock skew of +1 h at Tokyo's local server moves each of its syncs
/// exactly one hour earlier in UTC: the server keeps its 02:00-04:00
/// window by its own clock, which reads an hour ahead. Checks are off so
/// that the server draws its random offsets in the same order in both
/// runs, which makes the two schedules comparable sync by sync.
#[test]
fn a_skewed_local_server_syncs_by_its_own_clock() {
    let base = SMALL.replace("policy_check = \"6h\"\n", "");
    let skew = "[[fault]]\nkind = \"skew\"\nsite = \"tokyo\"\nnode = \"local\"\n\
                offset = \"+1h\"\n";
    let tokyo_syncs = |text: &str| -> Vec<f64> {
        let sc = load(text);
        let tokyo = sc.site_index("tokyo").unwrap();
        let out = run(&sc, Strategy::Tiered, None);
        out.detail.syncs.iter().filter(|(site, _)| *site == tokyo).map(|(_, t)| *t).collect()
    };
    let plain = tokyo_syncs(&base);
    let skewed = tokyo_syncs(&format!("{base}\n{skew}"));
    // One sync a day in both, the first at 02:00-04:00 Tokyo (17:00-19:00
    // UTC) without the skew, at 16:00-18:00 UTC with it.
    assert_eq!((plain.len(), skewed.len()), (3, 3), "{plain:?} {skewed:?}");
    for (p, s) in plain.iter().zip(&skewed) {
        assert!((p - s - 3600.0).abs() < 1e-3, "sync at {p} moved to {s}, not 1 h earlier");
    }
}

/// A local server that crashes and restarts keeps its store: its first
/// policy request after the restart names the revision it holds, and the
/// master answers with a delta of the one policy changed while it was
/// down, not a snapshot of both (which a server that had lost its store
/// would get, asking from revision zero).
#[test]
fn a_restarted_local_server_gets_a_delta() {
    // London's server is down 12:00-16:00 UTC; the antivirus change is
    // made at the master at 14:00, in the middle of it.
    let crash = "[[fault]]\nkind = \"crash\"\nsite = \"london\"\nnode = \"local\"\n\
                 at = \"2026-03-02T12:00:00Z\"\nrestart_after = \"4h\"\n";
    let sc = load(&format!("{SMALL}\n{crash}"));
    let london = sc.site_index("london").unwrap();
    let out = run(&sc, Strategy::Tiered, None);
    let restart = 1_772_409_600.0 + 16.0 * 3600.0; // 2026-03-02T16:00Z
    let mine: Vec<_> = out.detail.fetches.iter().filter(|r| r.site == london).collect();
    // Before the crash: the initial download of the whole set, both policies.
    assert_eq!(mine[0].kind, FetchKind::Initial);
    assert_eq!(mine[0].revisions, 2, "{:?}", mine[0]);
    let first = mine.iter().find(|r| r.at_unix >= restart).expect("a request after the restart");
    assert_ne!(first.kind, FetchKind::Initial, "asked from revision zero: {first:?}");
    assert!(first.answered_unix.is_some(), "{first:?}");
    assert_eq!(first.revisions, 1, "a delta of the antivirus change only: {first:?}");
    assert_eq!(mine.iter().filter(|r| r.kind == FetchKind::Initial).count(), 1);
    assert_eq!(out.summary.clients.up_to_date_at_end, 70);
}

/// A `loss` fault's rate replaces the link's own `wan.loss` in its window,
/// rather than adding to it: a fault of rate 0 on a link that loses a
/// fifth of its messages makes it lose none from `from` to `to`, while it
/// loses as configured outside. A `duplicate` fault likewise replaces
/// `wan.duplicate`. (Documented in scenarios/README.md, [[fault]].)
#[test]
fn link_faults_replace_the_links_rates() {
    let lossy = SMALL.replacen(
        "latency = \"80ms\", background",
        "latency = \"80ms\", loss = 0.2, duplicate = 0.2, background",
        1,
    );
    assert_ne!(lossy, SMALL);
    let faults = "[[fault]]\nkind = \"loss\"\nsite = \"london\"\nrate = 0\n\
                  from = \"2026-03-03T00:00:00Z\"\nto = \"2026-03-04T00:00:00Z\"\n\n\
                  [[fault]]\nkind = \"duplicate\"\nsite = \"london\"\nrate = 0\n";
    let (from, to) = (1_772_409_600 + 86_400, 1_772_409_600 + 2 * 86_400);
    for (text, faulted) in [(lossy.clone(), false), (format!("{lossy}\n{faults}"), true)] {
        // Flat: london's 40 clients poll over the link, hundreds a day.
        let mut rows = Timed::default();
        let opts = RunOptions {
            strategy: Strategy::Flat,
            seed: None,
            keep_detail: false,
            single_thread: false,
        };
        world::run(&load(&text), &opts, &mut rows);
        let lost_in = |inside: bool| {
            let in_window = |t: i64| t >= from && t < to;
            rows.rows.iter().filter(|r| r.1 == "lost" && r.2 && in_window(r.0) == inside).count()
        };
        let copies = rows.rows.iter().filter(|r| r.3).count();
        assert!(lost_in(false) > 100, "london loses outside the window: {}", lost_in(false));
        if faulted {
            assert_eq!(lost_in(true), 0, "the rate-0 fault should leave no loss in its window");
            assert_eq!(copies, 0, "the rate-0 duplicate fault should leave no copies");
        } else {
            assert!(lost_in(true) > 100, "without the fault: {}", lost_in(true));
            assert!(copies > 100, "without the fault: {copies} copies");
        }
    }
}

/// Trace rows with their time: (Unix seconds, outcome, on london's WAN
/// link, copy).
#[derive(Default)]
struct Timed {
    rows: Vec<(i64, &'static str, bool, bool)>,
}

impl Hooks for Timed {
    fn wants_trace(&self) -> bool {
        true
    }

    fn delivered(&mut self, r: &TraceRow<'_>) {
        let london = r.wan_links.split(';').any(|l| l == "london");
        self.rows.push((r.at.as_secs(), r.outcome, london, r.copy));
    }
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

/// SMALL with a local server crash at `tokyo` from 09:00, for `restart`.
fn tokyo_local_down(restart: &str) -> Scenario {
    let fault = format!(
        "[[fault]]\nkind = \"crash\"\nsite = \"tokyo\"\nnode = \"local\"\n\
         at = \"2026-03-03T09:00:00Z\"\nrestart_after = \"{restart}\"\n"
    );
    load(&format!("{SMALL}\n{fault}"))
}

/// A change due at a local server that is down is made when it is back,
/// late; one whose server never comes back is dropped. Either way its
/// affected clients are counted, and those that never got it show.
#[test]
fn changes_at_a_down_local_server_wait_or_are_dropped() {
    // Down 09:00-10:00: the 09:30 firewall change is made at 10:00.
    let s = run(&tokyo_local_down("1h"), Strategy::Tiered, None).summary;
    assert_eq!((s.changes.total, s.changes.deferred, s.changes.dropped), (2, 1, 0));
    assert_eq!(s.changes.unassigned, 0);
    // 70 clients take the antivirus change, the 50 windows ones the firewall.
    assert_eq!(s.propagation_seconds.count, 70 + 50);
    assert_eq!(s.propagation_seconds.never_applied, 0);

    // Down until after the end: never made, 50 windows clients never got it.
    let s = run(&tokyo_local_down("3d"), Strategy::Tiered, None).summary;
    assert_eq!((s.changes.deferred, s.changes.dropped, s.changes.unassigned), (1, 1, 1));
    assert_eq!(s.propagation_seconds.count, 70);
    assert_eq!(s.propagation_seconds.never_applied, 50);
}

/// The LAN carries a server's answers down and its clients' requests up;
/// the master's own clients are served by a local server on that LAN.
#[test]
fn lan_directions_and_the_master_sites_local_server() {
    let text = SMALL.replacen(
        "timezone = \"America/New_York\"",
        "timezone = \"America/New_York\"\nclients = { linux = 10 }",
        1,
    );
    let s = run(&load(&text), Strategy::Tiered, None).summary;
    assert_eq!(s.clients.up_to_date_at_end, 80);
    assert_eq!(s.propagation_seconds.never_applied, 0);
    let hq_local = s.servers.iter().find(|v| v.role == "local" && v.site == "hq");
    let hq_local = hq_local.expect("a local server at the master's site");
    // Its ten clients poll it hourly, not the master.
    assert!(hq_local.messages_in > 10 * 3 * 24, "{hq_local:?}");
    assert!(s.master.messages_in < 100, "{:?}", s.master);
    for lan in s.links.iter().filter(|l| !l.wan) {
        if lan.site == "hq" || lan.site == "london" {
            // Policy updates go down, polls and reports up, as messages.
            assert!(lan.down.messages > 0 && lan.up.messages > 0, "{lan:?}");
        }
    }
    let london = s.links.iter().find(|l| l.name == "lan:london").unwrap();
    assert!(london.down.bytes > london.up.bytes / 10, "{london:?}");
}

/// Per-node and per-link totals add up to the message counts.
#[test]
fn client_server_and_link_totals_add_up() {
    for strategy in [Strategy::Tiered, Strategy::FlatConditional] {
        let s = run(&load(SMALL), strategy, None).summary;
        let sent: u64 = s.by_kind.values().map(|k| k.messages).sum();
        let sent_bytes: u64 = s.by_kind.values().map(|k| k.bytes).sum();
        let out: u64 = s.servers.iter().map(|v| v.messages_out).sum::<u64>()
            + s.client_groups.iter().map(|g| g.messages_out).sum::<u64>();
        let out_bytes: u64 = s.servers.iter().map(|v| v.bytes_out).sum::<u64>()
            + s.client_groups.iter().map(|g| g.bytes_out).sum::<u64>();
        let received: u64 = s.servers.iter().map(|v| v.messages_in).sum::<u64>()
            + s.client_groups.iter().map(|g| g.messages_in).sum::<u64>();
        assert_eq!((out, out_bytes), (sent, sent_bytes), "{strategy}");
        assert_eq!(received, s.delivered_messages, "{strategy}");
        let groups: Vec<_> =
            s.client_groups.iter().map(|g| (g.site.as_str(), g.platform.as_str())).collect();
        assert_eq!(
            groups,
            [("london", "macos"), ("london", "windows"), ("tokyo", "linux"), ("tokyo", "windows")]
        );
        assert_eq!(s.client_groups.iter().map(|g| g.clients).sum::<u64>(), 70);
        assert!(s.client_groups.iter().all(|g| g.messages_out > 0 && g.bytes_in > 0));

        let wan = s.links.iter().filter(|l| l.wan);
        let (bytes, msgs) = wan.fold((0, 0), |(b, m), l| {
            (b + l.down.bytes + l.up.bytes, m + l.down.messages + l.up.messages)
        });
        assert_eq!((bytes, msgs), (s.wan.bytes, s.wan.messages), "{strategy}");
    }
}

/// The per-kind and per-node time series of a run's detail, summed over
/// their buckets, give the run's per-kind, per-server and per-group totals
/// to the byte and message, and they spread over many one-minute buckets.
#[test]
fn kind_and_node_series_add_up_to_the_totals() {
    let sc = load(SMALL);
    for strategy in [Strategy::Tiered, Strategy::Flat] {
        let out = run(&sc, strategy, None);
        let (s, d) = (&out.summary, &out.detail);
        assert_eq!(d.bucket_seconds, 60, "the default bucket");
        let buckets = 3 * 24 * 60 + 1;

        let mut kinds = std::collections::BTreeMap::<String, (u64, u64)>::new();
        for r in &d.kind_series {
            assert!((r.bucket as usize) < buckets && r.messages > 0, "{r:?}");
            let e = kinds.entry(r.kind.as_str().to_owned()).or_default();
            e.0 += r.bytes;
            e.1 += r.messages;
        }
        for (name, k) in &s.by_kind {
            let got = kinds.remove(name).unwrap_or_default();
            assert_eq!(got, (k.bytes, k.messages), "{strategy}: kind {name}");
        }
        assert!(kinds.is_empty(), "{strategy}: kinds not in by_kind: {kinds:?}");
        let poll_buckets = d.kind_series.iter().filter(|r| r.kind.as_str() == "poll").count();
        assert!(poll_buckets > 24 * 3, "{strategy}: polls in {poll_buckets} buckets");

        // Nodes: the servers in the JSON's order, then the client groups.
        assert_eq!(d.nodes.len(), s.servers.len() + s.client_groups.len(), "{strategy}");
        let mut want = Vec::new();
        for (n, v) in d.nodes.iter().zip(&s.servers) {
            let name = if v.role == "master" { "master" } else { v.site.as_str() };
            assert_eq!((n.name.as_str(), &n.role, &n.site), (name, &v.role, &v.site));
            assert_eq!(n.platform, "");
            want.push([v.bytes_in, v.bytes_out, v.messages_in, v.messages_out]);
        }
        for (n, g) in d.nodes[s.servers.len()..].iter().zip(&s.client_groups) {
            assert_eq!(n.name, format!("{}/{}", g.site, g.platform));
            assert_eq!((n.role.as_str(), &n.site, &n.platform), ("clients", &g.site, &g.platform));
            want.push([g.bytes_in, g.bytes_out, g.messages_in, g.messages_out]);
        }
        let mut got = vec![[0u64; 4]; d.nodes.len()];
        for r in &d.node_series {
            assert!((r.bucket as usize) < buckets, "{r:?}");
            let row = [r.bytes_in, r.bytes_out, r.messages_in, r.messages_out];
            for (sum, v) in got[r.node as usize].iter_mut().zip(row) {
                *sum += v;
            }
        }
        assert_eq!(got, want, "{strategy}: [bytes_in, bytes_out, messages_in, messages_out]");
        // The master's row is, bucket by bucket, the master's own series.
        let master =
            d.master_series.iter().enumerate().filter(|(_, m)| m.messages_in + m.messages_out > 0);
        let master: Vec<_> = master
            .map(|(b, m)| (b as u32, m.bytes_in, m.bytes_out, m.messages_in, m.messages_out))
            .collect();
        let node0 = d.node_series.iter().filter(|r| r.node == 0);
        let node0: Vec<_> = node0
            .map(|r| (r.bucket, r.bytes_in, r.bytes_out, r.messages_in, r.messages_out))
            .collect();
        assert!(node0.len() > 10, "{strategy}: master busy in {} buckets", node0.len());
        assert_eq!(node0, master, "{strategy}");
    }
}

/// A run that does not keep its detail (`tiersync run`, the benchmarks)
/// keeps no per-kind or per-node series, and its numbers are those of one
/// that does.
#[test]
fn without_the_detail_no_kind_or_node_series_are_kept() {
    let sc = load(SMALL);
    for strategy in [Strategy::Tiered, Strategy::Flat] {
        let opts = RunOptions { strategy, seed: None, keep_detail: false, single_thread: false };
        let plain = world::run(&sc, &opts, &mut NoHooks);
        let d = &plain.detail;
        assert!(d.kind_series.is_empty() && d.node_series.is_empty(), "{strategy}");
        assert!(d.nodes.is_empty(), "{strategy}");
        let mut a = plain.summary;
        let mut b = run(&sc, strategy, None).summary;
        a.wall_seconds = 0.0;
        b.wall_seconds = 0.0;
        assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    }
}

/// A trace that keeps what every row says.
#[derive(Default)]
struct Rows {
    rows: Vec<(String, u64, bool, String)>,
}

impl Hooks for Rows {
    fn wants_trace(&self) -> bool {
        true
    }

    fn delivered(&mut self, r: &TraceRow<'_>) {
        self.rows.push((r.outcome.to_owned(), r.wan_bytes, r.copy, r.wan_links.clone()));
    }
}

/// SMALL with a relay hub above london, a site below tokyo, jitter, loss,
/// duplicates, a partition, crashes and an urgent change.
fn faulty() -> Scenario {
    let mut text = faulty_sites().replacen("#tokyo-wan", ", jitter = \"80ms\"", 1);
    for site in IMPAIRED {
        text = text.replacen(&format!("#{site}-wan"), "", 1);
    }
    let text = text.replacen("origin = \"hq\"", "origin = \"hq\"\nurgent = true", 1);
    let faults = r#"
[[fault]]
kind = "loss"
site = "london"
rate = 0.05

[[fault]]
kind = "loss"
site = "eu"
rate = 0.02

[[fault]]
kind = "duplicate"
site = "tokyo"
rate = 0.05

[[fault]]
kind = "partition"
site = "osaka"
from = "2026-03-03T01:00:00Z"
to = "2026-03-03T05:00:00Z"

[[fault]]
kind = "crash"
site = "eu"
node = "local"
at = "2026-03-03T01:00:00Z"
restart_after = "4h"

[[fault]]
kind = "crash"
site = "tokyo"
node = "clients"
at = "2026-03-02T14:00:20Z"
restart_after = "10m"
"#;
    load(&format!("{text}\n{faults}"))
}

/// Summing the trace's `wan_bytes` gives `wan.bytes` exactly: delivered
/// messages, lost ones (with the links they got onto), copies, and the
/// ACKs and handshake bytes flowing back.
#[test]
fn trace_rows_add_up_to_wan_bytes() {
    let sc = faulty();
    for strategy in [Strategy::Tiered, Strategy::Flat] {
        let mut rows = Rows::default();
        let opts = RunOptions { strategy, seed: None, keep_detail: false, single_thread: false };
        let s: RunSummary = world::run(&sc, &opts, &mut rows).summary;
        let total: u64 = rows.rows.iter().map(|r| r.1).sum();
        assert_eq!(total, s.wan.bytes, "{strategy}");
        let count = |outcome: &str| rows.rows.iter().filter(|r| r.0 == outcome).count() as u64;
        let lost = count("lost") + count("partitioned") + count("receiver_down");
        assert_eq!(lost, s.lost_messages, "{strategy}");
        assert!(count("lost") > 0 && count("partitioned") > 0, "{strategy}");
        // Lost on a link, the message still cost bytes on it.
        assert!(rows.rows.iter().any(|r| r.0 == "lost" && r.1 > 0), "{strategy}");
        assert!(rows.rows.iter().any(|r| r.2 && r.1 == 0), "copies carry no bytes");
        // Flat clients at osaka cross two WAN links.
        if strategy == Strategy::Flat {
            assert!(rows.rows.iter().any(|r| r.3 == "osaka;tokyo"), "{strategy}");
        } else {
            assert!(count("receiver_down") > 0, "the eu local server was down");
            assert_eq!(s.clients.up_to_date_at_end, 75);
        }
    }
}

/// A wake-up opens a connection of its own from the server: the client's
/// side of the handshake and teardown flows back, not with the wake-up.
#[test]
fn a_wake_ups_far_side_of_the_handshake_goes_back() {
    let urgent = load(&SMALL.replacen("origin = \"hq\"", "origin = \"hq\"\nurgent = true", 1));
    let s = run(&urgent, Strategy::Tiered, None).summary;
    let wake = &s.by_kind["wake"];
    // Two to local servers on their kept connections, 70 to clients.
    assert_eq!(wake.messages, 72);
    // Each small wake-up is one TLS record (22 bytes) in one segment (52),
    // and each acknowledged by one pure ACK (52). A client's wake-up adds
    // the server's SYN, handshake flights and close (1663 + 180) forward
    // and the client's (1527 + 128) back.
    assert_eq!(wake.bytes, wake.app_bytes + 72 * (22 + 52) + 70 * (1663 + 180));
    assert_eq!(wake.reverse_bytes, 72 * 52 + 70 * (1527 + 128));
}

/// `client.wake_splay` bounds how long a client waits after a wake-up.
#[test]
fn wake_splay_is_read_from_the_scenario() {
    let base = SMALL.split("[[change]]").next().unwrap();
    let with = |splay: &str| {
        let client = format!("inventory = \"1KiB\"\nwake_splay = \"{splay}\"");
        let change = "[[change]]\nat = \"2026-03-02T14:00:00Z\"\npolicy = \"antivirus\"\n\
                      content = \"50KiB\"\nurgent = true\n";
        load(&format!("{}\n{change}", base.replace("inventory = \"1KiB\"", &client)))
    };
    let quick = run(&with("1s"), Strategy::Tiered, None).summary.propagation_seconds;
    let slow = run(&with("40m"), Strategy::Tiered, None).summary.propagation_seconds;
    assert_eq!((quick.count, slow.count), (70, 70));
    assert!(quick.max < 120.0, "{quick:?}");
    assert!(slow.max > 600.0 && slow.max <= 40.0 * 60.0 + 120.0, "{slow:?}");
}

/// The WAN links the convergence property test may impair: a relay hub,
/// the site below it, a site with clients and one below that.
const IMPAIRED: [&str; 4] = ["eu", "london", "tokyo", "osaka"];

/// Faults on one WAN link: loss rate, duplication rate, jitter in ms.
type LinkFaults = (Option<f64>, Option<f64>, Option<u32>);

/// SMALL with a relay hub `eu` above london and `osaka` below tokyo, each
/// WAN link given `links` faults, and `partitions` as (link, start hour
/// from the start, hours).
fn impaired(links: &[LinkFaults; 4], partitions: &[(usize, u32, u32)]) -> String {
    let mut text = faulty_sites();
    for (site, (_, _, jitter)) in IMPAIRED.iter().zip(links) {
        if let Some(ms) = jitter {
            let marker = format!("#{site}-wan");
            text = text.replacen(&marker, &format!(", jitter = \"{ms}ms\""), 1);
        }
    }
    for site in IMPAIRED {
        text = text.replacen(&format!("#{site}-wan"), "", 1);
    }
    for (site, (loss, dup, _)) in IMPAIRED.iter().zip(links) {
        if let Some(rate) = loss {
            text += &format!("\n[[fault]]\nkind = \"loss\"\nsite = \"{site}\"\nrate = {rate}\n");
        }
        if let Some(rate) = dup {
            text +=
                &format!("\n[[fault]]\nkind = \"duplicate\"\nsite = \"{site}\"\nrate = {rate}\n");
        }
    }
    let start = 1_772_409_600;
    for &(link, from_h, len_h) in partitions {
        let from = jiff::Timestamp::from_second(start + i64::from(from_h) * 3600).unwrap();
        let to = jiff::Timestamp::from_second(from.as_second() + i64::from(len_h) * 3600).unwrap();
        let site = IMPAIRED[link];
        text += &format!(
            "\n[[fault]]\nkind = \"partition\"\nsite = \"{site}\"\n\
             from = \"{from}\"\nto = \"{to}\"\n"
        );
    }
    text
}

/// The sites of [`faulty`] without faults, each WAN table ending in a
/// `#<site>-wan` marker where a jitter key may go.
fn faulty_sites() -> String {
    SMALL
        .replacen(
            "[[site]]\nname = \"london\"\nparent = \"hq\"",
            "[[site]]\nname = \"eu\"\nparent = \"hq\"\ntimezone = \"Europe/Paris\"\n\
             wan = { bandwidth = \"20Mbit/s\", latency = \"40ms\"#eu-wan }\n\n\
             [[site]]\nname = \"london\"\nparent = \"eu\"",
            1,
        )
        .replacen("background = \"office\" }", "background = \"office\"#london-wan }", 1)
        .replacen(
            "wan = { bandwidth = \"5Mbit/s\", latency = \"170ms\" }",
            "wan = { bandwidth = \"5Mbit/s\", latency = \"170ms\"#tokyo-wan }\n\n\
             [[site]]\nname = \"osaka\"\nparent = \"tokyo\"\ntimezone = \"Asia/Tokyo\"\n\
             clients = { windows = 5 }\n\
             wan = { bandwidth = \"2Mbit/s\", latency = \"20ms\"#osaka-wan }",
            1,
        )
}

fn link_faults() -> impl proptest::strategy::Strategy<Value = LinkFaults> {
    (
        proptest::option::of(0.0f64..0.15),
        proptest::option::of(0.0f64..0.1),
        proptest::option::of(0u32..800),
    )
}

/// The property test's scenarios carry the faults it draws.
#[test]
fn impaired_scenarios_carry_the_faults_asked_for() {
    let all = (Some(0.1), Some(0.05), Some(300));
    let sc = load(&impaired(&[all; 4], &[(0, 3, 5), (3, 10, 2)]));
    assert_eq!(sc.faults.len(), 4 * 2 + 2);
    for site in IMPAIRED {
        let wan = sc.site(site).unwrap().wan.as_ref().unwrap();
        assert_eq!(wan.jitter, tiersync_simnet::units::Span::from_millis(300), "{site}");
    }
    let none = load(&impaired(&[(None, None, None); 4], &[]));
    assert!(none.faults.is_empty());
    assert!(IMPAIRED.iter().all(|s| none.site(s).unwrap().wan.as_ref().unwrap().jitter.is_zero()));
}

proptest! {
    // Each case simulates three days of 75 clients (about 30 ms optimised);
    // the count is bounded so that the test stays fast in CI.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Under loss, duplication and jitter (which reorders messages) on
    /// randomly chosen WAN links, relay tier and two-hop paths included,
    /// and up to two partitions of random links that heal at least a day
    /// before the end, every client of the tiered strategy ends on the
    /// master's final policies and every change reached every client.
    #[test]
    fn tiered_converges_under_faults(
        links in [link_faults(), link_faults(), link_faults(), link_faults()],
        partitions in proptest::collection::vec((0usize..4, 0u32..30, 1u32..18), 0..=2),
        seed in 0u64..1000,
    ) {
        let sc = load(&impaired(&links, &partitions));
        let s = run(&sc, Strategy::Tiered, Some(seed)).summary;
        prop_assert_eq!(s.clients.up_to_date_at_end, 75);
        prop_assert_eq!(s.propagation_seconds.never_applied, 0);
        prop_assert_eq!(s.changes.unassigned, 0);
    }
}
