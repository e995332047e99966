//! Scenario tests of the protocol's blocks (WO 03/029940 Fig. 2A/2B), each
//! run in the deterministic harness.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use tiersync_engine::message::{ErrorCode, Scope};
use tiersync_engine::outbox::{Observation, Rejection};
use tiersync_engine::testkit::{Fleet, SiteSpec, Verdict};
use tiersync_engine::{
    Message, MessageKind, Name, Node, NodeId, PolicyChange, Revision, ServeMode, StatusKind, Time,
    Value,
};

fn count_kind(f: &Fleet, kind: MessageKind, since: Time) -> usize {
    f.h.delivered.iter().filter(|d| d.3 == kind && d.0 >= since).count()
}

/// Blocks 201, 211/245, derivation: a policy set at the master reaches
/// every client of both sites with its site and platform overlays applied,
/// and clients of a platform it does not cover never receive it.
#[test]
fn policy_set_at_master_reaches_every_client_derived() {
    let mut f = tiered(&two_sites());
    let mut av = antivirus(1);
    av.platform_params =
        Some([(Name::new("linux"), params(&[("heuristics", Value::Bool(false))]))].into());
    av.site_params = Some([(Name::new("tokyo"), params(&[("scan", s("weekly"))]))].into());
    set_at_master(&mut f, av, 1);
    set_at_master(&mut f, firewall(), 2);
    f.h.run_for(DAY, STEPS).unwrap();

    assert_converged(&f);
    let linux_tokyo = f.clients["tokyo"][3];
    let c = f.h.client(linux_tokyo);
    assert_eq!(c.profile().platform.as_str(), "linux");
    assert_eq!(c.applied().len(), 1, "linux gets antivirus only");
    let p = &c.applied()[0].params;
    assert_eq!(p["scan"], s("weekly"));
    assert_eq!(p["heuristics"], Value::Bool(false));
    let win_london = f.clients["london"][0];
    let p = &f.h.client(win_london).applied()[0].params;
    assert_eq!(p["scan"], s("daily"));
    assert_eq!(p["heuristics"], Value::Bool(true));
}

/// Block 211/245: a change at the master waits for each site's window in
/// its own time zone (checks disabled here), then reaches its clients.
#[test]
fn scheduled_sync_happens_in_the_local_window() {
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(HOUR, STEPS).unwrap();
    f.h.run_until(t("2026-03-02T12:00:00Z"), STEPS).unwrap();
    set_at_master(&mut f, antivirus(2), 2);
    f.h.run_until(t("2026-03-04T00:00:00Z"), STEPS).unwrap();

    // Every Sync from London was sent between 02:00 and 04:00 UTC (GMT in
    // March), every Sync from Tokyo between 17:00 and 19:00 UTC.
    for (at, from, _, kind, _) in &f.h.delivered {
        if *kind != MessageKind::Sync {
            continue;
        }
        let sent = *at - Duration::from_millis(50);
        let hour = sent.to_jiff().to_string()[11..13].parse::<u32>().unwrap();
        if *from == f.locals["london"] {
            assert!((2..4).contains(&hour), "london synced at {sent}");
        } else {
            assert!((17..19).contains(&hour), "tokyo synced at {sent}");
        }
    }
    assert_converged(&f);
}

/// Blocks 235–239: a check that finds nothing costs one small request and
/// one small reply.
#[test]
fn empty_check_costs_one_small_exchange() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let since = f.h.now();
    f.h.run_for(Duration::from_secs(6 * 3600 + 60), STEPS).unwrap();
    let london = f.locals["london"];
    let checks: Vec<_> =
        f.h.delivered
            .iter()
            .filter(|d| d.0 >= since && d.1 == london && d.3 == MessageKind::Check)
            .collect();
    let replies: Vec<_> =
        f.h.delivered
            .iter()
            .filter(|d| d.0 >= since && d.2 == london && d.3 == MessageKind::Policies)
            .collect();
    let syncs =
        f.h.delivered
            .iter()
            .filter(|d| d.0 >= since && d.1 == london && d.3 == MessageKind::Sync)
            .count();
    assert!(!checks.is_empty(), "a check every 6 h");
    assert_eq!(checks.len() + syncs, replies.len(), "one reply per request");
    for c in &checks {
        assert!(c.4 < 32, "check is {} bytes", c.4);
    }
    for r in &replies {
        assert!(r.4 < 32, "empty reply is {} bytes", r.4);
    }
}

/// Delta versus snapshot: a local whose revision the master's log no
/// longer reaches receives a full snapshot and still converges.
#[test]
fn compacted_log_sends_a_snapshot() {
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    // Rebuild the master with a tiny log.
    let m = f.master;
    let mut cfg = tiersync_engine::MasterConfig::new(
        m,
        Name::new("hq"),
        vec![Name::new("london"), Name::new("tokyo"), Name::new("hq")],
        [(f.locals["london"], Name::new("london")), (f.locals["tokyo"], Name::new("tokyo"))].into(),
        [7u8; 32],
    );
    cfg.log_keep = 2;
    f.h.remove(m);
    f.h.add(Node::Master(tiersync_engine::Master::new(cfg)));
    set_at_master(&mut f, antivirus(1), 1);
    set_at_master(&mut f, firewall(), 2);
    f.h.run_for(HOUR, STEPS).unwrap();
    for i in 0..3 {
        let mut c = antivirus(10 + i);
        c.params = None;
        set_at_master(&mut f, c, 10 + i);
    }
    f.h.run_for(DAY, STEPS).unwrap();
    let snap =
        f.h.observations
            .iter()
            .filter(|(_, _, o)| matches!(o, Observation::PoliciesStored { snapshot: true, .. }))
            .count();
    assert!(snap >= 2, "each local received a snapshot, got {snap}");
    assert_converged(&f);
}

/// Blocks 231/233 and the conflict rule: policies created at two locals
/// reach the master, get revisions there, and reach the other site; two
/// locals changing the same policy at once end with the master's order
/// (the later revision) everywhere.
#[test]
fn local_changes_replicate_and_conflicts_resolve_by_master_order() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(HOUR, STEPS).unwrap();

    let mut from_london = firewall();
    from_london.params = Some(params(&[("default_inbound", s("allow"))]));
    let mut from_tokyo = firewall();
    from_tokyo.params = Some(params(&[("default_inbound", s("deny")), ("log", Value::Bool(true))]));
    set_at_local(&mut f, "london", from_london, 1);
    set_at_local(&mut f, "tokyo", from_tokyo, 1);
    f.h.run_for(DAY * 2, STEPS).unwrap();

    let master = f.h.master(f.master);
    let held = master.store().get(&Name::new("firewall")).unwrap();
    let assigned: Vec<_> =
        f.h.observed(f.master)
            .filter_map(|o| match o {
                Observation::RevisionAssigned { policy, revision, origin, .. }
                    if policy.as_str() == "firewall" =>
                {
                    Some((*revision, *origin))
                }
                _ => None,
            })
            .collect();
    assert_eq!(assigned.len(), 2, "both proposals got a revision");
    let last = assigned.iter().max().unwrap();
    assert_eq!(held.revision(), last.0);
    let winner = if last.1 == f.locals["tokyo"] { "deny" } else { "allow" };
    assert_eq!(held.full.record.spec.params["default_inbound"], s(winner));
    assert_locals_agree(&f);
    assert_converged(&f);
}

/// Blocks 205/207 and 209–217: current status fans out and marks a site
/// that did not answer; historical status reads the stored uploads.
#[test]
fn current_and_historical_status_with_a_site_down() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY + HOUR * 2, STEPS).unwrap();

    // Tokyo's local server goes silent.
    let tokyo = f.locals["tokyo"];
    f.h.set_filter(Box::new(
        move |_, from, _, _| {
            if from == tokyo { Verdict::Drop } else { Verdict::Deliver }
        },
    ));
    let m = f.master;
    f.h.with(m, |n, now, out| match n {
        Node::Master(m) => m.handle_status_query(now, 7, StatusKind::Current, Scope::All, out),
        _ => unreachable!(),
    });
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let answer =
        f.h.observed(m)
            .find_map(|o| match o {
                Observation::StatusAnswered { query: 7, answer } => Some(answer.clone()),
                _ => None,
            })
            .expect("answered by the deadline");
    assert_eq!(answer.missing, vec![Name::new("tokyo")]);
    assert_eq!(answer.sites.len(), 1);
    assert_eq!(answer.sites[0].site.as_str(), "london");
    assert_eq!(answer.sites[0].clients(), 5);

    // Historical status still knows Tokyo from its last upload.
    f.h.with(m, |n, now, out| match n {
        Node::Master(m) => {
            m.handle_status_query(now, 8, StatusKind::Historical { at: None }, Scope::All, out)
        }
        _ => unreachable!(),
    });
    let answer =
        f.h.observed(m)
            .find_map(|o| match o {
                Observation::StatusAnswered { query: 8, answer } => Some(answer.clone()),
                _ => None,
            })
            .unwrap();
    let sites: Vec<_> = answer.sites.iter().map(|s| (s.site.as_str(), s.clients())).collect();
    assert_eq!(sites, vec![("london", 5), ("tokyo", 5)]);
}

/// Drill-downs are routed to the local server that holds the detail; a
/// client nobody holds gets a typed error.
#[test]
fn drill_down_to_site_and_client() {
    let sites = vec![
        SiteSpec { name: "emea", tz: "Europe/Paris", parent: None, clients: vec![] },
        SiteSpec {
            name: "paris",
            tz: "Europe/Paris",
            parent: Some("emea"),
            clients: vec![("windows", 2)],
        },
        SiteSpec { name: "tokyo", tz: "Asia/Tokyo", parent: None, clients: vec![("linux", 2)] },
    ];
    let mut f = tiered(&sites);
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY * 2, STEPS).unwrap();
    let m = f.master;
    let paris_client = f.clients["paris"][1];
    let queries = [
        (1, Scope::Site(Name::new("paris"))),
        (2, Scope::Client(paris_client)),
        (3, Scope::Client(NodeId(999_999))),
        (4, Scope::Site(Name::new("atlantis"))),
    ];
    for (q, scope) in queries.clone() {
        f.h.with(m, |n, now, out| match n {
            Node::Master(m) => m.handle_status_query(now, q, StatusKind::Current, scope, out),
            _ => unreachable!(),
        });
    }
    let before = f.h.delivered.len();
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let answers: BTreeMap<u64, _> =
        f.h.observed(m)
            .filter_map(|o| match o {
                Observation::StatusAnswered { query, answer } => Some((*query, answer.clone())),
                _ => None,
            })
            .collect();
    assert_eq!(answers[&1].sites.len(), 1);
    assert_eq!(answers[&1].sites[0].site.as_str(), "paris");
    assert_eq!(answers[&1].sites[0].clients(), 2);
    assert_eq!(answers[&2].client.as_ref().unwrap().client, paris_client);
    assert_eq!(answers[&3].error, Some(ErrorCode::UnknownClient));
    assert_eq!(answers[&4].error, Some(ErrorCode::UnknownSite));
    // The site drill-down went only down the emea branch: tokyo's local
    // received status requests for the client queries only.
    let tokyo = f.locals["tokyo"];
    let to_tokyo = f.h.delivered[before..]
        .iter()
        .filter(|d| d.2 == tokyo && d.3 == MessageKind::StatusRequest)
        .count();
    assert_eq!(to_tokyo, 2, "client drill-downs fan out; the site one is routed");
}

/// Statistics conservation across a middle tier: the master counts exactly
/// the clients that reported, per site and platform.
#[test]
fn statistics_are_conserved_through_a_middle_tier() {
    let sites = vec![
        SiteSpec { name: "emea", tz: "Europe/Paris", parent: None, clients: vec![("windows", 4)] },
        SiteSpec {
            name: "paris",
            tz: "Europe/Paris",
            parent: Some("emea"),
            clients: vec![("windows", 3), ("macos", 2)],
        },
        SiteSpec {
            name: "berlin",
            tz: "Europe/Berlin",
            parent: Some("emea"),
            clients: vec![("linux", 5)],
        },
    ];
    let mut f = tiered(&sites);
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY * 3, STEPS).unwrap();
    let master = f.h.master(f.master);
    let by_site: BTreeMap<&str, u64> =
        master.latest_stats().map(|s| (s.site.as_str(), s.clients())).collect();
    assert_eq!(by_site, [("berlin", 5), ("emea", 4), ("paris", 5)].into());
    let all = tiersync_engine::stats::consolidate(master.latest_stats());
    assert_eq!(all[&Name::new("windows")].clients, 7);
    assert_eq!(all[&Name::new("windows")].compliant, 7);
    assert_converged(&f);
}

/// Offline clients: a client off for days finds its newest policies at its
/// server and applies them on its first poll; its server kept its last
/// report meanwhile.
#[test]
fn offline_client_catches_up_on_return() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let laptop = f.clients["london"][0];
    let node = f.h.remove(laptop).unwrap();
    set_at_master(&mut f, antivirus(2), 2);
    f.h.run_for(DAY * 3, STEPS).unwrap();
    let local = f.h.local(f.locals["london"]);
    let rec = local.clients().get(laptop).expect("server kept the offline client's report");
    assert!(rec.report.applied.iter().all(|(_, r)| *r == Revision(1)));

    f.h.add(node);
    f.h.run_for(HOUR, STEPS).unwrap();
    assert_eq!(f.h.client(laptop).applied()[0].revision, Revision(2));
    assert_converged(&f);
}

/// A client switched off is still counted at its site, from the last
/// report its server kept: stale once silent for longer than the stale
/// time (three days by default), and not compliant once a newer revision
/// exists. Back on, it is fresh and compliant again.
#[test]
fn offline_client_is_counted_stale_and_behind_until_it_returns() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let laptop = f.clients["london"][0];
    assert_eq!(f.h.client(laptop).profile().platform.as_str(), "windows");
    let node = f.h.remove(laptop).unwrap();
    set_at_master(&mut f, antivirus(2), 2);
    f.h.run_for(DAY * 4, STEPS).unwrap();

    let windows = |f: &mut Fleet, query: u64| {
        let answer = status(f, query, StatusKind::Current, Scope::Site(Name::new("london")));
        assert_eq!(answer.error, None);
        assert_eq!(answer.sites.len(), 1, "{answer:?}");
        answer.sites[0].platforms[&Name::new("windows")].clone()
    };
    let away = windows(&mut f, 1);
    assert_eq!((away.clients, away.compliant, away.stale), (3, 2, 1), "{away:?}");

    f.h.add(node);
    f.h.run_for(HOUR * 2, STEPS).unwrap();
    let back = windows(&mut f, 2);
    assert_eq!((back.clients, back.compliant, back.stale), (3, 3, 0), "{back:?}");
}

/// Urgent changes take the wake-up path: every client applies within
/// minutes, where a normal change waits for the next window.
#[test]
fn urgent_change_wakes_the_tree() {
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let mut urgent = antivirus(2);
    urgent.urgent = true;
    let at = f.h.now();
    set_at_master(&mut f, urgent, 2);
    f.h.run_for(Duration::from_secs(300), STEPS).unwrap();
    assert_converged(&f);
    let wakes = count_kind(&f, MessageKind::Wake, at);
    assert_eq!(wakes, 2 + 10, "one wake per local, one per client");
}

/// Integrity: a local server that tampers with a policy cannot make a
/// client apply it; the client keeps its last good revision and reports
/// the refusal.
#[test]
fn tampered_policy_is_refused_and_last_good_kept() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let london = f.locals["london"];
    f.h.set_filter(Box::new(move |_, from, _, msg| match msg {
        Message::PolicyUpdate { current, policies, removed, full } if from == london => {
            let tampered = policies
                .iter()
                .map(|p| {
                    let mut e = (**p).clone();
                    e.params.insert("scan".into(), s("never"));
                    std::sync::Arc::new(e)
                })
                .collect();
            Verdict::Replace(Message::PolicyUpdate {
                current: *current,
                policies: tampered,
                removed: removed.clone(),
                full: *full,
            })
        }
        _ => Verdict::Deliver,
    }));
    set_at_master(&mut f, antivirus(2), 2);
    f.h.run_for(DAY, STEPS).unwrap();
    let c = f.h.client(f.clients["london"][0]);
    assert_eq!(c.applied()[0].revision, Revision(1), "last good revision kept");
    assert_eq!(c.applied()[0].params["scan"], s("daily"));
    let refusals =
        f.h.observed(c.id())
            .filter(|o| matches!(o, Observation::Rejected { reason: Rejection::Integrity(_), .. }))
            .count();
    assert!(refusals >= 1);
    // Tokyo, untouched, has revision 2.
    assert_eq!(f.h.client(f.clients["tokyo"][0]).applied()[0].revision, Revision(2));
}

/// Bad input from peers: an unknown peer, a revision from the future, an
/// unknown policy, get typed error replies and change nothing.
#[test]
fn bad_input_is_refused_without_state_change() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let m = f.master;
    let stranger = NodeId(4242);
    let before = f.h.master(m).store().current();
    let london = f.locals["london"];
    f.h.inject(stranger, m, Message::Sync { req: 5, have: Revision(0), stats: None });
    f.h.inject(london, m, Message::Check { req: 6, have: Revision(999) });
    f.h.inject(
        london,
        m,
        Message::Propose {
            origin: london,
            proposal: 77,
            change: Box::new(PolicyChange { id: Name::new("nonexistent"), ..Default::default() }),
        },
    );
    f.h.inject(stranger, f.clients["tokyo"][0], Message::Wake { revision: Revision(50) });
    let since = f.h.now();
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert_eq!(f.h.master(m).store().current(), before);
    let errors: Vec<_> =
        f.h.observations
            .iter()
            .filter(|(at, n, _)| *at >= since && *n == m)
            .filter_map(|(_, _, o)| match o {
                Observation::Rejected { peer, reason } => Some((*peer, reason.clone())),
                _ => None,
            })
            .collect();
    assert!(errors.contains(&(stranger, Rejection::UnknownPeer)));
    assert!(
        errors
            .iter()
            .any(|(p, r)| *p == london && matches!(r, Rejection::RevisionFromFuture { .. }))
    );
    assert!(errors.iter().any(|(_, r)| matches!(r, Rejection::UnknownPolicy(_))));
    let refused =
        f.h.delivered.iter().filter(|d| d.0 >= since && d.3 == MessageKind::Refused).count();
    assert_eq!(refused, 1);
}

/// Flat baselines are the same node code: `flat` downloads the full policy
/// every poll, `flat-conditional` only after a change.
#[test]
fn flat_and_conditional_baselines() {
    let mut bytes = BTreeMap::new();
    for mode in [ServeMode::Full, ServeMode::Conditional] {
        let mut f = Fleet::build(start(), &two_sites(), false, mode, |_| {});
        set_at_master(&mut f, antivirus(1), 1);
        f.h.run_for(DAY, STEPS).unwrap();
        assert_converged(&f);
        let polls = count_kind(&f, MessageKind::Poll, start());
        assert!((230..=250).contains(&polls), "10 clients x 24 polls, got {polls}");
        let b: usize =
            f.h.delivered.iter().filter(|d| d.3 == MessageKind::PolicyUpdate).map(|d| d.4).sum();
        bytes.insert(format!("{mode:?}"), b);
    }
    assert!(bytes["Full"] > 10 * bytes["Conditional"], "{bytes:?}");
}

/// Multi-tier: a regional local server serves site locals with the same
/// protocol; a change reaches the leaves after the regional's sync.
#[test]
fn three_level_tree_converges() {
    let sites = vec![
        SiteSpec { name: "apac", tz: "Asia/Singapore", parent: None, clients: vec![] },
        SiteSpec {
            name: "tokyo",
            tz: "Asia/Tokyo",
            parent: Some("apac"),
            clients: vec![("windows", 3)],
        },
        SiteSpec {
            name: "sydney",
            tz: "Australia/Sydney",
            parent: Some("apac"),
            clients: vec![("linux", 3)],
        },
    ];
    let mut f = tiered(&sites);
    set_at_master(&mut f, antivirus(1), 1);
    set_at_master(&mut f, firewall(), 2);
    f.h.run_for(DAY * 2, STEPS).unwrap();
    assert_converged(&f);
    // Leaves never spoke to the master.
    let apac = f.locals["apac"];
    for (_, from, to, kind, _) in &f.h.delivered {
        if *to == f.master && matches!(kind, MessageKind::Sync | MessageKind::Check) {
            assert_eq!(*from, apac);
        }
    }
}

/// Derivation order global < site < platform: when a site overlay and a
/// platform overlay set the same key, the platform's value wins; tables
/// merge key by key, so the site's other keys survive.
#[test]
fn platform_overlay_wins_over_site_overlay() {
    let mut f = tiered(&two_sites());
    let mut av = antivirus(1);
    av.params = Some(params(&[
        ("scan", s("daily")),
        ("limits", Value::Map(params(&[("cpu", Value::Int(50)), ("io", Value::Int(20))]))),
    ]));
    av.site_params = Some(
        [(
            Name::new("tokyo"),
            params(&[
                ("scan", s("weekly")),
                ("limits", Value::Map(params(&[("cpu", Value::Int(10))]))),
            ]),
        )]
        .into(),
    );
    av.platform_params = Some(
        [(
            Name::new("linux"),
            params(&[
                ("scan", s("hourly")),
                ("limits", Value::Map(params(&[("io", Value::Int(5))]))),
            ]),
        )]
        .into(),
    );
    set_at_master(&mut f, av, 1);
    f.h.run_for(DAY, STEPS).unwrap();
    assert_converged(&f);

    let get = |f: &Fleet, site: &str, i: usize| {
        f.h.client(f.clients[site][i]).applied()[0].params.clone()
    };
    let limits = |cpu, io| Value::Map(params(&[("cpu", Value::Int(cpu)), ("io", Value::Int(io))]));
    // Tokyo, linux: the platform's scan beats the site's; cpu from the site,
    // io from the platform.
    let p = get(&f, "tokyo", 3);
    assert_eq!((&p["scan"], &p["limits"]), (&s("hourly"), &limits(10, 5)));
    // Tokyo, windows: the site's overlay only.
    let p = get(&f, "tokyo", 0);
    assert_eq!((&p["scan"], &p["limits"]), (&s("weekly"), &limits(10, 20)));
    // London, windows: the global parameters.
    let p = get(&f, "london", 0);
    assert_eq!((&p["scan"], &p["limits"]), (&s("daily"), &limits(50, 20)));
}

/// The conflict rule with partial changes: two locals change the same
/// policy at the same instant, one a field the other does not touch, both
/// the same field. Each change applies to the master's current policy in
/// arrival order, so the untouched field keeps the earlier change, the
/// shared one takes the later, and every node ends on the one result.
#[test]
fn simultaneous_partial_changes_end_in_one_result_everywhere() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(HOUR, STEPS).unwrap();

    let london = PolicyChange {
        id: Name::new("antivirus"),
        params: Some(params(&[("scan", s("weekly"))])),
        platforms: Some(vec![Name::new("windows")]),
        ..Default::default()
    };
    let tokyo = PolicyChange {
        id: Name::new("antivirus"),
        params: Some(params(&[("scan", s("never"))])),
        ..Default::default()
    };
    set_at_local(&mut f, "london", london, 1);
    set_at_local(&mut f, "tokyo", tokyo, 1);
    f.h.run_for(DAY * 2, STEPS).unwrap();

    let order: Vec<NodeId> = f
        .h
        .observed(f.master)
        .filter_map(|o| match o {
            Observation::RevisionAssigned { origin, proposal: 1, .. } if *origin != f.master => {
                Some(*origin)
            }
            _ => None,
        })
        .collect();
    assert_eq!(order.len(), 2);
    let later = if order[1] == f.locals["tokyo"] { "never" } else { "weekly" };
    let held = f.h.master(f.master).store().get(&Name::new("antivirus")).unwrap().clone();
    let spec = &held.full.record.spec;
    assert_eq!(spec.params["scan"], s(later), "the later arrival wins the shared field");
    assert_eq!(spec.platforms, vec![Name::new("windows")], "london's platform list survives");
    assert_locals_agree(&f);
    assert_converged(&f);
}

/// Local-tier integrity: a tampered reply to a local server is refused,
/// the server keeps its last good revision, and the refusal reaches the
/// master in that site's statistics.
#[test]
fn tampered_reply_to_a_local_is_refused_and_reported_upward() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    let london = f.locals["london"];
    f.h.set_filter(Box::new(move |_, _, to, msg| match msg {
        Message::Policies { req, upto, changes, stats_acked } if to == london => {
            let forged: Vec<_> = changes
                .policies()
                .iter()
                .map(|p| {
                    let mut p = (**p).clone();
                    p.record.spec.params.insert("scan".into(), s("never"));
                    std::sync::Arc::new(p)
                })
                .collect();
            Verdict::Replace(Message::Policies {
                req: *req,
                upto: *upto,
                changes: tiersync_engine::message::Changes::Delta(forged),
                stats_acked: *stats_acked,
            })
        }
        _ => Verdict::Deliver,
    }));
    set_at_master(&mut f, antivirus(2), 2);
    f.h.run_for(DAY * 2, STEPS).unwrap();

    let l = f.h.local(london);
    assert_eq!(l.store().current(), Revision(1), "last good revision kept");
    assert_eq!(l.store().get(&Name::new("antivirus")).unwrap().revision(), Revision(1));
    assert!(l.rejected_by_server() >= 1);
    let integrity =
        f.h.observed(london)
            .filter(|o| matches!(o, Observation::Rejected { reason: Rejection::Integrity(_), .. }))
            .count() as u64;
    assert_eq!(integrity, l.rejected_by_server());
    let at_master =
        f.h.master(f.master)
            .latest_stats()
            .find(|s| s.site.as_str() == "london")
            .map(|s| s.rejected_by_server);
    assert!(at_master.is_some_and(|n| n >= 1), "the master sees it: {at_master:?}");
    let tokyo_rev = f.h.local(f.locals["tokyo"]).store().current();
    assert_eq!(tokyo_rev, Revision(2));

    // Once the tampering stops, London catches up.
    f.h.clear_filter();
    f.h.run_for(DAY, STEPS).unwrap();
    assert_converged(&f);
}

/// Historical status at a point in time answers from the uploads stored
/// by then; before any upload it is empty.
#[test]
fn historical_status_at_a_point_in_time() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY * 3, STEPS).unwrap();
    let history = f.h.master(f.master).history().to_vec();
    let london = f.locals["london"];
    let uploads: Vec<_> = history.iter().filter(|u| u.from == london).collect();
    assert!(uploads.len() >= 2, "a sync a night");

    // Just before London's second upload: its first is the answer.
    let at = uploads[1].received - Duration::from_secs(1);
    let answer =
        status(&mut f, 1, StatusKind::Historical { at: Some(at) }, Scope::Site("london".into()));
    assert_eq!(answer.sites, uploads[0].sites);
    let answer =
        status(&mut f, 2, StatusKind::Historical { at: Some(uploads[1].received) }, Scope::All);
    let got = answer.sites.iter().find(|s| s.site.as_str() == "london").unwrap();
    assert_eq!(Some(got), uploads[1].sites.first());
    for s in &answer.sites {
        assert!(s.as_of <= uploads[1].received);
    }

    let before_any = history[0].received - Duration::from_secs(1);
    let answer = status(&mut f, 3, StatusKind::Historical { at: Some(before_any) }, Scope::All);
    assert!(answer.sites.is_empty() && answer.error.is_none());
}

/// A silent middle tier: the master answers at its deadline, marking the
/// middle tier's site and every site known below it missing. A silent leaf
/// below an answering middle tier: the middle tier answers at half the
/// time left, marking the leaf.
#[test]
fn status_deadline_and_missing_sites_below_a_silent_middle_tier() {
    let sites = vec![
        SiteSpec { name: "emea", tz: "Europe/London", parent: None, clients: vec![("windows", 1)] },
        SiteSpec {
            name: "paris",
            tz: "Europe/Paris",
            parent: Some("emea"),
            clients: vec![("windows", 2)],
        },
        SiteSpec { name: "tokyo", tz: "Asia/Tokyo", parent: None, clients: vec![("linux", 2)] },
    ];
    for silent in ["emea", "paris"] {
        let mut f = tiered(&sites);
        set_at_master(&mut f, antivirus(1), 1);
        f.h.run_for(DAY * 2, STEPS).unwrap();
        let quiet = f.locals[silent];
        f.h.set_filter(Box::new(move |_, from, _, msg| match msg {
            Message::StatusReply { .. } if from == quiet => Verdict::Drop,
            _ => Verdict::Deliver,
        }));
        let asked = f.h.now();
        let answer = status(&mut f, 1, StatusKind::Current, Scope::All);
        let answered_at =
            f.h.observations
                .iter()
                .find(|(_, n, o)| {
                    *n == f.master && matches!(o, Observation::StatusAnswered { query: 1, .. })
                })
                .map(|(at, _, _)| *at)
                .unwrap();
        let names: Vec<&str> = answer.sites.iter().map(|s| s.site.as_str()).collect();
        let missing: Vec<&str> = answer.missing.iter().map(|s| s.as_str()).collect();
        if silent == "emea" {
            assert_eq!(missing, ["emea", "paris"]);
            assert_eq!(names, ["tokyo"]);
            assert_eq!(answered_at, asked + Duration::from_secs(30), "at the master's deadline");
        } else {
            assert_eq!(missing, ["paris"]);
            assert_eq!(names, ["emea", "tokyo"]);
            // emea gave paris half of the 30 s, then answered at once.
            let wait = answered_at.saturating_since(asked);
            assert!(wait >= Duration::from_secs(15) && wait < Duration::from_secs(16), "{wait:?}");
        }
    }
}

/// Blocks 241/243: a local server asked to fetch now gets the master's
/// change at once, long before its next window; the other site waits.
#[test]
fn fetch_now_gets_a_change_at_once() {
    let mut f = Fleet::build(start(), &two_sites(), true, ServeMode::Conditional, |_| {});
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_until(t("2026-03-02T09:00:00Z"), STEPS).unwrap();
    let rev = set_at_master(&mut f, antivirus(2), 2);
    let since = f.h.now();
    fetch_now(&mut f, "london");
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert_eq!(f.h.local(f.locals["london"]).store().current(), rev);
    assert_eq!(f.h.local(f.locals["tokyo"]).store().current(), Revision(1));
    assert_eq!(sent_by(&f, f.locals["london"], MessageKind::Check, since), 1);
    assert_eq!(sent_by(&f, f.locals["london"], MessageKind::Sync, since), 0, "no upload");
}

/// The harness drops a removed node's timers: a client switched off and
/// on again runs one schedule, not two overlapping ones.
#[test]
fn a_removed_node_leaves_no_timers_behind() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(HOUR * 3, STEPS).unwrap();
    let id = f.clients["london"][0];
    let node = f.h.remove(id).unwrap();
    f.h.add(node);
    let since = f.h.now();
    f.h.run_for(HOUR * 6, STEPS).unwrap();
    let polls: Vec<Time> =
        f.h.delivered
            .iter()
            .filter(|d| d.0 >= since && d.1 == id && d.3 == MessageKind::Poll)
            .map(|d| d.0)
            .collect();
    assert!(polls.len() >= 5, "{polls:?}");
    for w in polls.windows(2) {
        assert_eq!(w[1].saturating_since(w[0]), HOUR, "one poll an hour: {polls:?}");
    }
}

/// A reply to a local server refused in part: the revisions that verified
/// are stored although the server has not advanced past the refused one,
/// and its clients, polling at the server's current revision, still
/// receive them (the answer to a poll must not assume no held revision is
/// newer than the server's current one).
#[test]
fn revisions_verified_from_a_partly_refused_reply_reach_clients() {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY, STEPS).unwrap();
    assert_converged(&f);
    let london = f.locals["london"];
    let client = f.clients["london"][0];

    // Forge only the firewall in what the master sends London.
    f.h.set_filter(Box::new(move |_, _, to, msg| match msg {
        Message::Policies { req, upto, changes, stats_acked } if to == london => {
            let forged: Vec<_> = changes
                .policies()
                .iter()
                .map(|p| {
                    if p.record.id.as_str() != "firewall" {
                        return p.clone();
                    }
                    let mut p = (**p).clone();
                    p.record.spec.params.insert("scan".into(), s("never"));
                    std::sync::Arc::new(p)
                })
                .collect();
            Verdict::Replace(Message::Policies {
                req: *req,
                upto: *upto,
                changes: tiersync_engine::message::Changes::Delta(forged),
                stats_acked: *stats_acked,
            })
        }
        _ => Verdict::Deliver,
    }));
    let antivirus_rev = set_at_master(&mut f, antivirus(2), 2);
    set_at_master(&mut f, firewall(), 3);
    fetch_now(&mut f, "london");
    f.h.run_for(Duration::from_secs(5), STEPS).unwrap();

    let l = f.h.local(london);
    assert_eq!(l.store().current(), Revision(1), "not advanced past the refused revision");
    let held = l.store().get(&Name::new("antivirus")).unwrap().revision();
    assert_eq!(held, antivirus_rev, "the verified revision is held");
    assert!(l.rejected_by_server() >= 1);

    poll_now(&mut f, client);
    f.h.run_for(Duration::from_secs(5), STEPS).unwrap();
    let applied = f.h.client(client).applied();
    let av = applied.iter().find(|e| e.id.as_str() == "antivirus").unwrap();
    assert_eq!(av.revision, antivirus_rev, "the client polling at revision 1 got it");
}

/// A master serving every client directly (the flat baseline) keeps a
/// small memo of the (site, platform) views it served last, keyed by the
/// names' allocations. With more pairs than the memo has slots, pairs share
/// slots and push each other out; a poll must still get its own pair's
/// variant, never the one a slot held before. Forty sites of three
/// platforms, each site and each platform with its own parameter: 120
/// variants, polled twice in two orders with names shared as a simulator
/// shares them (one allocation per site and per platform).
#[test]
fn flat_master_gives_each_of_many_site_platform_pairs_its_own_variant() {
    const PLATFORMS: [&str; 3] = ["windows", "macos", "linux"];
    let names: Vec<&'static str> =
        (0..40).map(|i| &*Box::leak(format!("site{i:02}").into_boxed_str())).collect();
    let sites: Vec<SiteSpec> = names
        .iter()
        .map(|&name| SiteSpec {
            name,
            tz: "Europe/London",
            parent: None,
            clients: PLATFORMS.iter().map(|&p| (p, 1)).collect(),
        })
        .collect();
    let mut f = Fleet::build(start(), &sites, false, ServeMode::Conditional, |_| {});
    let mut change = antivirus(1);
    change.site_params =
        Some(names.iter().map(|&n| (Name::new(n), params(&[("site_tag", s(n))]))).collect());
    change.platform_params = Some(
        PLATFORMS.iter().map(|&p| (Name::new(p), params(&[("platform_tag", s(p))]))).collect(),
    );
    set_at_master(&mut f, change, 1);
    f.h.run_for(DAY, STEPS).unwrap();
    assert_converged(&f);

    // Full polls (revision zero) from every pair, site by site and then
    // platform by platform, with one name allocation per site and platform.
    let site_names: Vec<Name> = names.iter().map(|&n| Name::new(n)).collect();
    let platform_names: Vec<Name> = PLATFORMS.iter().map(|&p| Name::new(p)).collect();
    let pairs = |by_site: bool| -> Vec<(usize, usize)> {
        let all = (0..names.len()).flat_map(|i| (0..PLATFORMS.len()).map(move |j| (i, j)));
        let mut all: Vec<_> = all.collect();
        if !by_site {
            all.sort_by_key(|&(i, j)| (j, i));
        }
        all
    };
    let tap = tap_quiet(&mut f);
    for by_site in [true, false] {
        for (i, j) in pairs(by_site) {
            let client = f.clients[names[i]][j];
            let (site, platform) = (site_names[i].clone(), platform_names[j].clone());
            f.h.inject(client, f.master, Message::Poll { have: Revision::ZERO, site, platform });
        }
        f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    }

    for (i, j) in pairs(true) {
        let client = f.clients[names[i]][j];
        let variants: Vec<(Option<Name>, Name)> = tapped_to(&tap, client)
            .into_iter()
            .filter_map(|m| match m {
                Message::PolicyUpdate { policies, full: true, .. } => {
                    Some((policies[0].site.clone(), policies[0].platform.clone()))
                }
                _ => None,
            })
            .collect();
        let want = (Some(site_names[i].clone()), platform_names[j].clone());
        assert_eq!(variants, vec![want.clone(), want], "client {client}");
    }
}
