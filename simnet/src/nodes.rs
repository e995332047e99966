//! The engine nodes of a scenario, configured exactly as the simulator
//! runs them, and the policy changes its actions make.
//!
//! The simulator ([`crate::world`]) builds its master, local servers and
//! clients from here, and so does `tiersync replay`, which runs the same
//! nodes over real TCP and sets its measured bytes beside the
//! simulator's: both must start from the same configurations, seeds,
//! keys and payloads, or the comparison would measure the set-up rather
//! than the network.

use std::sync::Arc;

use tiersync_engine::schedule::{DailyWindow, QuietHours};
use tiersync_engine::{
    Blob, ClientProfile, LocalConfig, MasterConfig, Name, NodeId, PolicyChange, PolicyVerifier,
    ServeMode,
};

use crate::build::{self, Plan, ServerRef};
use crate::scenario::{Scenario, Strategy};
use crate::seeds;

/// Proposal ids of the initial policies, apart from change indices.
pub const INITIAL_PROPOSAL_BASE: u64 = 1 << 40;

/// One client: its node id, its profile and its generator's seed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientSpec {
    /// Node id: `plan.client_base` plus the client's index.
    pub id: NodeId,
    /// Index into [`NodeSet::profiles`].
    pub profile: u32,
    /// Seed of the client's random generator.
    pub seed: u64,
}

/// Every node's configuration for one run.
pub struct NodeSet {
    /// The master (node 0).
    pub master: MasterConfig,
    /// Local servers; the one at index `i` is node `1 + i`.
    pub locals: Vec<LocalConfig>,
    /// One shared profile per (site, platform), in site then platform
    /// order.
    pub profiles: Vec<Arc<ClientProfile>>,
    /// Clients in node-id order.
    pub clients: Vec<ClientSpec>,
    /// Verifies the master's signatures (the key is derived from the seed).
    pub verifier: PolicyVerifier,
}

/// The nodes of `sc` under `strategy` and `plan`, with every random choice
/// derived from `seed`.
pub fn node_set(sc: &Scenario, plan: &Plan, strategy: Strategy, seed: u64) -> NodeSet {
    let secret = seeds::derive_key(seed, "master-key");
    let signer = tiersync_engine::PolicySigner::from_secret(secret);
    let verifier = PolicyVerifier::new(signer.public());

    // The master.
    let mut master = MasterConfig::new(
        NodeId(0),
        plan.site_names[plan.root].clone(),
        plan.site_names.clone(),
        plan.children_of_master.clone(),
        secret,
    );
    master.client_mode = match strategy {
        Strategy::Flat => ServeMode::Full,
        _ => ServeMode::Conditional,
    };
    master.log_keep = sc.master.log_keep as usize;
    master.status_deadline = sc.local.status_deadline.into();
    master.stale_after = sc.local.stale_after.into();

    // Local servers.
    let locals = plan
        .locals
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let site = &sc.sites[l.site];
            let mut cfg = LocalConfig::new(
                NodeId(1 + i as u32),
                plan.site_names[l.site].clone(),
                l.parent,
                site.timezone.clone(),
                verifier.clone(),
                seeds::derive(seed, "local", i as u64),
            );
            cfg.sync_window = DailyWindow {
                start_min: sc.local.sync_window.start_minute(),
                end_min: sc.local.sync_window.end_minute(),
            };
            cfg.policy_check = sc.local.policy_check.map(Into::into);
            if !sc.local.checks_in_business_hours {
                cfg.check_quiet = Some(quiet_hours(sc));
            }
            cfg.children = l.children.clone();
            cfg.log_keep = sc.master.log_keep as usize;
            cfg.stale_after = sc.local.stale_after.into();
            // `local.retry` is the request timeout: the wait for the
            // parent's answer before asking again, doubled per try.
            cfg.request_timeout = sc.local.retry.into();
            cfg
        })
        .collect();

    // Clients, one shared profile per (site, platform).
    let inventory = Blob::filler(sc.client.inventory.bytes() as usize, seed);
    let mut profiles = Vec::new();
    let mut clients = Vec::with_capacity(plan.client_count as usize);
    for (site_idx, site) in sc.sites.iter().enumerate() {
        for (platform, &count) in &site.clients {
            let server = match plan.client_server[site_idx] {
                ServerRef::Master => NodeId(0),
                ServerRef::Local(i) => NodeId(1 + i as u32),
            };
            let profile = Arc::new(ClientProfile {
                site: plan.site_names[site_idx].clone(),
                platform: Name::new(platform),
                server,
                poll: sc.client.poll.into(),
                splay: sc.client.splay.into(),
                status_every: sc.client.status_every.into(),
                inventory: inventory.clone(),
                engine_version: sc.client.engine_version,
                threat_rate: sc.client.threat_rate.value(),
                scan_every: sc.client.scan_every.into(),
                wake_splay: sc.client.wake_splay.into(),
                verifier: verifier.clone(),
            });
            let pidx = profiles.len() as u32;
            profiles.push(profile);
            for _ in 0..count {
                let id = NodeId(plan.client_base + clients.len() as u32);
                let cseed = seeds::derive(seed, "client", u64::from(id.0));
                clients.push(ClientSpec { id, profile: pidx, seed: cseed });
            }
        }
    }
    NodeSet { master, locals, profiles, clients, verifier }
}

/// The scenario's business hours as the engine's quiet hours for checks.
fn quiet_hours(sc: &Scenario) -> QuietHours {
    let bh = &sc.business_hours;
    let mut days = [false; 7];
    for d in &bh.days {
        let i = usize::try_from(d.to_jiff().to_monday_zero_offset()).unwrap_or(0);
        days[i] = true;
    }
    let window =
        DailyWindow { start_min: bh.window.start_minute(), end_min: bh.window.end_minute() };
    QuietHours { window, days }
}

/// The change that creates the scenario's `i`-th initial policy at the
/// start of the run, with content derived from `seed`.
pub fn initial_change(sc: &Scenario, seed: u64, i: usize) -> PolicyChange {
    let p = &sc.policies[i];
    PolicyChange {
        id: Name::new(&p.id),
        params: Some(build::params(&p.params)),
        content: Some(Blob::filler(
            p.content.bytes() as usize,
            seeds::derive(seed, "content", i as u64),
        )),
        platforms: Some(p.platforms.iter().map(|s| Name::new(s)).collect()),
        platform_params: Some(build::overlays(&p.platform_params)),
        site_params: Some(build::overlays(&p.site_params)),
        urgent: false,
    }
}

/// The scenario's `i`-th change, with new content derived from `seed`.
pub fn scenario_change(sc: &Scenario, seed: u64, i: usize) -> PolicyChange {
    let c = &sc.changes[i];
    PolicyChange {
        id: Name::new(&c.policy),
        params: c.params.as_ref().map(build::params),
        content: c.content.map(|size| {
            let seed = seeds::derive(seed, "change-content", i as u64);
            Blob::filler(size.bytes() as usize, seed)
        }),
        platforms: c.platforms.as_ref().map(|p| p.iter().map(|s| Name::new(s)).collect()),
        platform_params: None,
        site_params: None,
        urgent: c.urgent,
    }
}

/// The local server where the scenario's `i`-th change is made, by its
/// index in `plan.locals`, or `None` when the master makes it: changes of
/// the master's site, and every change under the flat strategies, which
/// have no local servers.
pub fn change_origin(sc: &Scenario, plan: &Plan, strategy: Strategy, i: usize) -> Option<usize> {
    let origin_site = sc.site_index(&sc.changes[i].origin).unwrap_or(plan.root);
    if strategy != Strategy::Tiered || origin_site == plan.root {
        return None;
    }
    plan.locals.iter().position(|l| l.site == origin_site)
}
