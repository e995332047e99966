//! `tiersync replay`: a scenario's master, local servers and clients as
//! daemons over real loopback TLS in this process, with the engine's clock
//! running `--speedup` times faster than real time, and the bytes they
//! really wrote set beside the simulator's prediction for the same
//! scenario and seed.
//!
//! Both sides run the same nodes: configurations, seeds, signing key and
//! payloads come from [`tiersync_simnet::nodes`], and the daemons use the
//! simulator's node ids (master 0, local servers 1.., clients from the
//! plan's `client_base`), so that ids inside messages encode to the same
//! number of bytes. Application bytes are counted per link (a site's LAN
//! between clients and their server, a site's WAN to its parent) and way,
//! and per message kind: on the simulator's side the frame length of every
//! delivered message ([`tiersync_simnet::frames`]), on the replay's the
//! frames each daemon wrote to its sockets. What remains different is
//! timing (see the README's "Replay" section).
//!
//! Known limits, as measured: a timer fires a millisecond or so of real
//! time late (tokio's timer resolution, scheduling), which at 3600x is
//! seconds of engine time, and each client schedules its next poll and
//! report from the moment it ran, so late firings add up and the last
//! report of a few clients falls past the end of the run (a few tenths of
//! a percent at 3600x on a loaded two-core machine, about 2% at 14400x).
//! A proposal made at a local server gets the server's next proposal id
//! (1, 2, ...) where the simulator uses the change's index; both encode in
//! one byte below 128 proposals. TCP/IP headers are the kernel's and are
//! not counted on the replay's side: its socket bytes are the TLS layer's.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde::Serialize;
use tiersync_engine::{Client, Local, Master, Node, NodeId};
use tiersync_net::config::Transport;
use tiersync_net::ids::Role;
use tiersync_net::operator::{OpRequest, OpResponse, OpScope, table};
use tiersync_net::replay::{self, ReplayAction, ReplayNode, ReplayOutcome, ReplaySpec};
use tiersync_simnet::build::{self, Plan};
use tiersync_simnet::frames::{FrameCounter, FrameTotal, Way};
use tiersync_simnet::nodes;
use tiersync_simnet::output::RunSummary;
use tiersync_simnet::scenario::{Fault, Scenario, StatusKind, Strategy};
use tiersync_simnet::world::{self, RunOptions};

use super::run::{bytes, write_stdout};

/// The tolerance the replay aims for on application bytes, in percent.
pub const TOLERANCE_PERCENT: f64 = 2.0;

/// Links carrying less than this share of all application bytes are not
/// held to [`TOLERANCE_PERCENT`]: one message more or less moves them by
/// percents.
pub const MIN_LINK_SHARE: f64 = 0.01;

/// Most clients a replay starts: each is a daemon with a TLS session and
/// two sockets in this process.
pub const MAX_CLIENTS: u64 = 2000;

/// Arguments of `tiersync replay`.
#[derive(Args)]
pub struct ReplayArgs {
    /// The scenario file (TOML): tiered, without faults or offline
    /// clients, hundreds of clients.
    pub scenario: PathBuf,
    /// Engine seconds per real second. At 3600 a simulated day takes 24 s;
    /// much faster and engine deadlines (a 30 s status deadline is 8 ms at
    /// 3600) fall below the real latency of loopback and scheduling.
    #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u32).range(1..))]
    pub speedup: u32,
    /// Seed [default: the scenario's `seed`].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Print one JSON object on stdout instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// Why a scenario cannot be replayed, every reason at once.
fn unsupported(sc: &Scenario) -> Vec<String> {
    let mut why = Vec::new();
    if sc.strategy != Strategy::Tiered {
        why.push(format!(
            "strategy `{}`: replay runs the tiered deployment only",
            sc.strategy.name()
        ));
    }
    for f in &sc.faults {
        let kind = match f {
            Fault::Partition(_) => "partition",
            Fault::Loss(_) => "loss",
            Fault::Duplicate(_) => "duplicate",
            Fault::Crash(_) => "crash",
            Fault::Skew(_) => "skew",
        };
        why.push(format!("fault `{kind}` at site `{}`: loopback TCP has no faults", f.site()));
    }
    if sc.client.offline.is_some() {
        why.push("`client.offline`: replayed clients stay on".into());
    }
    for s in &sc.sites {
        if let Some(w) = &s.wan
            && (w.loss.value() > 0.0 || w.duplicate.value() > 0.0)
        {
            why.push(format!(
                "site `{}`: WAN loss or duplication (the simulator drops or repeats messages, \
                 TCP retransmits)",
                s.name
            ));
        }
    }
    if sc.total_clients() > MAX_CLIENTS {
        why.push(format!(
            "{} clients: replay starts at most {MAX_CLIENTS} (one daemon and TLS session each)",
            sc.total_clients()
        ));
    }
    why
}

/// A DNS-name label from a site name.
fn label(s: &str) -> String {
    let l: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_lowercase() || c.is_ascii_digit() { c } else { '-' })
        .collect();
    let l = l.trim_matches('-').to_string();
    if l.is_empty() { "site".into() } else { l }
}

/// The certificate names of the plan's nodes, by node id.
fn names(sc: &Scenario, plan: &Plan) -> BTreeMap<NodeId, String> {
    let mut names = BTreeMap::from([(NodeId(0), "master".to_string())]);
    let mut used: Vec<String> = vec!["master".into()];
    for (i, l) in plan.locals.iter().enumerate() {
        let mut name = label(&sc.sites[l.site].name);
        if used.contains(&name) {
            name = format!("{name}-{}", i + 1);
        }
        used.push(name.clone());
        names.insert(NodeId(1 + i as u32), name);
    }
    for (c, &site) in plan.client_site.iter().enumerate() {
        let id = NodeId(plan.client_base + c as u32);
        names.insert(id, format!("c{c}.{}", label(&sc.sites[site as usize].name)));
    }
    names
}

/// The replay's nodes and actions, built as the simulator builds them, and
/// for each action the index of the status query it is, if it is one.
fn spec(sc: &Scenario, plan: &Plan, seed: u64, speedup: u32) -> (ReplaySpec, Vec<Option<usize>>) {
    let set = nodes::node_set(sc, plan, Strategy::Tiered, seed);
    let names = names(sc, plan);
    let name = |id: NodeId| names[&id].clone();
    let root = sc.sites[plan.root].name.clone();

    // Nodes: the master, local servers, clients.
    let mut out = vec![ReplayNode {
        name: name(NodeId(0)),
        role: Role::Master,
        site: root,
        node: Node::Master(Master::new(set.master)),
        parent: None,
    }];
    for (i, cfg) in set.locals.into_iter().enumerate() {
        let l = &plan.locals[i];
        out.push(ReplayNode {
            name: name(NodeId(1 + i as u32)),
            role: Role::Local,
            site: sc.sites[l.site].name.clone(),
            node: Node::Local(Local::new(cfg)),
            parent: Some(name(l.parent)),
        });
    }
    for c in &set.clients {
        let profile = &set.profiles[c.profile as usize];
        let site = plan.client_site[(c.id.0 - plan.client_base) as usize] as usize;
        out.push(ReplayNode {
            name: name(c.id),
            role: Role::Client,
            site: sc.sites[site].name.clone(),
            node: Node::Client(Client::new(c.id, profile.clone(), c.seed)),
            parent: Some(name(profile.server)),
        });
    }

    // Actions: the initial policies, the changes where they are made, the
    // status queries at the master.
    let mut actions = Vec::new();
    for i in 0..sc.policies.len() {
        let change = nodes::initial_change(sc, seed, i);
        let req = OpRequest::SetPolicy { change, platform: None };
        actions.push((None, ReplayAction { at: sc.start, node: name(NodeId(0)), req }));
    }
    for (i, c) in sc.changes.iter().enumerate() {
        let at = match nodes::change_origin(sc, plan, Strategy::Tiered, i) {
            Some(l) => name(NodeId(1 + l as u32)),
            None => name(NodeId(0)),
        };
        let change = nodes::scenario_change(sc, seed, i);
        let req = OpRequest::SetPolicy { change, platform: None };
        actions.push((None, ReplayAction { at: c.at, node: at, req }));
    }
    for (i, q) in sc.status_queries.iter().enumerate() {
        let scope = match (&q.site, q.client) {
            (Some(s), _) => OpScope::Site(s.clone()),
            (None, Some(c)) => OpScope::Client(name(NodeId(plan.client_base + c as u32))),
            _ => OpScope::All,
        };
        let current = q.kind == StatusKind::Current;
        let req = OpRequest::Status { current, scope };
        actions.push((Some(i), ReplayAction { at: q.at, node: name(NodeId(0)), req }));
    }
    actions.sort_by_key(|(_, a)| a.at);
    let (tags, actions) = actions.into_iter().unzip();
    let spec = ReplaySpec {
        nodes: out,
        actions,
        start: sc.start,
        end: sc.end(),
        speedup,
        transport: Transport::default(),
    };
    (spec, tags)
}

/// One row of the per-link comparison.
#[derive(Debug, Serialize)]
pub struct LinkRow {
    /// `LAN site` or `WAN site` (the WAN to the site's parent).
    pub link: String,
    /// `up` (towards the master) or `down`.
    pub way: &'static str,
    /// Application bytes the simulator predicts.
    pub sim_app_bytes: u64,
    /// Application bytes the daemons wrote.
    pub real_app_bytes: u64,
    /// `(real - sim) / sim`, in percent.
    pub diff_percent: f64,
    /// Messages, simulated.
    pub sim_messages: u64,
    /// Messages, written.
    pub real_messages: u64,
    /// Wire bytes the simulator's transport model predicts (TCP/IP headers,
    /// TLS records, a handshake per client exchange).
    pub sim_wire_bytes: u64,
    /// Bytes the daemons wrote to their TCP sockets (TLS records, one
    /// handshake per connection, keepalives; no TCP/IP headers).
    pub real_socket_bytes: u64,
}

/// One row of the per-kind comparison.
#[derive(Debug, Serialize)]
pub struct KindRow {
    /// Message kind.
    pub kind: &'static str,
    /// Messages, simulated.
    pub sim_messages: u64,
    /// Messages, written.
    pub real_messages: u64,
    /// Application bytes, simulated.
    pub sim_app_bytes: u64,
    /// Application bytes, written.
    pub real_app_bytes: u64,
    /// `(real - sim) / sim`, in percent.
    pub diff_percent: f64,
}

/// One status query's answer on both sides.
#[derive(Debug, Serialize)]
pub struct QueryRow {
    /// When it was asked.
    pub at: String,
    /// `current` or `historical`.
    pub kind: String,
    /// Sites in the simulator's answer.
    pub sim_sites: Vec<String>,
    /// Sites in the replay's answer.
    pub real_sites: Vec<String>,
    /// Sites the replay's answer marked missing.
    pub real_missing: Vec<String>,
}

/// Everything `tiersync replay --json` prints.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    /// Scenario name.
    pub scenario: String,
    /// Seed of both runs.
    pub seed: u64,
    /// Engine seconds per real second.
    pub speedup: u32,
    /// Simulated (and replayed) seconds.
    pub simulated_seconds: f64,
    /// Total application bytes, simulated.
    pub sim_app_bytes: u64,
    /// Total application bytes written by the daemons.
    pub real_app_bytes: u64,
    /// `(real - sim) / sim`, in percent.
    pub diff_percent: f64,
    /// Whether the total, and every link carrying at least
    /// [`MIN_LINK_SHARE`] of it, are within [`TOLERANCE_PERCENT`].
    pub within_tolerance: bool,
    /// The tolerance, in percent.
    pub tolerance_percent: f64,
    /// Per link and way.
    pub links: Vec<LinkRow>,
    /// Per message kind.
    pub kinds: Vec<KindRow>,
    /// Keepalive frames' bytes written (transport only, not in the totals).
    pub real_keepalive_bytes: u64,
    /// Frames read by receivers, all kinds: equal to frames written when
    /// nothing was in flight at the end.
    pub real_app_bytes_received: u64,
    /// Sessions opened beyond one per child (reconnections).
    pub reconnections: u64,
    /// Clients.
    pub clients: u64,
    /// Children that connected to a server: local servers and clients.
    pub children: u64,
    /// Clients on the master's latest revision of every policy for their
    /// platform at the end, simulated.
    pub sim_clients_up_to_date: u64,
    /// The same, replayed.
    pub real_clients_up_to_date: u64,
    /// Status queries.
    pub status_queries: Vec<QueryRow>,
    /// Real seconds the replay ran, from the clock's start to its end.
    pub replay_seconds: f64,
    /// Real seconds until every child had connected.
    pub connect_seconds: f64,
    /// Whether every child connected before the clock started.
    pub connected_before_start: bool,
    /// Latest start of an action after its instant, in engine seconds.
    pub max_action_lateness_engine_seconds: f64,
}

fn percent(sim: u64, real: u64) -> f64 {
    if sim == 0 {
        if real == 0 { 0.0 } else { 100.0 }
    } else {
        (real as f64 - sim as f64) / sim as f64 * 100.0
    }
}

/// Clients whose enforced (policy, revision) set is the master's latest
/// for their platform.
fn up_to_date(out: &ReplayOutcome, spec_clients: &[(String, String)]) -> u64 {
    let Some(master) = out.policies.get("master") else { return 0 };
    spec_clients
        .iter()
        .filter(|(name, platform)| {
            let mut want: Vec<(&str, u64)> = master
                .iter()
                .filter(|p| p.platforms.iter().any(|x| x == platform))
                .map(|p| (p.id.as_str(), p.revision))
                .collect();
            let mut got: Vec<(&str, u64)> = out
                .policies
                .get(name)
                .map(|l| l.iter().map(|p| (p.id.as_str(), p.revision)).collect())
                .unwrap_or_default();
            want.sort();
            got.sort();
            got == want
        })
        .count() as u64
}

/// What the comparison needs to know of the replay's nodes and actions.
struct Meta {
    /// Node id per certificate name.
    ids: BTreeMap<String, NodeId>,
    /// Clients: name and platform.
    clients: Vec<(String, String)>,
    /// Per action, the index of the status query it is, if it is one.
    tags: Vec<Option<usize>>,
    /// Engine seconds per real second.
    speedup: u32,
}

/// Sets the two runs side by side.
fn compare(
    sc: &Scenario,
    plan: &Plan,
    sim: &RunSummary,
    counter: &FrameCounter,
    out: &ReplayOutcome,
    meta: &Meta,
) -> ReplayReport {
    let Meta { ids, clients, tags, speedup } = meta;
    let speedup = *speedup;
    let link_name = |l: usize| {
        let lp = &plan.links[l];
        format!("{} {}", if lp.wan { "WAN" } else { "LAN" }, sc.sites[lp.site].name)
    };

    // The replay's frames and socket bytes, on the simulator's links.
    let mut real: BTreeMap<(usize, Way, &'static str), FrameTotal> = BTreeMap::new();
    let mut real_kinds: BTreeMap<&'static str, FrameTotal> = BTreeMap::new();
    let mut socket: BTreeMap<(usize, Way), u64> = BTreeMap::new();
    let mut keepalive = 0;
    for t in &out.sent {
        let (Some(&from), Some(&to)) = (ids.get(&t.node), ids.get(&t.peer)) else { continue };
        if t.kind == "keepalive" {
            keepalive += t.bytes;
            continue;
        }
        let k = real_kinds.entry(t.kind).or_default();
        k.bytes += t.bytes;
        k.messages += t.messages;
        let way = counter.way(from, to);
        for &l in counter.links(from, to) {
            let e = real.entry((l, way, t.kind)).or_default();
            e.bytes += t.bytes;
            e.messages += t.messages;
        }
    }
    let mut sessions = 0;
    for s in &out.sockets {
        let (Some(&from), Some(&to)) = (ids.get(&s.node), ids.get(&s.peer)) else { continue };
        let way = counter.way(from, to);
        for &l in counter.links(from, to) {
            *socket.entry((l, way)).or_default() += s.written;
        }
        // Each session is counted at both of its ends.
        sessions += s.sessions;
    }
    let children = (out.policies.len() as u64).saturating_sub(1);
    let reconnections = (sessions / 2).saturating_sub(children);

    // Per link and way.
    let mut per_link: BTreeMap<(usize, Way), (FrameTotal, FrameTotal)> = BTreeMap::new();
    for (&(l, w, _), t) in &counter.totals {
        let e = &mut per_link.entry((l, w)).or_default().0;
        e.bytes += t.bytes;
        e.messages += t.messages;
        e.wire_bytes += t.wire_bytes;
    }
    for (&(l, w, _), t) in &real {
        let e = &mut per_link.entry((l, w)).or_default().1;
        e.bytes += t.bytes;
        e.messages += t.messages;
    }
    let links: Vec<LinkRow> = per_link
        .iter()
        .map(|(&(l, w), (s, r))| LinkRow {
            link: link_name(l),
            way: w.as_str(),
            sim_app_bytes: s.bytes,
            real_app_bytes: r.bytes,
            diff_percent: percent(s.bytes, r.bytes),
            sim_messages: s.messages,
            real_messages: r.messages,
            sim_wire_bytes: s.wire_bytes,
            real_socket_bytes: socket.get(&(l, w)).copied().unwrap_or(0),
        })
        .collect();

    // Per kind, each message once.
    let mut kind_names: Vec<&'static str> = counter.kinds.keys().copied().collect();
    kind_names.extend(real_kinds.keys().copied());
    kind_names.sort();
    kind_names.dedup();
    let kinds: Vec<KindRow> = kind_names
        .iter()
        .map(|k| {
            let s = counter.kinds.get(k).copied().unwrap_or_default();
            let r = real_kinds.get(k).copied().unwrap_or_default();
            KindRow {
                kind: k,
                sim_messages: s.messages,
                real_messages: r.messages,
                sim_app_bytes: s.bytes,
                real_app_bytes: r.bytes,
                diff_percent: percent(s.bytes, r.bytes),
            }
        })
        .collect();
    let sim_total: u64 = counter.kinds.values().map(|t| t.bytes).sum();
    let real_total: u64 = real_kinds.values().map(|t| t.bytes).sum();
    let received: u64 =
        out.received.iter().filter(|t| t.kind != "keepalive").map(|t| t.bytes).sum();
    let diff = percent(sim_total, real_total);
    // A link that carries a few hundred bytes (a WAN uplink's checks)
    // moves by percents with one message; it is held to the aim only when
    // it carries a share of the traffic worth measuring.
    let within = diff.abs() <= TOLERANCE_PERCENT
        && links.iter().all(|l| {
            l.diff_percent.abs() <= TOLERANCE_PERCENT
                || (l.sim_app_bytes as f64) < sim_total as f64 * MIN_LINK_SHARE
        });

    // Status queries, in the order of the scenario.
    let mut answer_of: BTreeMap<usize, &OpResponse> = BTreeMap::new();
    for a in &out.answers {
        if let Some(Some(q)) = tags.get(a.action) {
            answer_of.insert(*q, &a.response);
        }
    }
    let status_queries = sim
        .status_queries
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let (real_sites, real_missing) = match answer_of.get(&i) {
                Some(OpResponse::Status(v)) => {
                    (v.sites.iter().map(|s| s.site.clone()).collect(), v.missing.clone())
                }
                _ => (Vec::new(), Vec::new()),
            };
            QueryRow {
                at: q.at.clone(),
                kind: q.kind.clone(),
                sim_sites: q.sites_answered.clone(),
                real_sites,
                real_missing,
            }
        })
        .collect();
    let late = out.answers.iter().map(|a| a.late).max().unwrap_or_default();
    ReplayReport {
        scenario: sc.name.clone(),
        seed: sim.seed,
        speedup,
        simulated_seconds: sim.simulated_seconds,
        sim_app_bytes: sim_total,
        real_app_bytes: real_total,
        diff_percent: diff,
        within_tolerance: within,
        tolerance_percent: TOLERANCE_PERCENT,
        links,
        kinds,
        real_keepalive_bytes: keepalive,
        real_app_bytes_received: received,
        reconnections,
        clients: clients.len() as u64,
        children,
        sim_clients_up_to_date: sim.clients.up_to_date_at_end,
        real_clients_up_to_date: up_to_date(out, clients),
        status_queries,
        replay_seconds: out.replay_seconds,
        connect_seconds: out.connect_seconds,
        connected_before_start: out.connected_before_start,
        max_action_lateness_engine_seconds: late.as_secs_f64() * f64::from(speedup),
    }
}

/// The report as tables.
fn human(r: &ReplayReport) -> String {
    let pct = |p: f64| format!("{p:+.2}%");
    let mut s = format!(
        "{} replayed over loopback TLS at {}x (seed {}): {:.1} simulated hours in {:.1} s\n\n",
        r.scenario,
        r.speedup,
        r.seed,
        r.simulated_seconds / 3600.0,
        r.replay_seconds
    );
    s += "Application bytes per link (frames; simulated vs written to sockets)\n";
    let rows: Vec<Vec<String>> = r
        .links
        .iter()
        .map(|l| {
            vec![
                l.link.clone(),
                l.way.to_string(),
                l.sim_app_bytes.to_string(),
                l.real_app_bytes.to_string(),
                pct(l.diff_percent),
                l.sim_messages.to_string(),
                l.real_messages.to_string(),
                bytes(l.sim_wire_bytes),
                bytes(l.real_socket_bytes),
            ]
        })
        .collect();
    s += &table(
        &[
            "LINK",
            "WAY",
            "SIM_APP",
            "REAL_APP",
            "DIFF",
            "SIM_MSGS",
            "REAL_MSGS",
            "SIM_WIRE",
            "REAL_TLS",
        ],
        &rows,
    );
    s += "\nApplication bytes per message kind\n";
    let rows: Vec<Vec<String>> = r
        .kinds
        .iter()
        .map(|k| {
            vec![
                k.kind.to_string(),
                k.sim_messages.to_string(),
                k.real_messages.to_string(),
                k.sim_app_bytes.to_string(),
                k.real_app_bytes.to_string(),
                pct(k.diff_percent),
            ]
        })
        .collect();
    s += &table(&["KIND", "SIM_MSGS", "REAL_MSGS", "SIM_APP", "REAL_APP", "DIFF"], &rows);
    s += &format!(
        "\ntotal application bytes: simulated {} ({}), replayed {} ({}): {} — {} the {}% aim \
         (total and every link above 1% of it)\n",
        r.sim_app_bytes,
        bytes(r.sim_app_bytes),
        r.real_app_bytes,
        bytes(r.real_app_bytes),
        pct(r.diff_percent),
        if r.within_tolerance { "within" } else { "NOT within" },
        r.tolerance_percent
    );
    s += &format!(
        "clients up to date at the end: simulated {}/{}, replayed {}/{}\n",
        r.sim_clients_up_to_date, r.clients, r.real_clients_up_to_date, r.clients
    );
    for q in &r.status_queries {
        s += &format!(
            "status {} at {}: simulated answered by [{}], replayed by [{}]{}\n",
            q.kind,
            q.at,
            q.sim_sites.join(", "),
            q.real_sites.join(", "),
            if q.real_missing.is_empty() {
                String::new()
            } else {
                format!(", missing [{}]", q.real_missing.join(", "))
            }
        );
    }
    s += &format!(
        "transport: {} of keepalives, {} reconnections; all {} children connected in {:.2} s{}; \
         actions at most {:.0} engine seconds late\n",
        bytes(r.real_keepalive_bytes),
        r.reconnections,
        r.children,
        r.connect_seconds,
        if r.connected_before_start { ", before the clock started" } else { " (late)" },
        r.max_action_lateness_engine_seconds
    );
    s += "SIM_WIRE is the simulator's model (TCP/IP headers, TLS records, a connection per client \
          exchange); REAL_TLS is what crossed the sockets (TLS records, one handshake per \
          persistent connection, keepalives), without TCP/IP headers.\n";
    s
}

/// Runs the command.
pub fn run(args: ReplayArgs) -> anyhow::Result<ExitCode> {
    let sc = super::compare::load(&args.scenario, &[])?;
    let why = unsupported(&sc);
    if !why.is_empty() {
        anyhow::bail!(
            "{} cannot be replayed:\n  - {}",
            args.scenario.display(),
            why.join("\n  - ")
        );
    }
    let seed = args.seed.unwrap_or(sc.seed);
    let plan = build::plan(&sc, Strategy::Tiered);

    // The simulator's prediction, with frame bytes per link.
    let mut counter = FrameCounter::new(&plan);
    let opts = RunOptions {
        strategy: Strategy::Tiered,
        seed: Some(seed),
        keep_detail: false,
        single_thread: false,
    };
    let sim = world::run(&sc, &opts, &mut counter).summary;

    // The same nodes over loopback TLS.
    let (spec, tags) = spec(&sc, &plan, seed, args.speedup);
    let ids: BTreeMap<String, NodeId> =
        spec.nodes.iter().map(|n| (n.name.clone(), n.node.id())).collect();
    let clients: Vec<(String, String)> = spec
        .nodes
        .iter()
        .filter_map(|n| match &n.node {
            Node::Client(c) => Some((n.name.clone(), c.profile().platform.to_string())),
            _ => None,
        })
        .collect();
    let out = replay::run(spec)?;

    let meta = Meta { ids, clients, tags, speedup: args.speedup };
    let report = compare(&sc, &plan, &sim, &counter, &out, &meta);
    let text =
        if args.json { serde_json::to_string_pretty(&report)? + "\n" } else { human(&report) };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
