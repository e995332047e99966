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
use tiersync_engine::message::{ClientDetail, ErrorCode, Scope, StatsUpload};
use tiersync_engine::stats::{PlatformStats, SecurityReport, SiteStats, consolidate};
use tiersync_engine::testkit::SiteSpec;
use tiersync_engine::{Blob, Message, Name, NodeId, PolicyChange, Revision, Time, Value};

fn sites() -> Vec<SiteSpec> {
    vec![
        SiteSpec { name: "emea", tz: "Europe/London", parent: None, clients: vec![("windows", 2)] },
        SiteSpec {
            name: "paris",
            tz: "Europe/Paris",
            parent: Some("emea"),
            clients: vec![("windows", 1), ("linux", 1)],
        },
        SiteSpec {
            name: "tokyo",
            tz: "Asia/Tokyo",
            parent: None,
            clients: vec![("macos", 1), ("linux", 1)],
        },
    ]
}

#[derive(Clone, Debug)]
enum Op {
    /// Change a policy at the master or at a local server (site index).
    Change { at: Option<usize>, policy: usize, value: i64, content: bool, urgent: bool },
    /// Let simulated time pass.
    Wait { minutes: u32 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (proptest::option::of(0usize..3), 0usize..3, any::<i64>(), any::<bool>(), any::<bool>())
            .prop_map(|(at, policy, value, content, urgent)| Op::Change {
                at,
                policy,
                value,
                content,
                urgent: urgent && value % 4 == 0,
            }),
        (1u32..3000).prop_map(|minutes| Op::Wait { minutes }),
    ]
}

fn change(policy: usize, value: i64, content: bool, urgent: bool) -> PolicyChange {
    let platforms = match policy {
        0 => vec!["windows", "macos", "linux"],
        1 => vec!["windows"],
        _ => vec!["linux", "macos"],
    };
    let mut site_params = BTreeMap::new();
    if value % 3 == 0 {
        site_params.insert(Name::new("paris"), params(&[("level", Value::Int(value / 3))]));
    }
    PolicyChange {
        id: Name::new(["antivirus", "firewall", "disk"][policy]),
        params: Some(params(&[("level", Value::Int(value)), ("mode", s("on"))])),
        content: content
            .then(|| Blob::filler(64 + (value.unsigned_abs() % 512) as usize, value as u64)),
        platforms: Some(platforms.into_iter().map(Name::new).collect()),
        platform_params: Some([(Name::new("linux"), params(&[("mode", s("lx"))]))].into()),
        site_params: Some(site_params),
        urgent,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Any sequence of changes at the master and at local servers, with any
    /// interleaving of syncs and checks, converges after one final sync
    /// round: every client enforces the derivation of the master's final
    /// set for its site and platform, and the master counts every client.
    #[test]
    fn any_change_sequence_converges(ops in proptest::collection::vec(op(), 1..12)) {
        let site_specs = sites();
        let mut f = tiered(&site_specs);
        set_at_master(&mut f, change(0, 1, true, false), 0);
        for (proposal, o) in (1u64..).zip(ops) {
            match o {
                Op::Change { at: None, policy, value, content, urgent } => {
                    set_at_master(&mut f, change(policy, value, content, urgent), proposal);
                }
                Op::Change { at: Some(i), policy, value, content, urgent } => {
                    let site = site_specs[i].name;
                    set_at_local(&mut f, site, change(policy, value, content, urgent), proposal);
                }
                Op::Wait { minutes } => {
                    f.h.run_for(Duration::from_secs(u64::from(minutes) * 60), STEPS).unwrap();
                }
            }
        }
        // The final round: every window passes twice (proposals accepted
        // during the first are fetched by the second).
        f.h.run_for(DAY * 3, STEPS).unwrap();
        assert_converged(&f);

        let master = f.h.master(f.master);
        let counted: u64 = master.latest_stats().map(|s| s.clients()).sum();
        prop_assert_eq!(counted, f.all_clients().len() as u64);
    }

    /// Consolidating consolidations equals consolidating everything at once,
    /// whatever the grouping.
    #[test]
    fn consolidation_is_associative(
        stats in proptest::collection::vec(platform_stats(), 1..20),
        cut in 0usize..20,
    ) {
        let sites: Vec<SiteStats> = stats
            .iter()
            .enumerate()
            .map(|(i, (platform, p))| SiteStats {
                site: Name::new(&format!("s{i}")),
                as_of: Time::EPOCH,
                platforms: [(Name::new(platform), p.clone())].into(),
            })
            .collect();
        let all = consolidate(&sites);
        let cut = cut.min(sites.len());
        let left = SiteStats { site: Name::new("l"), as_of: Time::EPOCH, platforms: consolidate(&sites[..cut]) };
        let right = SiteStats { site: Name::new("r"), as_of: Time::EPOCH, platforms: consolidate(&sites[cut..]) };
        prop_assert_eq!(consolidate([&left, &right]), all.clone());
        let total: u64 = stats.iter().map(|(_, p)| p.clients).sum();
        prop_assert_eq!(all.values().map(|p| p.clients).sum::<u64>(), total);
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
            let is_truncated = matches!(codec::decode(cut, 1 << 16), Err(DecodeError::Truncated { .. }));
            prop_assert!(is_truncated);
        }
    }
}

fn platform_stats() -> impl Strategy<Value = (String, PlatformStats)> {
    (
        prop_oneof![Just("windows"), Just("linux")],
        0u64..1000,
        0u64..1000,
        proptest::collection::btree_map(0u32..4, 1u64..50, 0..3),
    )
        .prop_map(|(p, clients, threats, versions)| {
            let stats = PlatformStats {
                clients,
                compliant: clients / 2,
                firewall_on: clients / 3,
                stale: clients / 10,
                threats,
                engine_versions: versions,
                signature_versions: [(7u64, clients)].into(),
                rejected_policies: 0,
            };
            (p.to_string(), stats)
        })
}

/// Real signed policies and effective policies, made once by a master.
fn samples() -> (
    Vec<Arc<tiersync_engine::policy::SignedPolicy>>,
    Vec<Arc<tiersync_engine::policy::EffectivePolicy>>,
) {
    let mut f = tiered(&sites());
    set_at_master(&mut f, change(0, 3, true, false), 1);
    set_at_master(&mut f, change(2, 5, true, true), 2);
    let m = f.h.master(f.master);
    let signed: Vec<_> = m.store().iter().map(|p| p.full.clone()).collect();
    let effective = m
        .store()
        .iter()
        .filter_map(|p| p.full.derive(&Name::new("paris"), &Name::new("linux"), &p.content, true))
        .map(Arc::new)
        .collect();
    (signed, effective)
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
    let site = SiteStats {
        site: Name::new("paris"),
        as_of: Time::from_secs(1_700_000_000),
        platforms: [(Name::new("windows"), PlatformStats { clients: 3, ..Default::default() })]
            .into(),
    };
    let n = signed.len();
    let e = effective.len();
    (0u32..14, any::<u32>(), any::<u64>(), 0..=n, 0..=e, any::<bool>()).prop_map(
        move |(k, req, x, ns, ne, flag)| match k {
            0 => Message::Sync {
                req,
                have: Revision(x),
                stats: flag.then(|| StatsUpload { seq: x, sites: vec![site.clone()] }),
            },
            1 => Message::Check { req, have: Revision(x) },
            2 => Message::Policies {
                req,
                upto: Revision(x),
                changes: if flag {
                    tiersync_engine::message::Changes::Delta(signed[..ns].to_vec())
                } else {
                    tiersync_engine::message::Changes::Snapshot(signed[..ns].to_vec())
                },
                stats_acked: flag.then_some(x),
            },
            3 => Message::Wake { revision: Revision(x) },
            4 => Message::Propose {
                origin: NodeId(req),
                proposal: x,
                change: Box::new(change(0, x as i64, flag, flag)),
            },
            5 => Message::Accepted { origin: NodeId(req), proposal: x, revision: Revision(x) },
            6 => Message::Refused {
                origin: NodeId(req),
                proposal: x,
                code: ErrorCode::UnknownPolicy,
            },
            7 => Message::StatusRequest {
                query: x,
                scope: if flag { Scope::Client(NodeId(req)) } else { Scope::Site(Name::new("b")) },
                deadline: Time(x as i64),
            },
            8 => Message::StatusReply {
                query: x,
                sites: vec![site.clone()],
                missing: vec![Name::new("tokyo")],
                client: flag.then(|| ClientDetail {
                    client: NodeId(req),
                    seen: Time(7),
                    report: report.clone(),
                }),
            },
            9 => Message::Poll {
                have: Revision(x),
                site: Name::new("paris"),
                platform: Name::new("linux"),
            },
            10 => Message::PolicyUpdate {
                current: Revision(x),
                policies: effective[..ne].to_vec(),
                removed: vec![Name::new("disk")],
                full: flag,
            },
            11 => Message::Report { report: report.clone() },
            12 => Message::ReportAck,
            _ => Message::Error { req, code: ErrorCode::RevisionFromFuture },
        },
    )
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
    eprintln!("{err}");
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
