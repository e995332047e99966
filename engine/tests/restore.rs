//! Restoring nodes from persisted state: what the TCP daemons do after a
//! crash. Each test removes a node from a running deployment, rebuilds it
//! from what its accessors expose, and checks that it carries on as if it
//! had never stopped.

mod common;

use common::*;
use tiersync_engine::outbox::Observation;
use tiersync_engine::{
    Client, ClientState, Local, LocalState, Master, MasterState, Node, PolicyChange, Revision,
};

/// A restored master keeps its revisions, refuses to apply a resent
/// proposal twice, and keeps its statistics history.
#[test]
fn master_restored_keeps_revisions_proposals_and_history() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    set_at_local(&mut f, "tokyo", firewall(), 7);
    f.h.run_for(2 * DAY, STEPS).unwrap();
    let before = f.h.master(f.master);
    let current = before.store().current();
    let history_len = before.history().len();
    assert!(history_len >= 2, "both sites uploaded");

    let Some(Node::Master(old)) = f.h.remove(f.master) else { panic!("master") };
    let state = MasterState {
        revisions: old.store().iter().cloned().collect(),
        accepted: old.accepted().collect(),
        history: old.history().to_vec(),
    };
    let tokyo_rev = old.accepted().find(|(_, p, _)| *p == 7).map(|(_, _, r)| r);
    f.h.add(Node::Master(Master::restore(old.config().clone(), state)));

    let m = f.h.master(f.master);
    assert_eq!(m.store().current(), current);
    assert_eq!(m.history().len(), history_len);
    assert_eq!(m.latest_stats().count(), 2);

    // An operator's proposal already accepted keeps its revision; a new
    // one gets the next.
    let tokyo = f.locals["tokyo"];
    let mut set = |proposal| {
        f.h.with(f.master, |n, now, out| match n {
            Node::Master(m) => m.handle_set_policy(now, firewall(), proposal, out).ok(),
            _ => None,
        })
    };
    assert!(set(1).is_some_and(|r| r < current), "proposal 1 was accepted before the restart");
    assert_eq!(set(2), Some(Revision(current.0 + 1)));

    // A local server's proposal resent after the restart is not applied
    // twice.
    f.h.inject(
        tokyo,
        f.master,
        tiersync_engine::Message::Propose {
            origin: tokyo,
            proposal: 7,
            change: Box::new(firewall()),
        },
    );
    f.h.run_for(HOUR, STEPS).unwrap();
    let m = f.h.master(f.master);
    assert_eq!(m.accepted().find(|(_, p, _)| *p == 7).map(|(_, _, r)| r), tokyo_rev);
    assert_eq!(m.store().current(), Revision(current.0 + 1));
    f.h.run_for(2 * DAY, STEPS).unwrap();
    assert_converged(&f);
}

/// A restored local server serves its clients from what it held, keeps
/// their reports, and still sends a proposal the master never answered.
#[test]
fn local_restored_keeps_store_clients_and_pending_proposals() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(2 * DAY, STEPS).unwrap();
    let london = f.locals["london"];

    // A proposal made while the master is unreachable stays pending.
    let master = f.h.remove(f.master).unwrap();
    set_at_local(&mut f, "london", firewall(), 3);
    let Some(Node::Local(old)) = f.h.remove(london) else { panic!("local") };
    assert_eq!(old.proposals().count(), 1);
    let state = LocalState {
        policies: old.store().iter().cloned().collect(),
        upto: old.store().current(),
        clients: old.clients().iter().map(|(id, r)| (id, r.clone())).collect(),
        child_stats: old.child_stats().map(|(c, s)| (c, s.clone())).collect(),
        proposals: old.proposals().map(|(p, c)| (p, c.clone())).collect(),
        stats_seq: old.stats_seq(),
        stats_acked: old.stats_acked(),
        rejected_by_server: old.rejected_by_server(),
    };
    let restored = Local::restore(old.config().clone(), state);
    assert_eq!(restored.store().current(), old.store().current());
    assert_eq!(restored.clients().len(), old.clients().len());
    assert_eq!(restored.stats_acked(), old.stats_acked());
    f.h.add(master);
    f.h.add(Node::Local(restored));

    f.h.run_for(2 * DAY, STEPS).unwrap();
    let m = f.h.master(f.master);
    assert!(m.store().get(&"firewall".into()).is_some(), "the pending proposal arrived");
    assert_converged(&f);
}

/// A restored client enforces what it applied and applies nothing twice.
#[test]
fn client_restored_applies_nothing_twice() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let id = f.clients["tokyo"][0];
    let Some(Node::Client(old)) = f.h.remove(id) else { panic!("client") };
    let state: ClientState = old.state();
    assert_eq!(state.applied.len(), 1);
    let restored = Client::restore(id, old.profile().clone(), 5, state.clone());
    assert_eq!(restored.state(), state);
    let mark = f.h.observations.len();
    f.h.add(Node::Client(restored));
    f.h.run_for(DAY, STEPS).unwrap();
    let reapplied = f.h.observations[mark..]
        .iter()
        .filter(|(_, n, o)| *n == id && matches!(o, Observation::Applied { .. }))
        .count();
    assert_eq!(reapplied, 0);

    // A later change is applied once.
    let change = PolicyChange { content: None, ..antivirus(2) };
    set_at_master(&mut f, change, 2);
    f.h.run_for(2 * DAY, STEPS).unwrap();
    assert_converged(&f);
}
