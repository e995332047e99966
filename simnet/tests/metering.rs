//! Metering on a second thread changes no number: a run that counts and
//! hashes on the simulating thread and one that hands the counting to a
//! metering thread give the same trace hash, the same JSON (but for wall
//! time) and the same detail, fault and all.

use std::path::Path;

use proptest::prelude::*;
use tiersync_simnet::output::RunOutput;
use tiersync_simnet::scenario::{Scenario, Strategy};
use tiersync_simnet::world::{self, NoHooks, RunOptions};

fn bundled(name: &str) -> Scenario {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios").join(name);
    Scenario::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn run(sc: &Scenario, strategy: Strategy, seed: Option<u64>, single_thread: bool) -> RunOutput {
    let opts = RunOptions { strategy, seed, keep_detail: true, single_thread };
    world::run(sc, &opts, &mut NoHooks)
}

/// The JSON of a run without its wall time, and its detail, as text.
fn results(out: &RunOutput) -> (serde_json::Value, String) {
    let mut json = serde_json::to_value(&out.summary).expect("a summary serialises");
    json.as_object_mut().expect("an object").remove("wall_seconds");
    (json, format!("{:?}", out.detail))
}

fn same_either_way(sc: &Scenario, strategy: Strategy, seed: Option<u64>) {
    let inline = run(sc, strategy, seed, true);
    let threaded = run(sc, strategy, seed, false);
    assert_eq!(inline.summary.trace_hash, threaded.summary.trace_hash, "{strategy:?}");
    let (a, b) = (results(&inline), results(&threaded));
    assert_eq!(a.0, b.0, "JSON differs under {strategy:?}");
    assert!(a.1 == b.1, "detail differs under {strategy:?}");
}

/// Loss, a partition in a sync window, a crash and restart: every path of
/// the metering (lost messages, observations, deferred changes).
#[test]
fn flaky_wan_is_the_same_on_one_thread_or_two() {
    let sc = bundled("flaky-wan.toml");
    for strategy in [Strategy::Tiered, Strategy::FlatConditional] {
        same_either_way(&sc, strategy, None);
    }
}

/// Laptops switched off for days, and a three-level tree.
#[test]
fn offline_fleet_and_regional_tier_are_the_same_on_one_thread_or_two() {
    same_either_way(&bundled("offline-fleet.toml"), Strategy::Tiered, None);
    same_either_way(&bundled("regional-tier.toml"), Strategy::Tiered, None);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3, ..ProptestConfig::default() })]

    /// Whatever the seed, the two ways agree.
    #[test]
    fn any_seed_is_the_same_on_one_thread_or_two(seed in any::<u64>()) {
        same_either_way(&bundled("figure-1.toml"), Strategy::Tiered, Some(seed));
    }
}
