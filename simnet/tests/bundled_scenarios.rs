//! The scenarios shipped in `scenarios/` load from disk as documented in
//! `scenarios/README.md`, and the smallest gives pinned results.

use std::path::{Path, PathBuf};

use tiersync_simnet::scenario::{Scenario, ScenarioError, Strategy};
use tiersync_simnet::units::{ByteSize, Span};
use tiersync_simnet::world::{self, NoHooks, RunOptions};

fn scenario_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name)
}

fn load(name: &str) -> Scenario {
    match Scenario::load(&scenario_path(name)) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn figure_1_loads_from_disk_with_overrides() {
    let path = scenario_path("figure-1.toml");
    let overrides = [("client.poll".to_owned(), "15m".to_owned())];
    let s = Scenario::load_with_overrides(&path, &overrides).unwrap();
    assert_eq!(s.client.poll, Span::from_mins(15));
    assert_eq!(s.total_clients(), 5400);
}

#[test]
fn scale_100k_has_the_documented_shape() {
    let s = load("scale-100k.toml");
    assert_eq!(s.total_clients(), 100_000);
    assert_eq!(s.sites.len(), 10);
    assert_eq!(s.duration, Span::from_secs(7 * 86_400));
    assert_eq!(s.strategy, Strategy::Tiered);
    assert_eq!(s.client.poll, Span::from_secs(3600));
    assert_eq!(s.client.status_every, Span::from_secs(3600));
    assert_eq!(s.policies.len(), 2);

    // Three tiers: sydney's parent is tokyo, whose parent is the root.
    let sydney = s.site_index("sydney").unwrap();
    let tokyo = s.sites[sydney].parent_index.unwrap();
    assert_eq!(s.sites[tokyo].name, "tokyo");
    assert_eq!(s.sites[tokyo].parent_index, Some(s.root_index()));

    // One antivirus change a day, each near 300 KiB, and one from a local.
    let antivirus: Vec<_> = s.changes.iter().filter(|c| c.policy == "antivirus").collect();
    assert_eq!(antivirus.len(), 7);
    let mut days: Vec<i64> = antivirus.iter().map(|c| c.at.as_secs() / 86_400).collect();
    days.dedup();
    assert_eq!(days.len(), 7);
    for change in antivirus {
        let size = change.content.unwrap_or(ByteSize::ZERO).bytes();
        assert!((290 * 1024..=310 * 1024).contains(&size), "{size}");
    }
    let local: Vec<_> = s.changes.iter().filter(|c| c.origin != "hq").collect();
    assert_eq!(local.len(), 1);
    assert_eq!(local[0].origin, "frankfurt");
}

#[test]
fn a_missing_file_is_a_read_error() {
    let err = Scenario::load(Path::new("no/such/scenario.toml")).unwrap_err();
    assert!(matches!(err, ScenarioError::Read { .. }));
    assert!(err.to_string().starts_with("no/such/scenario.toml: cannot read the scenario:"));
}

/// What [`replay_small_results_are_pinned`] pins of one run: strategy,
/// trace hash, WAN bytes, master messages in, events, applied pairs.
type Pinned = (&'static str, &'static str, u64, u64, u64, u64);

/// `replay-small.toml` (300 clients for a day, the smallest bundled
/// scenario) under each strategy, as `tiersync run --json` prints it and
/// `reports/replay-small/report.md` records the hashes.
const PINNED: [Pinned; 3] = [
    ("tiered", "8049d06cf4e4eb1a310048284dad0204", 291203, 47, 43386, 570),
    ("flat", "280e400f979a952e185d3f0ee95d0300", 537291030, 14400, 43205, 570),
    ("flat-conditional", "d4048f234b5c9237fdbbf5e5dea07e8e", 104229240, 14400, 43205, 570),
];

/// Golden values: the trace hash and a few totals of a bundled scenario
/// under each strategy. Determinism tests compare a run with itself; this
/// one catches a change that moves every run alike (a speed-up that
/// reorders events, a new random draw, a changed byte count), which would
/// silently make the committed reports wrong.
#[test]
fn replay_small_results_are_pinned() {
    let sc = load("replay-small.toml");
    let mut got = Vec::new();
    for (name, ..) in PINNED {
        let strategy = match name {
            "tiered" => Strategy::Tiered,
            "flat" => Strategy::Flat,
            _ => Strategy::FlatConditional,
        };
        let opts = RunOptions { strategy, seed: None, keep_detail: false, single_thread: false };
        let s = world::run(&sc, &opts, &mut NoHooks).summary;
        assert_eq!(s.strategy, name);
        got.push((
            name,
            s.trace_hash,
            s.wan.bytes,
            s.master.messages_in,
            s.events,
            s.propagation_seconds.count,
        ));
    }
    let want: Vec<_> =
        PINNED.iter().map(|&(n, h, b, m, e, c)| (n, h.to_owned(), b, m, e, c)).collect();
    assert!(
        got == want,
        "replay-small.toml no longer gives its pinned results.\n\
         If simulated behaviour changed on purpose, update PINNED in {} to:\n{}\n\
         and regenerate the committed reports (reports/regenerate.sh) in the same commit; \
         otherwise the change moved results it should not have.\nwas:\n{}",
        file!(),
        got.iter().map(|p| format!("    {p:?},")).collect::<Vec<_>>().join("\n"),
        want.iter().map(|p| format!("    {p:?},")).collect::<Vec<_>>().join("\n"),
    );
}
