//! The engine's costs that bound a simulation's speed: handling each kind
//! of message, encoding and decoding frames, and consolidating statistics.
//!
//! Run: `cargo bench -p tiersync-engine` (about a minute). Every node here
//! is built by the engine's test harness and run until it has converged, so
//! each measured call does what it does in a steady simulated week: a poll
//! that finds nothing new, a report replacing the previous one, a child's
//! check or sync at its parent.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use tiersync_engine::codec::{decode, encode, encoded_len};
use tiersync_engine::stats::{ClientTable, SiteStats, consolidate};
use tiersync_engine::testkit::{Fleet, SiteSpec};
use tiersync_engine::{
    Blob, Message, MessageKind, Name, Node, Outbox, PolicyChange, Revision, ServeMode, Time, Timer,
};

const HOUR: Duration = Duration::from_secs(3600);

fn start() -> Time {
    Time::from_jiff("2026-03-02T00:00:00Z".parse().expect("a valid instant"))
}

/// One site with `clients` windows clients below a local server, two
/// policies set, run for two hours so that every client holds them and
/// has reported.
fn fleet(clients: u32) -> Fleet {
    let sites = [SiteSpec {
        name: "tokyo",
        tz: "Asia/Tokyo",
        parent: None,
        clients: vec![("windows", clients)],
    }];
    let mut f = Fleet::build(start(), &sites, true, ServeMode::Conditional, |c| {
        c.policy_check = Some(6 * HOUR);
    });
    let master = f.master;
    for (i, (id, size)) in [("antivirus", 200 * 1024), ("firewall", 8 * 1024)].iter().enumerate() {
        let change = PolicyChange {
            id: Name::new(id),
            content: Some(Blob::filler(*size, i as u64)),
            platforms: Some(vec![Name::new("windows")]),
            ..Default::default()
        };
        f.h.with(master, |n, now, out| match n {
            Node::Master(m) => m.handle_set_policy(now, change, i as u64, out).map(|_| ()),
            _ => unreachable!("the fleet's master"),
        })
        .expect("the master accepts the policy");
    }
    f.h.run_for(2 * HOUR, 10_000_000).expect("the fleet converges within the bound");
    f
}

/// Drains an outbox without looking: the bench measures the node.
fn drain(out: &mut Outbox) {
    while let Some(t) = out.poll_transmit() {
        black_box(t);
    }
    while let Some(t) = out.poll_timer() {
        black_box(t);
    }
    while let Some(o) = out.poll_observation() {
        black_box(o);
    }
}

fn bench_handling(c: &mut Criterion) {
    let mut f = fleet(1_000);
    let local = f.locals["tokyo"];
    let master = f.master;
    let client = f.clients["tokyo"][0];
    let have = f.h.client(client).have();
    let report = f.h.local(local).clients().get(client).expect("reported").report.clone();
    let now = f.h.now();
    let mut out = Outbox::new();
    let mut g = c.benchmark_group("handle");

    // A client's poll at its local server, nothing new: one small reply.
    let poll = Message::Poll { have, site: Name::new("tokyo"), platform: Name::new("windows") };
    g.bench_function("poll at local (nothing new)", |b| {
        b.iter(|| {
            f.h.with(local, |n, _, _| n.handle_message(now, client, poll.clone(), &mut out));
            drain(&mut out);
        })
    });

    // A first poll: the whole effective set, content included.
    let first = Message::Poll {
        have: Revision::ZERO,
        site: Name::new("tokyo"),
        platform: Name::new("windows"),
    };
    g.bench_function("poll at local (full set)", |b| {
        b.iter(|| {
            f.h.with(local, |n, _, _| n.handle_message(now, client, first.clone(), &mut out));
            drain(&mut out);
        })
    });

    // A report replacing the client's previous one.
    let rep = Message::Report { report: report.clone() };
    g.bench_function("report at local", |b| {
        b.iter(|| {
            f.h.with(local, |n, _, _| n.handle_message(now, client, rep.clone(), &mut out));
            drain(&mut out);
        })
    });

    // The client's side: its poll timer, and the empty update it gets back.
    g.bench_function("poll timer at client", |b| {
        b.iter(|| {
            f.h.with(client, |n, _, _| n.handle_timer(now, Timer::Poll, &mut out));
            drain(&mut out);
        })
    });
    g.bench_function("report timer at client", |b| {
        b.iter(|| {
            f.h.with(client, |n, _, _| n.handle_timer(now, Timer::Report, &mut out));
            drain(&mut out);
        })
    });
    let current = f.h.client(client).have();
    let empty = Message::PolicyUpdate { current, policies: vec![], removed: vec![], full: false };
    g.bench_function("empty update at client", |b| {
        b.iter(|| {
            f.h.with(client, |n, _, _| n.handle_message(now, local, empty.clone(), &mut out));
            drain(&mut out);
        })
    });

    // A local server's light check at the master, nothing new.
    let check = Message::Check { req: 1, have: current };
    g.bench_function("check at master (nothing new)", |b| {
        b.iter(|| {
            f.h.with(master, |n, _, _| n.handle_message(now, local, check.clone(), &mut out));
            drain(&mut out);
        })
    });

    // A sync with the statistics upload of 1,000 clients, as the local
    // server sends it.
    f.h.with(local, |n, _, _| match n {
        Node::Local(l) => l.handle_sync_now(now, &mut out),
        _ => unreachable!("the fleet's local server"),
    });
    let sync = std::iter::from_fn(|| out.poll_transmit())
        .map(|t| t.msg)
        .find(|m| m.kind() == MessageKind::Sync)
        .expect("a sync goes to the parent");
    drain(&mut out);
    g.bench_function("sync at master (1,000 clients' statistics)", |b| {
        b.iter(|| {
            f.h.with(master, |n, _, _| n.handle_message(now, local, sync.clone(), &mut out));
            drain(&mut out);
        })
    });
    g.finish();
}

/// Every kind of message a steady week carries, taken from a fleet's own
/// traffic: encoded length (what the simulator charges), encoding and
/// decoding.
fn bench_codec(c: &mut Criterion) {
    let mut f = fleet(100);
    let local = f.locals["tokyo"];
    let client = f.clients["tokyo"][0];
    let now = f.h.now();
    let mut out = Outbox::new();
    let mut messages: Vec<(String, Message)> = Vec::new();
    let mut take = |out: &mut Outbox, label: &str| {
        let msg = std::iter::from_fn(|| out.poll_transmit()).next().expect("a message");
        drain(out);
        messages.push((label.to_owned(), msg.msg));
    };
    let have = f.h.client(client).have();
    let poll = Message::Poll { have, site: Name::new("tokyo"), platform: Name::new("windows") };
    f.h.with(client, |n, _, _| n.handle_timer(now, Timer::Poll, &mut out));
    take(&mut out, "poll");
    f.h.with(local, |n, _, _| n.handle_message(now, client, poll.clone(), &mut out));
    take(&mut out, "policy_update (nothing new)");
    let first = Message::Poll {
        have: Revision::ZERO,
        site: Name::new("tokyo"),
        platform: Name::new("windows"),
    };
    f.h.with(local, |n, _, _| n.handle_message(now, client, first, &mut out));
    take(&mut out, "policy_update (208 KiB set)");
    f.h.with(client, |n, _, _| n.handle_timer(now, Timer::Report, &mut out));
    take(&mut out, "report (4 KiB inventory)");
    f.h.with(local, |n, _, _| match n {
        Node::Local(l) => l.handle_sync_now(now, &mut out),
        _ => unreachable!("the fleet's local server"),
    });
    take(&mut out, "sync (100 clients' statistics)");
    messages.push(("report_ack".to_owned(), Message::ReportAck));

    let mut g = c.benchmark_group("codec");
    for (label, msg) in &messages {
        let frame = encode(msg).expect("engine messages encode");
        g.bench_with_input(BenchmarkId::new("encoded_len", label), msg, |b, m| {
            b.iter(|| encoded_len(black_box(m)))
        });
        g.bench_with_input(BenchmarkId::new("encode", label), msg, |b, m| {
            b.iter(|| encode(black_box(m)))
        });
        g.bench_with_input(BenchmarkId::new("decode", label), &frame, |b, bytes| {
            b.iter(|| decode(black_box(bytes), 1 << 30))
        });
    }
    g.finish();
}

/// Consolidating a server's client table into per-platform statistics
/// (every sync and current status query), and merging sites' statistics
/// (a middle tier, the master's status).
fn bench_consolidation(c: &mut Criterion) {
    let mut g = c.benchmark_group("consolidate");
    for clients in [1_000u32, 10_000] {
        let f = fleet(clients);
        let local = f.locals["tokyo"];
        let table: &ClientTable = f.h.local(local).clients();
        let targets = f.h.local(local).store().compliance_targets();
        let now = f.h.now();
        g.bench_with_input(BenchmarkId::new("client table", clients), table, |b, t| {
            b.iter(|| t.consolidate(now, Duration::from_secs(3 * 86_400), &targets))
        });
        let sites: Vec<SiteStats> = (0..40)
            .flat_map(|i| {
                let mut s = table.consolidate(now, Duration::from_secs(86_400), &targets);
                for site in &mut s {
                    site.site = Name::new(&format!("site{i}"));
                }
                s
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("40 sites merged", clients), &sites, |b, s| {
            b.iter(|| consolidate(black_box(s)))
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_handling, bench_codec, bench_consolidation
}
criterion_main!(benches);
