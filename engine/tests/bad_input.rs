//! Bad input at the master and at local servers: unknown peers, clients
//! outside the known list, revisions from the future, uploads for foreign
//! sites, unknown clients and policies. Each gets a typed error and leaves
//! the whole state (policies, history, statistics, clients) as it was.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use tiersync_engine::message::{ErrorCode, Scope, StatsUpload};
use tiersync_engine::outbox::{Observation, Outbox, Rejection, Timer};
use tiersync_engine::stats::{PlatformStats, SecurityReport, SiteStats};
use tiersync_engine::testkit::{Fleet, SiteSpec, Verdict};
use tiersync_engine::{
    Blob, Client, ClientProfile, Master, Message, MessageKind, Name, Node, NodeId, PolicyChange,
    Revision, ServeMode, StatusKind, Time,
};

fn report(site: &str, platform: &str) -> Arc<SecurityReport> {
    Arc::new(SecurityReport {
        platform: Name::new(platform),
        site: Name::new(site),
        applied: vec![],
        engine_version: 5,
        signature_version: 0,
        firewall_on: false,
        threats_found: 0,
        last_scan: Time::EPOCH,
        rejected_policies: 0,
        inventory: Blob::filler(16, 1),
    })
}

fn site_stats(site: &str, clients: u64, as_of: Time) -> SiteStats {
    let mut s = SiteStats::empty(Name::new(site), as_of);
    s.platforms.insert(Name::new("windows"), PlatformStats { clients, ..Default::default() });
    s
}

/// A site with a middle tier: emea (a regional server with clients) above
/// paris; tokyo directly below the master.
fn regional() -> Vec<SiteSpec> {
    vec![
        SiteSpec { name: "emea", tz: "Europe/London", parent: None, clients: vec![("windows", 2)] },
        SiteSpec {
            name: "paris",
            tz: "Europe/Paris",
            parent: Some("emea"),
            clients: vec![("windows", 2), ("linux", 1)],
        },
        SiteSpec { name: "tokyo", tz: "Asia/Tokyo", parent: None, clients: vec![("macos", 2)] },
    ]
}

/// Senders and kinds of the messages delivered to `to` since `since`.
fn codes_to(f: &Fleet, to: NodeId, since: Time) -> Vec<(NodeId, MessageKind)> {
    f.h.delivered.iter().filter(|d| d.0 >= since && d.2 == to).map(|d| (d.1, d.3)).collect()
}

/// Bad input at the master: a stranger's sync, a child's check from the
/// future, a direct client's poll from the future, a proposal for an
/// unknown policy, a client drill-down for nobody. Typed errors; the
/// master's whole state unchanged.
#[test]
fn bad_input_at_the_master_changes_nothing() {
    let mut f = tiered(&regional());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY * 2, STEPS).unwrap();
    let m = f.master;
    let before = master_snapshot(&f);
    assert!(!before.history.is_empty() && before.latest.len() == 3);

    let stranger = NodeId(4242);
    let emea = f.locals["emea"];
    let hq_client = NodeId(5555);
    let tap = tap_quiet(&mut f);
    let mark = f.h.observations.len();
    let since = f.h.now();
    let stats = StatsUpload { seq: 99, sites: vec![site_stats("emea", 1000, since)] };
    f.h.inject(stranger, m, Message::Sync { req: 5, have: Revision(0), stats: Some(stats) });
    f.h.inject(emea, m, Message::Check { req: 6, have: Revision(999) });
    let poll =
        Message::Poll { have: Revision(999), site: Name::new("hq"), platform: "linux".into() };
    f.h.inject(hq_client, m, poll);
    let unknown = PolicyChange { id: Name::new("nonexistent"), ..Default::default() };
    f.h.inject(emea, m, Message::Propose { origin: emea, proposal: 77, change: Box::new(unknown) });
    f.h.inject(
        stranger,
        m,
        Message::StatusReply { query: 1, sites: vec![], missing: vec![], client: None },
    );
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    let answer = status(&mut f, 9, StatusKind::Current, Scope::Client(NodeId(999_999)));
    assert_eq!(answer.error, Some(ErrorCode::UnknownClient));

    let got = rejections_since(&f, m, mark);
    assert!(got.contains(&(stranger, Rejection::UnknownPeer)), "{got:?}");
    let future = |p: NodeId| {
        got.iter().any(|(q, r)| *q == p && matches!(r, Rejection::RevisionFromFuture { .. }))
    };
    assert!(future(emea) && future(hq_client), "{got:?}");
    assert!(got.iter().any(|(_, r)| matches!(r, Rejection::UnknownPolicy(_))));
    assert_eq!(
        got.iter().filter(|(p, r)| *p == stranger && *r == Rejection::UnknownPeer).count(),
        2
    );
    let unknown_peer = Message::Error { req: 0, code: ErrorCode::UnknownPeer };
    let sync_refused = Message::Error { req: 5, code: ErrorCode::UnknownPeer };
    assert_eq!(tapped_to(&tap, stranger), vec![sync_refused, unknown_peer]);
    let future = Message::Error { req: 0, code: ErrorCode::RevisionFromFuture };
    assert_eq!(tapped_to(&tap, hq_client), vec![future]);
    assert_eq!(delivered_to(&f, emea, MessageKind::Refused, since), 1);
    assert_eq!(master_snapshot(&f), before);
}

/// Bad input at a local server (a middle tier): a stranger's sync, a
/// client's poll from the future, a drill-down for an unknown client, a
/// proposal for an unknown policy relayed from below, policies from a node
/// that is not its parent. Typed errors; both servers' state unchanged.
#[test]
fn bad_input_at_a_local_changes_nothing() {
    let mut f = tiered(&regional());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY * 2, STEPS).unwrap();
    let emea = f.locals["emea"];
    let paris = f.locals["paris"];
    let before = (local_snapshot(&f, "emea"), local_snapshot(&f, "paris"));
    assert!(!before.0.clients.is_empty() && !before.0.child_stats.is_empty());

    let tap = tap_quiet(&mut f);
    let stranger = NodeId(4242);
    let client = f.clients["emea"][0];
    let mark = f.h.observations.len();
    let since = f.h.now();
    f.h.inject(stranger, emea, Message::Sync { req: 5, have: Revision(0), stats: None });
    let poll =
        Message::Poll { have: Revision(999), site: Name::new("emea"), platform: "windows".into() };
    f.h.inject(client, emea, poll);
    let drill = Scope::Client(NodeId(999_999));
    let deadline = f.h.now() + Duration::from_secs(10);
    f.h.inject(f.master, emea, Message::StatusRequest { query: 3, scope: drill, deadline });
    let unknown = PolicyChange { id: Name::new("nonexistent"), ..Default::default() };
    f.h.inject(
        paris,
        emea,
        Message::Propose { origin: paris, proposal: 8, change: Box::new(unknown) },
    );
    let forged = Message::Policies {
        req: 1,
        upto: Revision(50),
        changes: tiersync_engine::message::Changes::Delta(vec![]),
        stats_acked: None,
    };
    f.h.inject(stranger, emea, forged);
    f.h.inject(stranger, emea, Message::Wake { revision: Revision(50) });
    f.h.run_for(Duration::from_secs(20), STEPS).unwrap();

    let got = rejections_since(&f, emea, mark);
    assert_eq!(
        got.iter().filter(|(p, r)| *p == stranger && *r == Rejection::UnknownPeer).count(),
        3
    );
    assert!(
        got.iter().any(|(p, r)| *p == client && matches!(r, Rejection::RevisionFromFuture { .. }))
    );
    let refusals = tapped_to(&tap, stranger);
    assert_eq!(refusals.len(), 3);
    assert!(
        refusals.iter().all(|m| matches!(m, Message::Error { code: ErrorCode::UnknownPeer, .. }))
    );
    let future = Message::Error { req: 0, code: ErrorCode::RevisionFromFuture };
    assert_eq!(
        tapped_to(&tap, client)
            .into_iter()
            .filter(|m| m.kind() == MessageKind::Error)
            .collect::<Vec<_>>(),
        vec![future]
    );
    // The drill-down is answered, with no client, from emea and paris.
    let reply = f.h.delivered.iter().filter(|d| d.0 >= since && d.1 == emea && d.2 == f.master);
    assert_eq!(reply.filter(|d| d.3 == MessageKind::StatusReply).count(), 1);
    // The proposal went up, was refused, and the refusal came back down.
    assert_eq!(delivered_to(&f, paris, MessageKind::Refused, since), 1);
    assert!(
        f.h.observed(paris).any(|o| matches!(o, Observation::ProposalRefused { proposal: 8, .. }))
    );
    assert_eq!((local_snapshot(&f, "emea"), local_snapshot(&f, "paris")), before);
}

/// Bug 5: a local server serves only clients of its own site and of known
/// platforms, never its own peers, and only those its driver admits. A
/// report from anyone else is refused with a typed error and stores
/// nothing.
#[test]
fn clients_outside_the_known_list_are_refused() {
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |c| {
        c.clients.check = Some(Arc::new(|id: NodeId, _: &Name, _: &Name| id.0 < 20_000));
    });
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let london = f.locals["london"];
    let before = local_snapshot(&f, "london");
    assert_eq!(before.clients.len(), 5, "the fleet's own clients pass the driver's check");

    let cases = [
        (NodeId(12_000), report("tokyo", "windows"), ErrorCode::WrongSite),
        (NodeId(12_001), report("london", "solaris"), ErrorCode::UnknownPlatform),
        (NodeId(30_000), report("london", "windows"), ErrorCode::UnknownPeer),
        (f.master, report("london", "windows"), ErrorCode::UnknownPeer),
    ];
    for (from, r, want) in cases {
        let mark = f.h.delivered.len();
        let tap = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = tap.clone();
        // Tap the replies; keep the fleet's own reports out of the window.
        f.h.set_filter(Box::new(move |_, sender, to, msg| {
            if to == from {
                seen.borrow_mut().push(msg.clone());
            }
            match msg {
                Message::Report { .. } if sender != from => Verdict::Drop,
                _ => Verdict::Deliver,
            }
        }));
        f.h.inject(from, london, Message::Report { report: r.clone() });
        let poll =
            Message::Poll { have: Revision(0), site: r.site.clone(), platform: r.platform.clone() };
        f.h.inject(from, london, poll);
        f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
        f.h.clear_filter();
        let replies = tap.borrow().clone();
        let expected =
            vec![Message::Error { req: 0, code: want }, Message::Error { req: 0, code: want }];
        assert_eq!(replies, expected, "from {from}");
        assert!(
            f.h.delivered[mark..].iter().all(|d| d.3 != MessageKind::PolicyUpdate || d.2 != from)
        );
        assert_eq!(local_snapshot(&f, "london"), before, "from {from}");
    }
}

/// Bug 5 at the master: tiered, it serves only its own site's clients
/// directly; flat, every site's, and still only known platforms.
#[test]
fn the_master_serves_only_the_sites_that_poll_it() {
    for tiered_mode in [true, false] {
        let mut f =
            Fleet::build(start(), &two_sites(), tiered_mode, ServeMode::Conditional, |_| {});
        set_at_master(&mut f, antivirus(1), 1);
        f.h.run_for(HOUR * 2, STEPS).unwrap();
        let before = master_snapshot(&f);
        let m = f.master;
        let mark = f.h.observations.len();
        f.h.inject(NodeId(12_000), m, Message::Report { report: report("london", "windows") });
        f.h.inject(NodeId(12_001), m, Message::Report { report: report("atlantis", "windows") });
        f.h.inject(NodeId(12_002), m, Message::Report { report: report("hq", "solaris") });
        f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
        let got = rejections_since(&f, m, mark);
        let london_refused = got.contains(&(NodeId(12_000), Rejection::WrongSite));
        assert_eq!(london_refused, tiered_mode, "tiered: {tiered_mode}");
        assert!(got.contains(&(NodeId(12_001), Rejection::WrongSite)));
        assert!(got.contains(&(NodeId(12_002), Rejection::UnknownPlatform("solaris".into()))));
        let after = master_snapshot(&f);
        let added: Vec<NodeId> = after
            .clients
            .iter()
            .map(|(id, _)| *id)
            .filter(|id| !before.clients.iter().any(|(b, _)| b == id))
            .collect();
        let want: Vec<NodeId> = if tiered_mode { vec![] } else { vec![NodeId(12_000)] };
        assert_eq!(added, want, "tiered: {tiered_mode}");
    }
}

/// Bug 6: a child server may upload statistics only for its own subtree.
/// An upload naming a sibling's site or an unknown site is refused whole,
/// not acknowledged, answered by an error, while policies are still
/// served; a middle tier's upload for the sites below it is stored.
#[test]
fn uploads_for_sites_outside_the_subtree_are_refused() {
    for configured in [true, false] {
        let mut f = tiered(&regional());
        if !configured {
            // The master's default rule, with no configured subtrees.
            let Some(Node::Master(old)) = f.h.remove(f.master) else { panic!("master") };
            let mut cfg = old.config().clone();
            cfg.child_sites.clear();
            f.h.add(Node::Master(Master::new(cfg)));
        }
        set_at_master(&mut f, antivirus(1), 1);
        f.h.run_for(DAY * 2, STEPS).unwrap();
        let m = f.master;
        let tokyo = f.locals["tokyo"];
        let emea = f.locals["emea"];
        let before = master_snapshot(&f);

        for (i, bad) in ["emea", "paris", "hq", "atlantis"].into_iter().enumerate() {
            let since = f.h.now();
            let req = 40 + i as u32;
            let sites = vec![site_stats("tokyo", 2, since), site_stats(bad, 1_000_000, since)];
            let stats = Some(StatsUpload { seq: 1000 + i as u64, sites });
            f.h.inject(tokyo, m, Message::Sync { req, have: Revision(1), stats });
            f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
            let kinds: Vec<MessageKind> =
                codes_to(&f, tokyo, since).into_iter().map(|(_, k)| k).collect();
            assert_eq!(kinds, vec![MessageKind::Policies, MessageKind::Error], "{bad}");
            assert_eq!(
                master_snapshot(&f),
                before,
                "tokyo uploading {bad}, configured {configured}"
            );
        }

        // The middle tier uploads for itself and for paris: stored.
        let now = f.h.now();
        let sites = vec![site_stats("emea", 2, now), site_stats("paris", 7, now)];
        let stats = Some(StatsUpload { seq: 2000, sites });
        f.h.inject(emea, m, Message::Sync { req: 50, have: Revision(1), stats });
        f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
        let after = master_snapshot(&f);
        assert_eq!(after.history.len(), before.history.len() + 1);
        let paris = after.latest.iter().find(|s| s.site.as_str() == "paris").unwrap();
        assert_eq!(paris.clients(), 7);
    }
}

/// A wake-up from a stranger is refused and arms nothing; one from the
/// client's server for a newer revision arms one poll within the wake
/// splay; one for a revision already held arms nothing.
#[test]
fn wake_at_a_client_polls_only_when_it_should() {
    let server = NodeId(100);
    let profile = Arc::new(ClientProfile {
        site: Name::new("london"),
        platform: Name::new("windows"),
        server,
        poll: HOUR,
        splay: HOUR,
        status_every: HOUR,
        inventory: Blob::empty(),
        engine_version: 1,
        threat_rate: 0.0,
        scan_every: DAY,
        wake_splay: Duration::from_secs(60),
        verifier: tiersync_engine::PolicyVerifier::new([0; 32]),
    });
    let mut c = Client::new(NodeId(10_000), profile, 1);
    let now = start();
    let mut out = Outbox::new();

    c.handle_message(now, NodeId(4242), Message::Wake { revision: Revision(9) }, &mut out);
    assert_eq!(out.poll_timer(), None);
    assert_eq!(out.poll_transmit(), None);
    let o = out.poll_observation();
    assert!(
        matches!(o, Some(Observation::Rejected { reason: Rejection::UnknownPeer, .. })),
        "{o:?}"
    );

    c.handle_message(now, server, Message::Wake { revision: Revision(0) }, &mut out);
    assert!(out.is_empty(), "revision 0 is held already");

    c.handle_message(now, server, Message::Wake { revision: Revision(9) }, &mut out);
    let (at, timer) = out.poll_timer().expect("a poll is armed");
    assert_eq!(timer, Timer::WakePoll);
    assert!(at >= now && at < now + Duration::from_secs(60));
    assert!(out.poll_timer().is_none() && out.poll_transmit().is_none());
    c.handle_timer(at, timer, &mut out);
    let t = out.poll_transmit().expect("the wake poll");
    assert_eq!((t.to, t.msg.kind()), (server, MessageKind::Poll));
}

/// A child may propose for itself or relay for a server below it, never
/// in the name of the master, its own parent or a sibling. Proposals are
/// deduplicated by (origin, proposal id): a forged origin, had it been
/// accepted, would have made the real origin's proposal of that id count
/// as done, and that change would have been lost.
#[test]
fn proposals_in_another_servers_name_are_refused() {
    let mut f = tiered(&regional());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let (m, emea, paris, tokyo) =
        (f.master, f.locals["emea"], f.locals["paris"], f.locals["tokyo"]);
    let before = (master_snapshot(&f), local_snapshot(&f, "emea"));
    let tap = tap_quiet(&mut f);
    let mark = f.h.observations.len();
    let propose = |origin| Message::Propose { origin, proposal: 9, change: Box::new(firewall()) };
    // At the master: emea in the master's name, then in tokyo's.
    f.h.inject(emea, m, propose(m));
    f.h.inject(emea, m, propose(tokyo));
    // At the middle tier: paris in emea's name, then in the master's.
    f.h.inject(paris, emea, propose(emea));
    f.h.inject(paris, emea, propose(m));
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    f.h.clear_filter();

    let replies = |to| -> Vec<Message> {
        tapped_to(&tap, to).into_iter().filter(|m| m.kind() != MessageKind::Propose).collect()
    };
    let refused = Message::Error { req: 0, code: ErrorCode::UnknownPeer };
    assert_eq!(replies(emea), vec![refused.clone(), refused.clone()]);
    assert_eq!(replies(paris), vec![refused.clone(), refused]);
    let got = rejections_since(&f, m, mark);
    assert_eq!(got, vec![(emea, Rejection::UnknownPeer), (emea, Rejection::UnknownPeer)]);
    // emea refuses paris twice, and notes the master's two refusals.
    let at_emea = vec![
        (paris, Rejection::UnknownPeer),
        (paris, Rejection::UnknownPeer),
        (m, Rejection::RefusedByPeer(ErrorCode::UnknownPeer)),
        (m, Rejection::RefusedByPeer(ErrorCode::UnknownPeer)),
    ];
    assert_eq!(rejections_since(&f, emea, mark), at_emea);
    assert_eq!((master_snapshot(&f), local_snapshot(&f, "emea")), before);

    // The operator's own proposal 9 is a new change, not a duplicate.
    let rev = set_at_master(&mut f, firewall(), 9);
    assert_eq!(rev, Revision(2));
    // And a proposal relayed from below in its own origin's name passes.
    f.h.inject(paris, emea, propose(paris));
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert_eq!(delivered_to(&f, paris, MessageKind::Accepted, f.h.now() - HOUR), 1);
    assert_eq!(f.h.master(m).store().current(), Revision(3));
}
