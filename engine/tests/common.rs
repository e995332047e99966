//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use tiersync_engine::testkit::{Fleet, SiteSpec};
use tiersync_engine::{Blob, Name, Node, Params, PolicyChange, Revision, ServeMode, Time, Value};

pub const HOUR: Duration = Duration::from_secs(3600);
pub const DAY: Duration = Duration::from_secs(86_400);
pub const STEPS: usize = 5_000_000;

pub fn t(s: &str) -> Time {
    Time::from_jiff(s.parse().unwrap())
}

pub fn start() -> Time {
    t("2026-03-02T00:00:00Z")
}

pub fn params(pairs: &[(&str, Value)]) -> Params {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

pub fn s(v: &str) -> Value {
    Value::Str(v.into())
}

/// Two sites below the master, a few clients each.
pub fn two_sites() -> Vec<SiteSpec> {
    vec![
        SiteSpec {
            name: "london",
            tz: "Europe/London",
            parent: None,
            clients: vec![("windows", 3), ("macos", 2)],
        },
        SiteSpec {
            name: "tokyo",
            tz: "Asia/Tokyo",
            parent: None,
            clients: vec![("windows", 3), ("linux", 2)],
        },
    ]
}

pub fn antivirus(content_seed: u64) -> PolicyChange {
    PolicyChange {
        id: Name::new("antivirus"),
        params: Some(params(&[("scan", s("daily")), ("heuristics", Value::Bool(true))])),
        content: Some(Blob::filler(2048, content_seed)),
        platforms: Some(vec![Name::new("windows"), Name::new("macos"), Name::new("linux")]),
        ..Default::default()
    }
}

pub fn firewall() -> PolicyChange {
    PolicyChange {
        id: Name::new("firewall"),
        params: Some(params(&[("default_inbound", s("deny"))])),
        content: Some(Blob::filler(512, 99)),
        platforms: Some(vec![Name::new("windows")]),
        ..Default::default()
    }
}

/// Sets a policy at the master; returns its revision.
pub fn set_at_master(f: &mut Fleet, change: PolicyChange, proposal: u64) -> Revision {
    let m = f.master;
    f.h.with(m, |n, now, out| match n {
        Node::Master(m) => m.handle_set_policy(now, change, proposal, out).expect("accepted"),
        _ => unreachable!(),
    })
}

/// Creates a policy at a local server.
pub fn set_at_local(f: &mut Fleet, site: &str, change: PolicyChange, proposal: u64) {
    let id = f.locals[site];
    f.h.with(id, |n, now, out| match n {
        Node::Local(l) => l.handle_set_policy(now, change, proposal, out),
        _ => unreachable!(),
    })
}

pub fn tiered(sites: &[SiteSpec]) -> Fleet {
    Fleet::build(start(), sites, true, ServeMode::Conditional, |c| {
        c.policy_check = Some(Duration::from_secs(6 * 3600));
    })
}

/// Asserts every client enforces exactly the derivation of the master's
/// set for its site and platform.
pub fn assert_converged(f: &Fleet) {
    let master = f.h.master(f.master);
    for id in f.all_clients() {
        let c = f.h.client(id);
        let p = c.profile();
        let mut want: BTreeMap<Name, (Revision, Params)> = BTreeMap::new();
        for held in master.store().iter() {
            let spec = &held.full.record.spec;
            if spec.applies_to(&p.platform) {
                let scope = spec.scope_for(&p.site);
                let params = spec.derive_params(scope.as_ref(), &p.platform);
                want.insert(held.id().clone(), (held.revision(), params));
            }
        }
        let got: BTreeMap<Name, (Revision, Params)> =
            c.applied().iter().map(|e| (e.id.clone(), (e.revision, e.params.clone()))).collect();
        assert_eq!(got, want, "client {id} at {} ({})", p.site, p.platform);
        for e in c.applied() {
            let held = master.store().get(&e.id).unwrap();
            assert_eq!(e.content.as_ref().map(|b| b.digest()), Some(held.content.digest()));
        }
    }
}
