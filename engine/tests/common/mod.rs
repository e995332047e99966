//! Helpers shared by the engine's integration tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::Duration;

use tiersync_engine::message::Scope;
use tiersync_engine::outbox::{Observation, Rejection, StatusAnswer};
use tiersync_engine::stats::{ClientRecord, SiteStats};
use tiersync_engine::testkit::{Fleet, SiteSpec};
use tiersync_engine::{
    Blob, Local, MessageKind, Name, Node, NodeId, Outbox, Params, PolicyChange, Revision,
    ServeMode, StatusKind, StoredUpload, Time, Value,
};

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

/// Runs an operator command on a local server.
pub fn at_local<R>(
    f: &mut Fleet,
    site: &str,
    cmd: impl FnOnce(&mut Local, Time, &mut Outbox) -> R,
) -> R {
    let id = f.locals[site];
    f.h.with(id, |n, now, out| match n {
        Node::Local(l) => cmd(l, now, out),
        _ => unreachable!(),
    })
}

/// Synchronises a local server with its parent now.
pub fn sync_now(f: &mut Fleet, site: &str) {
    at_local(f, site, |l, now, out| l.handle_sync_now(now, out));
}

/// Makes a local server ask its parent for new policies now.
pub fn fetch_now(f: &mut Fleet, site: &str) {
    at_local(f, site, |l, now, out| l.handle_fetch_now(now, out));
}

/// Makes a client poll its server now.
pub fn poll_now(f: &mut Fleet, client: NodeId) {
    f.h.with(client, |n, now, out| match n {
        Node::Client(c) => c.handle_poll_now(now, out),
        _ => unreachable!(),
    });
}

/// Asks the master for status and waits for the answer (past the
/// deadline at most).
pub fn status(f: &mut Fleet, query: u64, kind: StatusKind, scope: Scope) -> StatusAnswer {
    let m = f.master;
    let mark = f.h.observations.len();
    f.h.with(m, |n, now, out| match n {
        Node::Master(m) => m.handle_status_query(now, query, kind, scope, out),
        _ => unreachable!(),
    });
    f.h.run_for(Duration::from_secs(31), STEPS).unwrap();
    f.h.observations[mark..]
        .iter()
        .find_map(|(_, n, o)| match o {
            Observation::StatusAnswered { query: q, answer } if *n == m && *q == query => {
                Some(answer.clone())
            }
            _ => None,
        })
        .expect("the query was answered by its deadline")
}

/// Everything a master keeps that input could change.
#[derive(Debug, PartialEq)]
pub struct MasterSnapshot {
    pub current: Revision,
    pub policies: Vec<(Name, Revision)>,
    pub history: Vec<StoredUpload>,
    pub latest: Vec<SiteStats>,
    pub clients: Vec<(NodeId, ClientRecord)>,
    pub accepted: Vec<(NodeId, u64, Revision)>,
}

pub fn master_snapshot(f: &Fleet) -> MasterSnapshot {
    let m = f.h.master(f.master);
    MasterSnapshot {
        current: m.store().current(),
        policies: m.store().iter().map(|h| (h.id().clone(), h.revision())).collect(),
        history: m.history().to_vec(),
        latest: m.latest_stats().cloned().collect(),
        clients: m.clients().iter().map(|(id, r)| (id, r.clone())).collect(),
        accepted: m.accepted().collect(),
    }
}

/// Everything a local server keeps that input could change.
#[derive(Debug, PartialEq)]
pub struct LocalSnapshot {
    pub current: Revision,
    pub policies: Vec<(Name, Revision)>,
    pub clients: Vec<(NodeId, ClientRecord)>,
    pub child_stats: Vec<(NodeId, SiteStats)>,
    pub proposals: Vec<(u64, PolicyChange)>,
    pub seq: (u64, u64),
    pub rejected: u64,
}

pub fn local_snapshot(f: &Fleet, site: &str) -> LocalSnapshot {
    let l = f.h.local(f.locals[site]);
    LocalSnapshot {
        current: l.store().current(),
        policies: l.store().iter().map(|h| (h.id().clone(), h.revision())).collect(),
        clients: l.clients().iter().map(|(id, r)| (id, r.clone())).collect(),
        child_stats: l.child_stats().map(|(c, s)| (c, s.clone())).collect(),
        proposals: l.proposals().map(|(p, c)| (p, c.clone())).collect(),
        seq: (l.stats_seq(), l.stats_acked()),
        rejected: l.rejected_by_server(),
    }
}

/// Asserts every local server holds exactly the master's signed revisions
/// and is up to the master's revision.
pub fn assert_locals_agree(f: &Fleet) {
    let master = f.h.master(f.master).store();
    let want: Vec<_> = master.iter().map(|h| h.full.clone()).collect();
    for (site, id) in &f.locals {
        let l = f.h.local(*id);
        let got: Vec<_> = l.store().iter().map(|h| h.full.clone()).collect();
        assert_eq!(got, want, "local server of {site}");
        assert_eq!(l.store().current(), master.current(), "local server of {site}");
    }
}

/// Rejections observed at `node` since observation index `mark`.
pub fn rejections_since(f: &Fleet, node: NodeId, mark: usize) -> Vec<(NodeId, Rejection)> {
    f.h.observations[mark..]
        .iter()
        .filter(|(_, n, _)| *n == node)
        .filter_map(|(_, _, o)| match o {
            Observation::Rejected { peer, reason } => Some((*peer, reason.clone())),
            _ => None,
        })
        .collect()
}

/// Messages of `kind` delivered to `to` since `since`.
pub fn delivered_to(f: &Fleet, to: NodeId, kind: MessageKind, since: Time) -> usize {
    f.h.delivered.iter().filter(|d| d.0 >= since && d.2 == to && d.3 == kind).count()
}

/// Messages of `kind` sent by `from` since `since`.
pub fn sent_by(f: &Fleet, from: NodeId, kind: MessageKind, since: Time) -> usize {
    f.h.delivered.iter().filter(|d| d.0 >= since && d.1 == from && d.3 == kind).count()
}

/// Every message about to be delivered from now on: `(from, to, message)`.
pub type Tap = std::rc::Rc<std::cell::RefCell<Vec<(NodeId, NodeId, tiersync_engine::Message)>>>;

/// Installs a filter that records every message (also those to nodes not
/// in the harness) and drops the fleet clients' own reports, which would
/// otherwise change client tables legitimately during a test's window.
pub fn tap_quiet(f: &mut Fleet) -> Tap {
    let tap: Tap = Default::default();
    let seen = tap.clone();
    let clients = f.all_clients();
    f.h.set_filter(Box::new(move |_, from, to, msg| {
        seen.borrow_mut().push((from, to, msg.clone()));
        match msg {
            tiersync_engine::Message::Report { .. } if clients.contains(&from) => {
                tiersync_engine::testkit::Verdict::Drop
            }
            _ => tiersync_engine::testkit::Verdict::Deliver,
        }
    }));
    tap
}

/// The messages a tap saw delivered to `to`.
pub fn tapped_to(tap: &Tap, to: NodeId) -> Vec<tiersync_engine::Message> {
    tap.borrow().iter().filter(|(_, t, _)| *t == to).map(|(_, _, m)| m.clone()).collect()
}
