//! Property tests of the engine's invariants: convergence, conservation of
//! counts, associativity of consolidation, codec round trips, and a
//! decoder that never panics. A failing case prints its inputs; proptest
//! keeps the seed in `proptest-regressions/` to replay it.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use tiersync_engine::codec::{self, DecodeError};
use tiersync_engine::message::{Changes, ClientDetail, ErrorCode, Scope, StatsUpload};
use tiersync_engine::outbox::{Observation, Rejection};
use tiersync_engine::policy::{EffectivePolicy, SignedPolicy};
use tiersync_engine::stats::{ClientTable, PlatformStats, SecurityReport, SiteStats, consolidate};
use tiersync_engine::testkit::{Fleet, SiteSpec};
use tiersync_engine::{
    Blob, Message, MessageKind, Name, NodeId, Params, PolicyChange, Revision, Time, Value,
};

const PLATFORMS: [&str; 3] = ["windows", "macos", "linux"];
const POLICIES: [&str; 3] = ["antivirus", "firewall", "disk"];

/// Sites in the order of a top-down sync round: a parent before its
/// children.
fn sites() -> Vec<SiteSpec> {
    vec![
        SiteSpec { name: "emea", tz: "Europe/London", parent: None, clients: vec![("windows", 2)] },
        SiteSpec {
            name: "tokyo",
            tz: "Asia/Tokyo",
            parent: None,
            clients: vec![("macos", 1), ("linux", 1)],
        },
        SiteSpec {
            name: "paris",
            tz: "Europe/Paris",
            parent: Some("emea"),
            clients: vec![("windows", 1), ("linux", 1)],
        },
    ]
}

/// A change of some of a policy's fields; `None` keeps the field.
#[derive(Clone, Debug)]
struct ChangeOp {
    /// Where it is made: the master, or a local server (site index).
    at: Option<usize>,
    policy: usize,
    params: Option<i64>,
    content: Option<u16>,
    /// A subset of [`PLATFORMS`], as a bit mask (0 retires the policy).
    platforms: Option<u8>,
    platform_overlay: Option<bool>,
    site_overlay: Option<bool>,
    urgent: bool,
}

impl ChangeOp {
    fn to_change(&self) -> PolicyChange {
        let v = self.params.unwrap_or(0);
        let platforms = self.platforms.map(|mask| {
            (0..3).filter(|i| mask & (1 << i) != 0).map(|i| Name::new(PLATFORMS[i])).collect()
        });
        // Overlays touch the same key as the global parameters, so the
        // derivation order matters to the result.
        let platform_params = self.platform_overlay.map(|on| {
            let mut m = BTreeMap::new();
            if on {
                m.insert(Name::new("linux"), params(&[("level", Value::Int(-1))]));
            }
            m
        });
        let site_params = self.site_overlay.map(|on| {
            let mut m = BTreeMap::new();
            if on {
                m.insert(
                    Name::new("paris"),
                    params(&[("level", Value::Int(v / 2)), ("p", s("x"))]),
                );
            }
            m
        });
        PolicyChange {
            id: Name::new(POLICIES[self.policy]),
            params: self.params.map(|v| params(&[("level", Value::Int(v)), ("mode", s("on"))])),
            content: self.content.map(|c| Blob::filler(64 + usize::from(c % 512), u64::from(c))),
            platforms,
            platform_params,
            site_params,
            urgent: self.urgent,
        }
    }
}

#[derive(Clone, Debug)]
enum Op {
    Change(ChangeOp),
    /// Let simulated time pass.
    Wait {
        minutes: u32,
    },
    /// An on-demand sync of a local server (site index).
    SyncNow(usize),
    /// An on-demand fetch by a local server (site index).
    FetchNow(usize),
    /// A client polls now (index into every client).
    PollNow(usize),
}

fn change_op() -> impl Strategy<Value = ChangeOp> {
    (
        (proptest::option::of(0usize..3), 0usize..3),
        proptest::option::of(-1000i64..1000),
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..8),
        (proptest::option::of(any::<bool>()), proptest::option::of(any::<bool>())),
        proptest::bool::weighted(0.2),
    )
        .prop_map(|((at, policy), params, content, platforms, (po, so), urgent)| ChangeOp {
            at,
            policy,
            params,
            content,
            platforms,
            platform_overlay: po,
            site_overlay: so,
            urgent,
        })
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => change_op().prop_map(Op::Change),
        3 => (1u32..3000).prop_map(|minutes| Op::Wait { minutes }),
        1 => (0usize..3).prop_map(Op::SyncNow),
        1 => (0usize..3).prop_map(Op::FetchNow),
        1 => (0usize..8).prop_map(Op::PollNow),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Any sequence of partial changes at the master and at local servers
    /// (platform lists included), interleaved with waits, on-demand syncs,
    /// fetches and polls, converges after one final sync round: every
    /// local server holds the master's set, every client enforces the
    /// derivation of it for its site and platform, and the master counts,
    /// per platform and per site, exactly the clients that reported.
    #[test]
    fn any_change_sequence_converges(ops in proptest::collection::vec(op(), 1..16)) {
        let site_specs = sites();
        let mut f = tiered(&site_specs);
        let first = ChangeOp {
            at: None, policy: 0, params: Some(1), content: Some(1), platforms: Some(7),
            platform_overlay: Some(true), site_overlay: Some(true), urgent: false,
        };
        set_at_master(&mut f, first.to_change(), 0);

        // Warm-up: every client reports once, then every site uploads,
        // leaves first, so the master has heard of every client.
        f.h.run_for(HOUR + Duration::from_secs(60), STEPS).unwrap();
        for spec in site_specs.iter().rev() {
            sync_now(&mut f, spec.name);
            f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
        }

        let clients = f.all_clients();
        for (proposal, o) in (1u64..).zip(ops) {
            match o {
                Op::Change(c) => match c.at {
                    None => {
                        let m = f.master;
                        f.h.with(m, |n, now, out| match n {
                            tiersync_engine::Node::Master(m) => {
                                // A change that creates nothing is refused; fine.
                                let _ = m.handle_set_policy(now, c.to_change(), proposal, out);
                            }
                            _ => unreachable!(),
                        });
                    }
                    Some(i) => set_at_local(&mut f, site_specs[i].name, c.to_change(), proposal),
                },
                Op::Wait { minutes } => {
                    f.h.run_for(Duration::from_secs(u64::from(minutes) * 60), STEPS).unwrap();
                }
                Op::SyncNow(i) => sync_now(&mut f, site_specs[i].name),
                Op::FetchNow(i) => fetch_now(&mut f, site_specs[i].name),
                Op::PollNow(i) => poll_now(&mut f, clients[i % clients.len()]),
            }
        }

        // The final round: what is in flight lands (proposals reach the
        // master), then each local server syncs once, parents first, and
        // each client polls once.
        f.h.run_for(Duration::from_secs(120), STEPS).unwrap();
        for spec in &site_specs {
            sync_now(&mut f, spec.name);
            f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
        }
        for id in &clients {
            poll_now(&mut f, *id);
        }
        f.h.run_for(Duration::from_secs(60), STEPS).unwrap();

        assert_locals_agree(&f);
        assert_converged(&f);
        for id in &clients {
            prop_assert_eq!(f.h.client(*id).state().rejected, 0, "no tamper signal at {}", id);
        }
        // Honest servers never leave out content a receiver lacks, and
        // nothing fails verification.
        let refused = f.h.observations.iter().find(|(_, _, o)| {
            matches!(
                o,
                Observation::Rejected {
                    reason: Rejection::Integrity(_) | Rejection::MissingContent { .. },
                    ..
                }
            )
        });
        prop_assert!(refused.is_none(), "{:?}", refused);

        // Conservation: per platform and per site, the master's counts are
        // the clients that reported (every client, after the warm-up).
        let master = f.h.master(f.master);
        let mut want: BTreeMap<Name, u64> = BTreeMap::new();
        for id in &clients {
            *want.entry(f.h.client(*id).profile().platform.clone()).or_default() += 1;
        }
        let got: BTreeMap<Name, u64> =
            consolidate(master.latest_stats()).into_iter().map(|(p, s)| (p, s.clients)).collect();
        prop_assert_eq!(got, want);
        for spec in &site_specs {
            let counted =
                master.latest_stats().find(|s| s.site.as_str() == spec.name).map(|s| s.clients());
            let expected: u32 = spec.clients.iter().map(|(_, n)| n).sum();
            prop_assert_eq!(counted, Some(u64::from(expected)), "site {}", spec.name);
        }
    }

    /// Consolidating consolidations equals consolidating every client at
    /// once: the per-platform table over all clients equals the merge of
    /// the tables of any partition of them into three or more groups (the
    /// middle tiers), merged flat or merged again in pairs.
    #[test]
    fn consolidation_is_associative(
        clients in proptest::collection::vec(client_report(), 1..60),
        groups in 3usize..7,
        assign in proptest::collection::vec(0usize..64, 60),
        targets in compliance_targets(),
    ) {
        let now = Time::from_secs(1_800_000_000);
        let stale_after = Duration::from_secs(86_400);
        let mut all = ClientTable::default();
        let mut parts = vec![ClientTable::default(); groups];
        for (i, (report, age)) in clients.iter().enumerate() {
            let seen = now - Duration::from_secs(*age);
            all.store(NodeId(i as u32), report.clone(), seen);
            parts[assign[i] % groups].store(NodeId(i as u32), report.clone(), seen);
        }
        let whole = all.consolidate(now, stale_after, &targets);
        let per_group: Vec<Vec<SiteStats>> =
            parts.iter().map(|t| t.consolidate(now, stale_after, &targets)).collect();

        // Flat: every group's site statistics merged at once.
        let flat = consolidate(per_group.iter().flatten());
        prop_assert_eq!(&flat, &consolidate(&whole));

        // Nested: each group consolidated into one table, then merged in
        // pairs, as a tree of middle tiers would.
        let mut level: Vec<SiteStats> = per_group
            .iter()
            .enumerate()
            .map(|(i, g)| wrap(&format!("g{i}"), consolidate(g)))
            .collect();
        while level.len() > 1 {
            level = level
                .chunks(2)
                .enumerate()
                .map(|(i, pair)| wrap(&format!("m{i}"), consolidate(pair)))
                .collect();
        }
        prop_assert_eq!(&level[0].platforms, &flat);

        // Per site, the groups' statistics of that site add up too.
        for site in &whole {
            let pieces = per_group.iter().flatten().filter(|s| s.site == site.site);
            prop_assert_eq!(consolidate(pieces), site.platforms.clone());
        }
        prop_assert_eq!(flat.values().map(|p| p.clients).sum::<u64>(), clients.len() as u64);
    }

    /// Every message survives encode then decode, and `encoded_len` is the
    /// exact length of the frame written.
    #[test]
    fn codec_round_trip(msg in message()) {
        let frame = codec::encode(&msg).unwrap();
        prop_assert_eq!(Ok(frame.len()), codec::encoded_len(&msg));
        let (back, used) = codec::decode(&frame, codec::DEFAULT_MAX_FRAME).unwrap();
        prop_assert_eq!(used, frame.len());
        prop_assert_eq!(back, msg);
    }

    /// Arbitrary bytes never make the decoder panic; a frame cut short is
    /// reported as truncated.
    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = codec::decode(&bytes, 1 << 16);
        let mut framed = ((bytes.len() + 1) as u32).to_be_bytes().to_vec();
        framed.push(codec::PROTOCOL_VERSION);
        framed.extend_from_slice(&bytes);
        let _ = codec::decode(&framed, 1 << 16);
        if framed.len() > 5 {
            let cut = &framed[..framed.len() - 1];
            let is_truncated =
                matches!(codec::decode(cut, 1 << 16), Err(DecodeError::Truncated { .. }));
            prop_assert!(is_truncated);
        }
    }

    /// Consolidation of peer-supplied counts saturates instead of
    /// overflowing, whatever the values.
    #[test]
    fn absorbing_extreme_counts_saturates(
        tables in proptest::collection::vec(extreme_stats(), 1..6),
    ) {
        let mut sum = PlatformStats::default();
        for t in &tables {
            sum.absorb(t);
        }
        let total = |f: fn(&PlatformStats) -> u64| -> u64 {
            let exact: u128 = tables.iter().map(|t| u128::from(f(t))).sum();
            u64::try_from(exact).unwrap_or(u64::MAX)
        };
        prop_assert_eq!(sum.clients, total(|p| p.clients));
        prop_assert_eq!(sum.threats, total(|p| p.threats));
        prop_assert_eq!(sum.rejected_policies, total(|p| p.rejected_policies));
        let v7: u128 = tables
            .iter()
            .map(|t| u128::from(t.engine_versions.get(&7).copied().unwrap_or(0)))
            .sum();
        let v7 = u64::try_from(v7).unwrap_or(u64::MAX);
        prop_assert_eq!(sum.engine_versions.get(&7).copied(), Some(v7));
        let sites: Vec<SiteStats> =
            tables.iter().map(|t| wrap("s", [(Name::new("w"), t.clone())].into())).collect();
        prop_assert_eq!(consolidate(&sites)[&Name::new("w")].clients, sum.clients);
        let clients = sites.iter().map(SiteStats::clients).fold(0u64, u64::saturating_add);
        prop_assert_eq!(clients, sum.clients);
    }

    /// A status request with any deadline at all, even one far in the past
    /// or at the end of time, is answered by a middle tier without
    /// arithmetic overflow.
    #[test]
    fn any_status_deadline_is_handled(deadline in prop_oneof![
        Just(i64::MIN), Just(i64::MAX), Just(0i64), any::<i64>(),
    ]) {
        let mut f = tiered(&sites());
        f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
        let emea = f.locals["emea"];
        let since = f.h.now();
        let scope = Scope::All;
        let request = Message::StatusRequest { query: 5, scope, deadline: Time(deadline) };
        f.h.inject(f.master, emea, request);
        f.h.run_for(Duration::from_secs(60), STEPS).unwrap();
        prop_assert_eq!(sent_by(&f, emea, MessageKind::StatusReply, since), 1);
    }
}

/// A node's state, as far as input could change it.
#[derive(Debug, PartialEq)]
enum NodeState {
    Master(MasterSnapshot),
    Local(LocalSnapshot),
    Client(tiersync_engine::ClientState),
}

fn node_state(f: &Fleet, id: NodeId) -> NodeState {
    match f.h.node(id) {
        tiersync_engine::Node::Master(_) => NodeState::Master(master_snapshot(f)),
        tiersync_engine::Node::Local(_) => {
            let site = f.locals.iter().find(|(_, l)| **l == id).map(|(s, _)| *s);
            NodeState::Local(local_snapshot(f, site.expect("a fleet local server")))
        }
        tiersync_engine::Node::Client(c) => NodeState::Client(c.state()),
    }
}

/// Message kinds a stranger's node id can legitimately send: a client
/// admitted by site and platform polls and reports; an error reply
/// changes nothing. Every other kind from a stranger must be refused.
fn stranger_may_send(kind: MessageKind) -> bool {
    matches!(kind, MessageKind::Poll | MessageKind::Report | MessageKind::Error)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any message of any kind, from a stranger or from any real peer, to
    /// the master, a middle tier, a leaf local server or a client: the
    /// node never panics, a stranger's server-to-server message is always
    /// refused, and input a node refuses leaves its state as it was
    /// (refusals of policies that fail verification apart: those keep the
    /// last good revision and count the refusal, by design).
    #[test]
    fn any_message_to_any_node_is_handled(
        deliveries in proptest::collection::vec((0usize..6, 0usize..4, message()), 1..10),
    ) {
        let mut f = tiered(&sites());
        let first = ChangeOp {
            at: None, policy: 0, params: Some(1), content: Some(1), platforms: Some(7),
            platform_overlay: Some(true), site_overlay: Some(true), urgent: false,
        };
        set_at_master(&mut f, first.to_change(), 0);
        f.h.run_for(DAY + HOUR, STEPS).unwrap();
        let stranger = NodeId(4242);
        let client = f.clients["paris"][0];
        let senders =
            [stranger, f.master, f.locals["emea"], f.locals["paris"], f.locals["tokyo"], client];
        let receivers = [f.master, f.locals["emea"], f.locals["paris"], client];

        for (from, to, msg) in deliveries {
            let (from, to) = (senders[from], receivers[to]);
            let kind = msg.kind();
            let before = node_state(&f, to);
            let mark = f.h.observations.len();
            f.h.with(to, |n, now, out| n.handle_message(now, from, msg, out));
            let refused = f.h.observations[mark..].iter().any(|(_, n, o)| {
                *n == to
                    && matches!(
                        o,
                        Observation::Rejected { peer, reason }
                            if *peer == from && !matches!(
                                reason,
                                Rejection::RefusedByPeer(_)
                                    | Rejection::Integrity(_)
                                    | Rejection::MissingContent { .. }
                            )
                    )
            });
            if from == stranger && (to == client || !stranger_may_send(kind)) {
                prop_assert!(refused, "{kind:?} from a stranger to {to} was not refused");
            }
            if refused {
                prop_assert_eq!(node_state(&f, to), before, "{:?} from {} to {}", kind, from, to);
            }
        }
        // What the nodes sent in answer is delivered and handled too.
        f.h.run_for(HOUR, STEPS).unwrap();
    }

    /// Real frames with bytes flipped, cut out or added never make the
    /// decoder panic; whatever still decodes encodes again and decodes to
    /// the same length.
    #[test]
    fn damaged_frames_never_panic(
        msg in message(),
        damage in proptest::collection::vec(damage(), 1..6),
    ) {
        let mut frame = codec::encode(&msg).unwrap();
        for (at, byte, how) in damage {
            let i = at.index(frame.len().max(1)).min(frame.len());
            match how {
                0 if i < frame.len() => frame[i] ^= byte.max(1),
                1 if i < frame.len() => {
                    frame.remove(i);
                }
                _ => frame.insert(i, byte),
            }
        }
        if let Ok((back, used)) = codec::decode(&frame, 1 << 20) {
            prop_assert!(used <= frame.len());
            let again = codec::encode(&back).unwrap();
            prop_assert_eq!(Ok(again.len()), codec::encoded_len(&back));
            prop_assert!(codec::decode(&again, 1 << 20).is_ok());
        }
    }
}

/// One damage to a frame: where, which byte, and how (0 flips bits, 1
/// cuts the byte out, 2 inserts one).
fn damage() -> impl Strategy<Value = (prop::sample::Index, u8, u8)> {
    (any::<prop::sample::Index>(), any::<u8>(), 0u8..3)
}

fn wrap(site: &str, platforms: BTreeMap<Name, PlatformStats>) -> SiteStats {
    let mut s = SiteStats::empty(Name::new(site), Time::EPOCH);
    s.platforms = platforms;
    s
}

fn extreme_stats() -> impl Strategy<Value = PlatformStats> {
    let big = prop_oneof![Just(u64::MAX), Just(u64::MAX - 1), Just(u64::MAX / 2 + 1), any::<u64>()];
    (big.clone(), big.clone(), big.clone(), big).prop_map(|(clients, threats, rejected, v)| {
        PlatformStats {
            clients,
            compliant: clients / 2,
            firewall_on: clients,
            stale: 0,
            threats,
            engine_versions: [(7u32, v)].into(),
            signature_versions: [(1u64, clients)].into(),
            rejected_policies: rejected,
        }
    })
}

/// A client's report and how many seconds ago it arrived.
fn client_report() -> impl Strategy<Value = (Arc<SecurityReport>, u64)> {
    (
        (0usize..4, 0usize..3),
        proptest::collection::vec(proptest::option::of(0u64..6), 3),
        (0u32..4, 0u64..4, any::<bool>()),
        (0u32..100, 0u32..3),
        prop_oneof![Just(60u64), Just(200_000u64), 0u64..400_000],
    )
        .prop_map(
            |((site, platform), applied, (engine, signature, fw), (threats, rejected), age)| {
                let applied = applied
                    .iter()
                    .enumerate()
                    .filter_map(|(i, r)| r.map(|r| (Name::new(POLICIES[i]), Revision(r))))
                    .collect();
                let report = SecurityReport {
                    platform: Name::new(PLATFORMS[platform]),
                    site: Name::new(["london", "paris", "tokyo", "lima"][site]),
                    applied,
                    engine_version: engine,
                    signature_version: signature,
                    firewall_on: fw,
                    threats_found: threats,
                    last_scan: Time::EPOCH,
                    rejected_policies: rejected,
                    inventory: Blob::empty(),
                };
                (Arc::new(report), age)
            },
        )
}

fn compliance_targets() -> impl Strategy<Value = BTreeMap<Name, (Revision, Vec<Name>)>> {
    proptest::collection::vec((1u64..6, 0u8..8), 3).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (rev, mask))| {
                let platforms = (0..3)
                    .filter(|b| mask & (1 << b) != 0)
                    .map(|b| Name::new(PLATFORMS[b]))
                    .collect();
                (Name::new(POLICIES[i]), (Revision(rev), platforms))
            })
            .collect()
    })
}

/// Consolidated statistics do not grow with the number of clients: an
/// upload for ten thousand clients is at most a few varint bytes longer
/// than one for ten, as long as one for sixteen thousand, and grows only
/// with the number of distinct versions.
#[test]
fn consolidated_stats_do_not_grow_with_clients() {
    let upload_len = |n: u32, versions: u32| -> usize {
        let mut table = ClientTable::default();
        for i in 0..n {
            let report = SecurityReport {
                platform: Name::new(PLATFORMS[(i % 2) as usize]),
                site: Name::new("london"),
                applied: vec![(Name::new("antivirus"), Revision(3))],
                engine_version: (i / 2) % versions,
                signature_version: u64::from(i % 2),
                firewall_on: true,
                threats_found: 0,
                last_scan: Time::EPOCH,
                rejected_policies: 0,
                inventory: Blob::filler(4096, u64::from(i)),
            };
            table.store(NodeId(i), Arc::new(report), Time::from_secs(1_800_000_000));
        }
        let targets = [(
            Name::new("antivirus"),
            (Revision(3), PLATFORMS.iter().map(|p| Name::new(p)).collect()),
        )]
        .into();
        let sites =
            table.consolidate(Time::from_secs(1_800_000_000), Duration::from_secs(3600), &targets);
        let msg =
            Message::Sync { req: 1, have: Revision(3), stats: Some(StatsUpload { seq: 1, sites }) };
        codec::encoded_len(&msg).unwrap()
    };
    let small = upload_len(10, 3);
    let large = upload_len(10_000, 3);
    // Per platform, 11 counts (6 totals, 3 engine and 2 signature versions)
    // may each need one more varint byte.
    assert!(large >= small && large - small <= 2 * 11, "{small} vs {large}");
    assert_eq!(upload_len(16_000, 3), large, "same varint widths, same length");
    assert!(upload_len(10_000, 6) > large, "more distinct versions, a longer upload");
}

/// Real signed policies and effective policies, made once by a master,
/// with and without their content.
fn samples() -> (Vec<Arc<SignedPolicy>>, Vec<Arc<EffectivePolicy>>) {
    let mut f = tiered(&sites());
    let mut c = ChangeOp {
        at: None,
        policy: 0,
        params: Some(3),
        content: Some(3),
        platforms: Some(7),
        platform_overlay: Some(true),
        site_overlay: Some(true),
        urgent: false,
    };
    set_at_master(&mut f, c.to_change(), 1);
    c.policy = 2;
    c.urgent = true;
    set_at_master(&mut f, c.to_change(), 2);
    let m = f.h.master(f.master);
    let mut signed: Vec<_> = m.store().iter().map(|p| p.full.clone()).collect();
    signed.extend(m.store().iter().map(|p| p.bare.clone()));
    let mut effective: Vec<Arc<EffectivePolicy>> = m
        .store()
        .iter()
        .filter_map(|p| p.full.derive(&Name::new("paris"), &Name::new("linux"), &p.content, true))
        .map(Arc::new)
        .collect();
    let bare: Vec<_> = effective.iter().map(|e| Arc::new(e.with_content(None))).collect();
    effective.extend(bare);
    (signed, effective)
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>()
            .prop_filter("NaN is not equal to itself", |f| !f.is_nan())
            .prop_map(Value::Float),
        "[a-z0-9 ]{0,12}".prop_map(Value::Str),
    ];
    leaf.prop_recursive(4, 32, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::List),
            proptest::collection::btree_map("[a-z]{1,6}", inner, 0..4).prop_map(Value::Map),
        ]
    })
}

fn table() -> impl Strategy<Value = Params> {
    proptest::collection::btree_map("[a-z]{1,6}", value(), 0..4)
}

fn policy_change() -> impl Strategy<Value = PolicyChange> {
    (
        "[a-z]{1,8}",
        proptest::option::of(table()),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64)),
        proptest::option::of(proptest::collection::vec("[a-z]{1,6}", 0..3)),
        proptest::option::of(proptest::collection::btree_map("[a-z]{1,6}", table(), 0..2)),
        proptest::option::of(proptest::collection::btree_map("[a-z]{1,6}", table(), 0..2)),
        any::<bool>(),
    )
        .prop_map(|(id, params, content, platforms, pp, sp, urgent)| PolicyChange {
            id: Name::new(&id),
            params,
            content: content.map(Blob::from_bytes),
            platforms: platforms.map(|v| v.iter().map(|p| Name::new(p)).collect()),
            platform_params: pp.map(|m| m.into_iter().map(|(k, v)| (Name::new(&k), v)).collect()),
            site_params: sp.map(|m| m.into_iter().map(|(k, v)| (Name::new(&k), v)).collect()),
            urgent,
        })
}

fn error_code() -> impl Strategy<Value = ErrorCode> {
    proptest::sample::select(ErrorCode::ALL.to_vec())
}

fn scope() -> impl Strategy<Value = Scope> {
    prop_oneof![
        Just(Scope::All),
        "[a-z]{1,6}".prop_map(|s| Scope::Site(Name::new(&s))),
        any::<u32>().prop_map(|n| Scope::Client(NodeId(n))),
    ]
}

fn site_stats() -> impl Strategy<Value = SiteStats> {
    (
        "[a-z]{1,6}",
        any::<i64>(),
        proptest::collection::btree_map("[a-z]{1,6}", extreme_stats(), 0..3),
        any::<u64>(),
    )
        .prop_map(|(site, at, platforms, rejected)| {
            let mut s = SiteStats::empty(Name::new(&site), Time(at));
            s.platforms = platforms.into_iter().map(|(k, v)| (Name::new(&k), v)).collect();
            s.rejected_by_server = rejected;
            s
        })
}

fn message() -> impl Strategy<Value = Message> {
    let (signed, effective) = samples();
    let report = Arc::new(SecurityReport {
        platform: Name::new("windows"),
        site: Name::new("paris"),
        applied: vec![(Name::new("antivirus"), Revision(3))],
        engine_version: 5,
        signature_version: 3,
        firewall_on: true,
        threats_found: 2,
        last_scan: Time::from_secs(1_700_000_000),
        rejected_policies: 0,
        inventory: Blob::filler(100, 3),
    });
    let signed_subset = proptest::sample::subsequence(signed.clone(), 0..=signed.len());
    let effective_subset = proptest::sample::subsequence(effective.clone(), 0..=effective.len());
    let stats = || proptest::collection::vec(site_stats(), 0..3);
    let names = proptest::collection::vec("[a-z]{1,6}".prop_map(|s| Name::new(&s)), 0..3);
    let rep = report.clone();
    prop_oneof![
        (any::<u32>(), any::<u64>(), proptest::option::of((any::<u64>(), stats()))).prop_map(
            |(req, have, up)| Message::Sync {
                req,
                have: Revision(have),
                stats: up.map(|(seq, sites)| StatsUpload { seq, sites }),
            }
        ),
        (any::<u32>(), any::<u64>()).prop_map(|(req, h)| Message::Check { req, have: Revision(h) }),
        (
            any::<u32>(),
            any::<u64>(),
            signed_subset,
            any::<bool>(),
            proptest::option::of(any::<u64>())
        )
            .prop_map(|(req, upto, ps, delta, stats_acked)| Message::Policies {
                req,
                upto: Revision(upto),
                changes: if delta { Changes::Delta(ps) } else { Changes::Snapshot(ps) },
                stats_acked,
            }),
        any::<u64>().prop_map(|r| Message::Wake { revision: Revision(r) }),
        (any::<u32>(), any::<u64>(), policy_change()).prop_map(|(o, proposal, c)| {
            Message::Propose { origin: NodeId(o), proposal, change: Box::new(c) }
        }),
        (any::<u32>(), any::<u64>(), any::<u64>()).prop_map(|(o, proposal, r)| Message::Accepted {
            origin: NodeId(o),
            proposal,
            revision: Revision(r),
        }),
        (any::<u32>(), any::<u64>(), error_code())
            .prop_map(|(o, proposal, code)| Message::Refused { origin: NodeId(o), proposal, code }),
        (any::<u64>(), scope(), any::<i64>()).prop_map(|(query, scope, d)| {
            Message::StatusRequest { query, scope, deadline: Time(d) }
        }),
        (any::<u64>(), stats(), names, proptest::option::of((any::<u32>(), any::<i64>())))
            .prop_map(move |(query, sites, missing, detail)| Message::StatusReply {
                query,
                sites,
                missing,
                client: detail.map(|(c, seen)| ClientDetail {
                    client: NodeId(c),
                    seen: Time(seen),
                    report: rep.clone(),
                }),
            }),
        // Names past 127 bytes take a two-byte length on the wire.
        (any::<u64>(), "[a-z]{0,6}|.{120,140}", "[a-z]{0,6}|.{0,200}").prop_map(
            |(h, site, platform)| Message::Poll {
                have: Revision(h),
                site: Name::new(&site),
                platform: Name::new(&platform),
            }
        ),
        (
            any::<u64>(),
            effective_subset,
            proptest::collection::vec("[a-z]{1,6}|.{130,150}", 0..3),
            any::<bool>()
        )
            .prop_map(|(current, policies, removed, full)| Message::PolicyUpdate {
                current: Revision(current),
                policies,
                removed: removed.iter().map(|r| Name::new(r)).collect(),
                full,
            }),
        Just(Message::Report { report }),
        Just(Message::ReportAck),
        (any::<u32>(), error_code()).prop_map(|(req, code)| Message::Error { req, code }),
    ]
}

/// Each message kind, and each error code, is produced by the generator
/// above: the round trip covers them all.
#[test]
fn the_message_generator_covers_every_kind_and_code() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let mut runner = TestRunner::deterministic();
    let strategy = message();
    let mut kinds = std::collections::BTreeSet::new();
    let mut codes = Vec::new();
    let mut scopes = Vec::new();
    let mut bare = (false, false);
    for _ in 0..4000 {
        let msg = strategy.new_tree(&mut runner).unwrap().current();
        kinds.insert(msg.kind());
        match &msg {
            Message::Error { code, .. } | Message::Refused { code, .. }
                if !codes.contains(code) =>
            {
                codes.push(*code);
            }
            Message::StatusRequest { scope, .. } => scopes.push(std::mem::discriminant(scope)),
            Message::Policies { changes, .. } => {
                bare.0 |= changes.policies().iter().any(|p| p.content.is_none());
            }
            Message::PolicyUpdate { policies, .. } => {
                bare.1 |= policies.iter().any(|p| p.content.is_none());
            }
            _ => {}
        }
    }
    assert_eq!(kinds.len(), MessageKind::ALL.len());
    assert_eq!(codes.len(), ErrorCode::ALL.len());
    assert!(scopes.contains(&std::mem::discriminant(&Scope::All)));
    assert_eq!(bare, (true, true), "content-less policies of both kinds");
}

/// A parameter tree nested far deeper than allowed is an error, not a
/// stack overflow.
#[test]
fn deeply_nested_parameters_are_refused() {
    // Value::List is variant 4; a list of one element, nested 100 000 deep.
    let mut body = Vec::new();
    // Message::Propose (variant 4), origin 1, proposal 1, change id "a".
    body.extend_from_slice(&[4, 1, 1, 1, b'a']);
    body.push(1); // params: Some
    body.push(1); // one entry
    body.extend_from_slice(&[1, b'k']);
    for _ in 0..100_000 {
        body.extend_from_slice(&[4, 1]);
    }
    let mut frame = ((body.len() + 1) as u32).to_be_bytes().to_vec();
    frame.push(codec::PROTOCOL_VERSION);
    frame.extend_from_slice(&body);
    let err = codec::decode(&frame, codec::DEFAULT_MAX_FRAME).unwrap_err();
    assert!(matches!(err, DecodeError::Malformed(_)), "{err}");
}

/// An oversized length and an unknown version get their own errors.
#[test]
fn frame_errors_are_typed() {
    let mut frame = codec::encode(&Message::ReportAck).unwrap();
    assert!(matches!(codec::decode(&frame, 1), Err(DecodeError::Oversized { len: 2, max: 1 })));
    frame[4] = 9;
    assert_eq!(codec::decode(&frame, 100), Err(DecodeError::UnknownVersion(9)));
}
