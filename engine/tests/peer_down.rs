//! A driver that sees connections tells a server when a child's
//! connection closes (`handle_peer_down`) or is back (`handle_peer_up`):
//! current status then stops waiting for that child and marks the sites
//! below it missing at once, instead of at the deadline.

mod common;

use std::time::Duration;

use common::*;
use tiersync_engine::message::Scope;
use tiersync_engine::outbox::StatusAnswer;
use tiersync_engine::testkit::{Fleet, SiteSpec, Verdict};
use tiersync_engine::{Message, Name, Node, NodeId, Observation, StatusKind, Time};

/// The harness's one-way latency.
const HOP: Duration = Duration::from_millis(50);

/// Starts a current-status query at the master without waiting for it.
fn ask(f: &mut Fleet, query: u64, scope: Scope) {
    let m = f.master;
    f.h.with(m, |n, now, out| match n {
        Node::Master(m) => m.handle_status_query(now, query, StatusKind::Current, scope, out),
        _ => unreachable!(),
    });
}

/// Every answer the master gave to `query`, with its time.
fn answers(f: &Fleet, query: u64) -> Vec<(Time, StatusAnswer)> {
    f.h.observations
        .iter()
        .filter(|(_, n, _)| *n == f.master)
        .filter_map(|(at, _, o)| match o {
            Observation::StatusAnswered { query: q, answer } if *q == query => {
                Some((*at, answer.clone()))
            }
            _ => None,
        })
        .collect()
}

/// The one answer to `query`, with its time.
fn answer(f: &Fleet, query: u64) -> (Time, StatusAnswer) {
    let mut all = answers(f, query);
    assert_eq!(all.len(), 1, "query {query} answered exactly once");
    all.remove(0)
}

fn names(sites: impl IntoIterator<Item = String>) -> Vec<String> {
    sites.into_iter().collect()
}

fn answered_sites(a: &StatusAnswer) -> Vec<String> {
    names(a.sites.iter().map(|s| s.site.to_string()))
}

fn missing(a: &StatusAnswer) -> Vec<String> {
    names(a.missing.iter().map(|s| s.to_string()))
}

fn down(f: &mut Fleet, at: NodeId, peer: NodeId) {
    f.h.with(at, |n, now, out| n.handle_peer_down(now, peer, out));
}

fn up(f: &mut Fleet, at: NodeId, peer: NodeId) {
    f.h.with(at, |n, now, out| n.handle_peer_up(now, peer, out));
}

/// Drops every message `silent` sends: its connection is broken.
fn silence(f: &mut Fleet, silent: NodeId) {
    f.h.set_filter(Box::new(
        move |_, from, _, _| {
            if from == silent { Verdict::Drop } else { Verdict::Deliver }
        },
    ));
}

/// Two sites, policies held and statistics uploaded everywhere.
fn settled() -> Fleet {
    let mut f = tiered(&two_sites());
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY + HOUR * 2, STEPS).unwrap();
    f
}

/// A query already waiting for a child whose connection then closes
/// answers at that instant, marking the child's site missing, not at the
/// 30 s deadline; the deadline later adds no second answer.
#[test]
fn a_pending_query_stops_waiting_for_a_child_that_went_down() {
    let mut f = settled();
    let (m, tokyo) = (f.master, f.locals["tokyo"]);
    silence(&mut f, tokyo);
    let asked = f.h.now();
    ask(&mut f, 1, Scope::All);
    f.h.run_for(Duration::from_secs(2), STEPS).unwrap();
    assert!(answers(&f, 1).is_empty(), "still waiting for tokyo, as before this input existed");

    down(&mut f, m, tokyo);
    let (at, a) = answer(&f, 1);
    assert_eq!(at, asked + Duration::from_secs(2), "answered when tokyo went down");
    assert_eq!(missing(&a), ["tokyo"]);
    assert_eq!(answered_sites(&a), ["london"]);
    assert_eq!(a.sites[0].clients(), 5);

    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    answer(&f, 1);
}

/// While a child is down, new queries do not ask it and do not wait: with
/// every child down the answer comes within the operator's call. Being up
/// again, by `handle_peer_up` or by any message from the child, makes the
/// next query ask it again.
#[test]
fn queries_while_a_child_is_down_skip_it_until_it_is_up() {
    let mut f = settled();
    let (m, tokyo, london) = (f.master, f.locals["tokyo"], f.locals["london"]);
    let tap = tap_quiet(&mut f);
    let requests_to = |tap: &Tap, to| {
        tapped_to(tap, to).iter().filter(|m| matches!(m, Message::StatusRequest { .. })).count()
    };

    down(&mut f, m, tokyo);
    let asked = f.h.now();
    ask(&mut f, 1, Scope::All);
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (at, a) = answer(&f, 1);
    assert_eq!(at, asked + HOP * 2, "london's round trip only");
    assert_eq!((answered_sites(&a), missing(&a)), (vec!["london".into()], vec!["tokyo".into()]));
    assert_eq!(requests_to(&tap, tokyo), 0, "a child known down is not asked");

    down(&mut f, m, london);
    let asked = f.h.now();
    ask(&mut f, 2, Scope::All);
    let (at, a) = answer(&f, 2);
    assert_eq!(at, asked, "nothing to wait for: answered in the operator's call");
    assert!(a.sites.is_empty());
    assert_eq!(missing(&a), ["london", "tokyo"]);

    // Up again by the driver's word.
    up(&mut f, m, tokyo);
    ask(&mut f, 3, Scope::All);
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (_, a) = answer(&f, 3);
    assert_eq!((answered_sites(&a), missing(&a)), (vec!["tokyo".into()], vec!["london".into()]));
    assert_eq!(requests_to(&tap, tokyo), 1);

    // Up again because it spoke: London synchronises.
    sync_now(&mut f, "london");
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    ask(&mut f, 4, Scope::All);
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (_, a) = answer(&f, 4);
    assert_eq!(answered_sites(&a), ["london", "tokyo"]);
    assert!(a.missing.is_empty());
}

/// A middle tier told that a leaf's connection closed answers its parent
/// at once, marking the leaf, instead of at half the time left (15 s); it
/// then skips the leaf in later requests.
#[test]
fn a_middle_tier_answers_at_once_for_a_leaf_that_went_down() {
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
    let mut f = tiered(&sites);
    set_at_master(&mut f, antivirus(1), 1);
    f.h.run_for(DAY * 2, STEPS).unwrap();
    let (emea, paris) = (f.locals["emea"], f.locals["paris"]);
    silence(&mut f, paris);

    let asked = f.h.now();
    ask(&mut f, 1, Scope::All);
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    assert!(answers(&f, 1).is_empty());
    down(&mut f, emea, paris);
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (at, a) = answer(&f, 1);
    assert_eq!(at, asked + Duration::from_secs(1) + HOP, "emea's reply, one hop after");
    assert_eq!(answered_sites(&a), ["emea", "tokyo"]);
    assert_eq!(missing(&a), ["paris"]);

    let asked = f.h.now();
    ask(&mut f, 2, Scope::Site(Name::new("paris")));
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (at, a) = answer(&f, 2);
    assert_eq!(at, asked + HOP * 2, "routed to emea, which does not ask paris");
    assert!(a.sites.is_empty());
    assert_eq!(missing(&a), ["paris"]);
}

/// Only child servers count: the connection of a client, of a server two
/// tiers down or of an unknown peer closing changes nothing, and the query
/// still waits for the silent child until the deadline.
#[test]
fn peers_that_are_not_child_servers_are_ignored() {
    let mut f = settled();
    let (m, tokyo) = (f.master, f.locals["tokyo"]);
    silence(&mut f, tokyo);
    let asked = f.h.now();
    ask(&mut f, 1, Scope::All);
    let client = f.clients["tokyo"][0];
    for peer in [client, NodeId(999_999), m] {
        down(&mut f, m, peer);
    }
    let london = f.locals["london"];
    down(&mut f, london, m);
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (at, a) = answer(&f, 1);
    assert_eq!(at, asked + Duration::from_secs(30), "at the deadline, as before");
    assert_eq!(missing(&a), ["tokyo"]);
    assert_eq!(answered_sites(&a), ["london"]);
}

/// A drill-down for a client of a site that is down names the site as not
/// answering rather than calling the client unknown; a client of a site
/// that is up is still found.
#[test]
fn a_client_drill_down_with_its_site_down_marks_the_site() {
    let mut f = settled();
    let (m, tokyo) = (f.master, f.locals["tokyo"]);
    down(&mut f, m, tokyo);
    let (in_tokyo, in_london) = (f.clients["tokyo"][0], f.clients["london"][0]);
    ask(&mut f, 1, Scope::Client(in_tokyo));
    ask(&mut f, 2, Scope::Client(in_london));
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (_, a) = answer(&f, 1);
    assert_eq!((&a.client, a.error), (&None, None));
    assert_eq!(missing(&a), ["tokyo"]);
    let (_, a) = answer(&f, 2);
    assert_eq!(a.client.as_ref().map(|d| d.client), Some(in_london));
    assert_eq!(missing(&a), ["tokyo"]);
}

/// Two queries waiting for the same child both answer when it goes down,
/// in the order they were asked, and one still waiting for another child
/// keeps waiting for it.
#[test]
fn every_query_waiting_for_the_child_answers_in_order() {
    let mut f = settled();
    let (m, tokyo, london) = (f.master, f.locals["tokyo"], f.locals["london"]);
    f.h.set_filter(Box::new(move |_, from, _, _| {
        if from == tokyo || from == london { Verdict::Drop } else { Verdict::Deliver }
    }));
    ask(&mut f, 1, Scope::Site(Name::new("tokyo")));
    ask(&mut f, 2, Scope::Site(Name::new("tokyo")));
    ask(&mut f, 3, Scope::All);
    f.h.run_for(Duration::from_secs(1), STEPS).unwrap();
    let mark = f.h.observations.len();
    down(&mut f, m, tokyo);
    let order: Vec<u64> = f.h.observations[mark..]
        .iter()
        .filter_map(|(_, _, o)| match o {
            Observation::StatusAnswered { query, .. } => Some(*query),
            _ => None,
        })
        .collect();
    assert_eq!(order, [1, 2], "query 3 still waits for london");
    f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
    let (_, a) = answer(&f, 3);
    assert_eq!(missing(&a), ["london", "tokyo"]);
}
