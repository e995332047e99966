//! The scenarios shipped in `scenarios/` load from disk as documented in
//! `scenarios/README.md`.

use std::path::{Path, PathBuf};

use tiersync_simnet::scenario::{Scenario, ScenarioError, Strategy};
use tiersync_simnet::units::{ByteSize, Span};

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
