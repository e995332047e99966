//! Replication between tiers under the awkward timings: a policy that
//! starts applying to a platform, an urgent wake-up racing a request in
//! flight, a parent restored from an older backup, a late duplicate
//! snapshot.

mod common;

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use common::*;
use tiersync_engine::message::ErrorCode;
use tiersync_engine::outbox::{Observation, Rejection};
use tiersync_engine::testkit::{Fleet, Verdict};
use tiersync_engine::{
    Master, MasterState, Message, MessageKind, Name, Node, NodeId, PolicyChange, Revision,
    ServeMode, Time,
};

/// Every client's count of refused revisions (its tamper signal).
fn refusals(f: &Fleet) -> u32 {
    f.all_clients().iter().map(|id| f.h.client(*id).state().rejected).sum()
}

/// `MissingContent` observations at clients.
fn missing_content(f: &Fleet) -> usize {
    let clients = f.all_clients();
    f.h.observations
        .iter()
        .filter(|(_, n, o)| {
            clients.contains(n)
                && matches!(
                    o,
                    Observation::Rejected { reason: Rejection::MissingContent { .. }, .. }
                )
        })
        .count()
}

fn widen_firewall() -> PolicyChange {
    PolicyChange {
        id: Name::new("firewall"),
        platforms: Some(vec![Name::new("windows"), Name::new("macos"), Name::new("linux")]),
        ..Default::default()
    }
}

/// Bug 1: a platform-list change, with no content change, makes a policy
/// new to the clients of the added platforms; they must receive its content
/// (they never held it) instead of failing with missing content and
/// counting a refusal.
#[test]
fn policy_starting_to_apply_arrives_with_its_content() {
    for tiered_mode in [true, false] {
        let mut f = if tiered_mode {
            tiered(&two_sites())
        } else {
            Fleet::build(start(), &two_sites(), false, ServeMode::Conditional, |_| {})
        };
        set_at_master(&mut f, antivirus(1), 1);
        set_at_master(&mut f, firewall(), 2);
        f.h.run_for(DAY, STEPS).unwrap();
        assert_converged(&f);
        let mac = f.clients["london"][3];
        assert_eq!(f.h.client(mac).applied().len(), 1, "firewall is windows-only so far");

        set_at_master(&mut f, widen_firewall(), 3);
        f.h.run_for(DAY, STEPS).unwrap();
        assert_converged(&f);
        assert_eq!(f.h.client(mac).applied().len(), 2, "macos now has the firewall");
        assert_eq!(missing_content(&f), 0, "tiered: {tiered_mode}");
        assert_eq!(refusals(&f), 0, "no tamper signal, tiered: {tiered_mode}");
    }
}

/// A server that leaves out content a client lacks is not tampering: the
/// client does not count it, and asks for everything at once.
#[test]
fn missing_content_is_not_a_refusal_and_resyncs_at_once() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let london = f.locals["london"];
    let victim = f.clients["london"][0];

    // Strip the content from the next update to one client, once.
    let stripped = Rc::new(RefCell::new(false));
    let flag = stripped.clone();
    f.h.set_filter(Box::new(move |_, from, to, msg| match msg {
        Message::PolicyUpdate { current, policies, removed, full }
            if from == london && to == victim && !policies.is_empty() && !*flag.borrow() =>
        {
            *flag.borrow_mut() = true;
            let bare = policies.iter().map(|p| std::sync::Arc::new(p.with_content(None))).collect();
            Verdict::Replace(Message::PolicyUpdate {
                current: *current,
                policies: bare,
                removed: removed.clone(),
                full: *full,
            })
        }
        _ => Verdict::Deliver,
    }));
    set_at_master(&mut f, antivirus(2), 2);
    fetch_now(&mut f, "london");
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    let mark = f.h.delivered.len();
    poll_now(&mut f, victim);
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();

    assert!(*stripped.borrow(), "the filter stripped an update");
    assert_eq!(missing_content(&f), 1);
    assert_eq!(f.h.client(victim).state().rejected, 0, "not counted as tampering");
    let polls: Vec<_> = f.h.delivered[mark..]
        .iter()
        .filter(|d| d.1 == victim && d.3 == MessageKind::Poll)
        .collect();
    assert_eq!(polls.len(), 2, "the poll, then at once a poll for everything");
    assert_eq!(f.h.client(victim).applied()[0].revision, Revision(2));
}

/// Bug 2, the race: a wake-up arrives while a request is in flight whose
/// answer predates the urgent revision. The local server must ask again
/// when that answer comes, not wait for its next check or sync.
#[test]
fn wake_during_a_request_in_flight_still_fetches() {
    // No scheduled checks: only the wake-up path can bring the change.
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let london = f.locals["london"];

    // Hold back the master's answer to London's next request.
    let held: Rc<RefCell<Option<Message>>> = Rc::default();
    let slot = held.clone();
    let master = f.master;
    f.h.set_filter(Box::new(move |_, from, to, msg| match msg {
        Message::Policies { .. } if from == master && to == london && slot.borrow().is_none() => {
            *slot.borrow_mut() = Some(msg.clone());
            Verdict::Drop
        }
        _ => Verdict::Deliver,
    }));
    fetch_now(&mut f, "london");
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    let answer = held.borrow_mut().take().expect("the answer was held back");
    assert!(matches!(&answer, Message::Policies { upto: Revision(1), .. }));

    // The urgent change, and its wake-up, reach London before that answer.
    let mut urgent = antivirus(2);
    urgent.urgent = true;
    let at = f.h.now();
    set_at_master(&mut f, urgent, 2);
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert_eq!(delivered_to(&f, london, MessageKind::Wake, at), 1);
    f.h.clear_filter();
    f.h.inject(master, london, answer);
    f.h.run_for(Duration::from_secs(300), STEPS).unwrap();

    assert_eq!(f.h.local(london).store().current(), Revision(2));
    assert_converged(&f);
}

/// Bug 2, the early return: a wake-up for a revision the local server
/// already fetched (by a check that overtook it) is still passed down, so
/// its clients do not wait for their next poll.
#[test]
fn wake_for_a_revision_already_held_is_passed_down() {
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let london = f.locals["london"];

    // London's wake-up is held back; London fetches the revision itself.
    let held: Rc<RefCell<Option<Message>>> = Rc::default();
    let slot = held.clone();
    f.h.set_filter(Box::new(move |_, _, to, msg| match msg {
        Message::Wake { .. } if to == london => {
            *slot.borrow_mut() = Some(msg.clone());
            Verdict::Drop
        }
        _ => Verdict::Deliver,
    }));
    let mut urgent = antivirus(2);
    urgent.urgent = true;
    set_at_master(&mut f, urgent, 2);
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    fetch_now(&mut f, "london");
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert_eq!(f.h.local(london).store().current(), Revision(2));

    // Then the wake-up arrives: London passes it to each of its clients.
    f.h.clear_filter();
    let wake = held.borrow_mut().take().expect("the wake-up was held back");
    let at = f.h.now();
    f.h.inject(f.master, london, wake);
    f.h.run_for(Duration::from_secs(300), STEPS).unwrap();
    assert_eq!(sent_by(&f, london, MessageKind::Wake, at), f.clients["london"].len());
    assert_converged(&f);

    // A second copy of the same wake-up is not passed down again.
    let at = f.h.now();
    f.h.inject(f.master, london, Message::Wake { revision: Revision(2) });
    f.h.run_for(Duration::from_secs(300), STEPS).unwrap();
    assert_eq!(sent_by(&f, london, MessageKind::Wake, at), 0);
}

/// A wake-up naming a revision the parent does not hold (forged, or sent
/// before the parent rolled back): once the parent's answer to a request
/// sent after it stops short of that revision, the local server stops
/// waiting for it and records the rejection, so the next real urgent
/// change is still passed down to its clients at once.
#[test]
fn wake_from_the_future_does_not_block_later_wakes() {
    // No scheduled checks: only the wake-up path can bring the change fast.
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let london = f.locals["london"];
    let mark = f.h.observations.len();
    f.h.inject(f.master, london, Message::Wake { revision: Revision(50) });
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert_eq!(f.h.local(london).store().current(), Revision(1));
    let got = rejections_since(&f, london, mark);
    let future = Rejection::RevisionFromFuture { claimed: Revision(50), held: Revision(1) };
    assert_eq!(got, vec![(f.master, future)]);

    let mut urgent = antivirus(2);
    urgent.urgent = true;
    let at = f.h.now();
    set_at_master(&mut f, urgent, 2);
    f.h.run_for(Duration::from_secs(300), STEPS).unwrap();
    assert_eq!(sent_by(&f, london, MessageKind::Wake, at), f.clients["london"].len());
    assert_converged(&f);
}

/// When each client applied `revision` of `policy`, after `since`.
fn apply_delays(f: &Fleet, revision: Revision, since: Time) -> Vec<Duration> {
    let clients = f.all_clients();
    let mut delays: Vec<Duration> =
        f.h.observations
            .iter()
            .filter(|(_, n, _)| clients.contains(n))
            .filter_map(|(at, _, o)| match o {
                Observation::Applied { revision: r, .. } if *r == revision => {
                    Some(at.saturating_since(since))
                }
                _ => None,
            })
            .collect();
    delays.sort();
    delays
}

/// Urgent changes pay a few wake-up messages and gain hours of delay: the
/// slowest client of an urgent change applies it before the fastest client
/// of a normal change applies that one.
#[test]
fn urgent_change_is_faster_than_a_normal_one() {
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_until(t("2026-03-02T09:00:00Z"), STEPS).unwrap();
    let n = f.all_clients().len();

    // A normal change waits for each site's window.
    let normal_at = f.h.now();
    let normal = set_at_master(&mut f, antivirus(2), 2);
    f.h.run_for(DAY * 2, STEPS).unwrap();
    let normal_delays = apply_delays(&f, normal, normal_at);
    assert_eq!(normal_delays.len(), n);
    assert_eq!(sent_by(&f, f.master, MessageKind::Wake, normal_at), 0);

    // An urgent one takes the wake-up path, at the same local hour.
    f.h.run_until(t("2026-03-05T09:00:00Z"), STEPS).unwrap();
    let mut urgent = antivirus(3);
    urgent.urgent = true;
    let urgent_at = f.h.now();
    let rev = set_at_master(&mut f, urgent, 3);
    f.h.run_for(DAY, STEPS).unwrap();
    let urgent_delays = apply_delays(&f, rev, urgent_at);
    assert_eq!(urgent_delays.len(), n);

    let slowest_urgent = *urgent_delays.last().unwrap();
    let fastest_normal = normal_delays[0];
    assert!(slowest_urgent <= Duration::from_secs(120), "urgent took {slowest_urgent:?}");
    assert!(fastest_normal > Duration::from_secs(3600), "normal took {fastest_normal:?}");
    assert!(slowest_urgent < fastest_normal);
    let wakes = sent_by(&f, f.master, MessageKind::Wake, urgent_at);
    assert_eq!(wakes, f.locals.len(), "the master wakes each child once");
}

/// Bug 3: the master is restored from an older backup and even reuses
/// revision numbers. Every local server, ahead of it, resynchronises from
/// a snapshot and replaces its set; every client replaces its own.
#[test]
fn nodes_ahead_of_a_restored_master_roll_back() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    set_at_master(&mut f, firewall(), 2);
    f.h.run_for(DAY, STEPS).unwrap();
    let backup = {
        let m = f.h.master(f.master);
        MasterState {
            revisions: m.store().iter().cloned().collect(),
            accepted: m.accepted().collect(),
            history: m.history().to_vec(),
        }
    };
    let mut fw = firewall();
    fw.params = Some(params(&[("default_inbound", s("allow"))]));
    set_at_master(&mut f, antivirus(3), 3);
    set_at_master(&mut f, fw, 4);
    f.h.run_for(DAY, STEPS).unwrap();
    assert_converged(&f);
    assert_eq!(f.h.local(f.locals["tokyo"]).store().current(), Revision(4));

    // The master comes back from the backup (revision 2), and assigns
    // revision 3 anew to a different change.
    let Some(Node::Master(old)) = f.h.remove(f.master) else { panic!("master") };
    f.h.add(Node::Master(Master::restore(old.config().clone(), backup)));
    let mut av = antivirus(9);
    av.params = Some(params(&[("scan", s("hourly"))]));
    assert_eq!(set_at_master(&mut f, av, 5), Revision(3));
    let mark = f.h.observations.len();
    f.h.run_for(DAY, STEPS).unwrap();

    assert_locals_agree(&f);
    assert_converged(&f);
    for id in f.all_clients() {
        assert_eq!(f.h.client(id).have(), Revision(3), "client {id}");
    }

    // Each node resynchronised as soon as it learnt it was ahead, not at
    // its next scheduled request.
    let obs = &f.h.observations[mark..];
    let refused_at = |node: NodeId| {
        obs.iter().find_map(|(at, n, o)| match o {
            Observation::Rejected {
                reason: Rejection::RefusedByPeer(ErrorCode::RevisionFromFuture),
                ..
            } if *n == node => Some(*at),
            _ => None,
        })
    };
    for id in f.locals.values().copied() {
        let refused = refused_at(id).expect("the local server was told it is ahead");
        let replaced = obs.iter().find_map(|(at, n, o)| match o {
            Observation::PoliciesStored { snapshot: true, .. } if *n == id => Some(*at),
            _ => None,
        });
        assert!(replaced.is_some_and(|r| r.saturating_since(refused) < Duration::from_secs(1)));
    }
    for id in f.all_clients() {
        let refused = refused_at(id).expect("the client was told it is ahead");
        let applied = obs.iter().find_map(|(at, n, o)| match o {
            Observation::Applied { .. } if *n == id => Some(*at),
            _ => None,
        });
        assert!(applied.is_some_and(|a| a.saturating_since(refused) < Duration::from_secs(1)));
    }
}

/// Bug 4: a snapshot that arrives late (a duplicate of an old answer)
/// must not move a local server back.
#[test]
fn late_snapshot_does_not_move_a_local_back() {
    let mut f = tiered(&two_sites());
    let london = f.locals["london"];
    let first: Rc<RefCell<Option<Message>>> = Rc::default();
    let slot = first.clone();
    f.h.set_filter(Box::new(move |_, _, to, msg| {
        if to == london
            && matches!(
                msg,
                Message::Policies { changes: tiersync_engine::message::Changes::Snapshot(_), .. }
            )
            && slot.borrow().is_none()
        {
            *slot.borrow_mut() = Some(msg.clone());
        }
        Verdict::Deliver
    }));
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(HOUR, STEPS).unwrap();
    f.h.clear_filter();
    let old = first.borrow_mut().take().expect("London's first answer is a snapshot");

    set_at_master(&mut f, antivirus(2), 2);
    set_at_master(&mut f, firewall(), 3);
    fetch_now(&mut f, "london");
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    let before = local_snapshot(&f, "london");
    assert_eq!(before.current, Revision(3));

    f.h.inject(f.master, london, old);
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert_eq!(local_snapshot(&f, "london"), before);
}

/// A fresh local server's first answer is a snapshot: it asked from zero,
/// and zero always gets the whole set.
#[test]
fn a_fresh_local_bootstraps_from_a_snapshot() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(HOUR, STEPS).unwrap();
    let snapshots: Vec<NodeId> =
        f.h.observations
            .iter()
            .filter(|(_, _, o)| matches!(o, Observation::PoliciesStored { snapshot: true, .. }))
            .map(|(_, n, _)| *n)
            .collect();
    assert_eq!(snapshots.len(), f.locals.len());
    assert_converged(&f);
}
