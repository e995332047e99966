//! Building a daemon from its configuration file: identity checks, keys,
//! the store, and the engine node restored from it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use thiserror::Error;
use tiersync_engine::{
    Blob, Client, ClientProfile, Local, LocalConfig, Master, MasterConfig, Name, Node, NodeId,
    PolicyVerifier,
};

use crate::clock::Clock;
use crate::config::{ClientConfigFile, LocalConfigFile, MasterConfigFile, TlsFiles};
use crate::conn::{Access, CertifiedSites, ParentLink};
use crate::daemon::{NodeSetup, Persist};
use crate::ids::{Role, node_id};
use crate::metrics::Metrics;
use crate::pki::{self, PkiError};
use crate::store::{Store, StoreError};

/// Why a daemon could not be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum SetupError {
    /// Certificates or keys are unusable.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// The store is unusable.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The configuration contradicts the certificate or the store.
    #[error("{0}")]
    Mismatch(String),
}

/// Checks that the certificate is this node's, in this role (and site).
fn check_identity(
    tls: &TlsFiles,
    name: &str,
    role: Role,
    site: Option<&str>,
) -> Result<(), SetupError> {
    let me = pki::own_identity(tls)?;
    if me.name != name || me.role != role {
        return Err(SetupError::Mismatch(format!(
            "{} is the certificate of {} `{}`, but this configuration is {role} `{name}`",
            tls.cert.display(),
            me.role,
            me.name
        )));
    }
    if let Some(site) = site
        && me.site.as_deref() != Some(site)
    {
        return Err(SetupError::Mismatch(format!(
            "the certificate of `{name}` is for site {:?}, the configuration says `{site}`",
            me.site
        )));
    }
    Ok(())
}

/// Binds the names this node's configuration gives (its own, its parent's,
/// its children's) to their node ids in the store, and returns every
/// binding the store then holds. A configured name whose id is bound to
/// another name (two names, one 32-bit hash: see [`crate::ids`]) is
/// refused before the node starts, naming both.
fn bind_configured(
    store: &mut Store,
    data_dir: &Path,
    names: &[&str],
) -> Result<BTreeMap<NodeId, String>, SetupError> {
    let mut bound = store.node_names()?;
    for name in names {
        let id = node_id(name);
        match bound.get(&id) {
            Some(other) if other != name => {
                return Err(SetupError::Mismatch(format!(
                    "node-id collision: `{name}` in the configuration maps to node id {id}, \
                     which {} binds to `{other}` (two names, one 32-bit hash); rename one of them",
                    data_dir.display()
                )));
            }
            Some(_) => {}
            None => {
                store.bind_node_name(id, name)?;
                bound.insert(id, name.to_string());
            }
        }
    }
    Ok(bound)
}

/// A seed for the engine's splay and the reconnection jitter: the node's
/// id mixed with the start time, so restarts draw different delays.
fn seed(name: &str, clock: &Clock) -> u64 {
    u64::from(node_id(name).0) ^ (clock.now().as_nanos() as u64).rotate_left(17)
}

/// The master's daemon.
pub fn master(
    cfg: &MasterConfigFile,
    clock: Clock,
    metrics: Arc<Metrics>,
) -> Result<NodeSetup, SetupError> {
    check_identity(&cfg.tls, &cfg.name, Role::Master, None)?;
    let secret = pki::read_key32(&cfg.policy_signing_key)?;
    let children: BTreeMap<NodeId, Name> =
        cfg.children.iter().map(|c| (node_id(&c.name), Name::new(&c.site))).collect();
    let mut sites: Vec<Name> = std::iter::once(&cfg.site)
        .chain(cfg.children.iter().map(|c| &c.site))
        .chain(&cfg.sites)
        .map(|s| Name::new(s))
        .collect();
    sites.sort();
    sites.dedup();
    let mut mcfg = MasterConfig::new(
        node_id(&cfg.name),
        Name::new(&cfg.site),
        sites.clone(),
        children,
        secret,
    );
    mcfg.status_deadline = cfg.status_deadline;
    mcfg.stale_after = cfg.stale_after;
    mcfg.log_keep = cfg.log_keep;
    // Clients of every site may poll the master, each only as the site its
    // certificate names.
    let cert_sites = CertifiedSites::new();
    mcfg.clients.check = Some(cert_sites.admit_fn());

    // Restore from the store, and refuse a signing key that did not sign
    // what the store holds: every verifier would refuse what it serves.
    let mut store = Store::open(&cfg.data_dir, Role::Master, &cfg.name)?;
    let configured: Vec<&str> = std::iter::once(cfg.name.as_str())
        .chain(cfg.children.iter().map(|c| c.name.as_str()))
        .collect();
    let bindings = bind_configured(&mut store, &cfg.data_dir, &configured)?;
    let state = store.master_load()?;
    let verifier = PolicyVerifier::new(tiersync_engine::PolicySigner::from_secret(secret).public());
    if let Some(h) = state.revisions.first()
        && verifier.verify_record(&h.full, Some(&h.content)).is_err()
    {
        return Err(SetupError::Mismatch(format!(
            "{} did not sign the policies in {}; use the key that did",
            cfg.policy_signing_key.display(),
            cfg.data_dir.display()
        )));
    }
    let next_proposal = state
        .accepted
        .iter()
        .filter(|(o, _, _)| *o == node_id(&cfg.name))
        .map(|(_, p, _)| p + 1)
        .max()
        .unwrap_or(1);
    let history_len = state.history.len();
    let node = Node::Master(Master::restore(mcfg, state));

    let mut names: BTreeMap<NodeId, String> =
        cfg.children.iter().map(|c| (node_id(&c.name), c.name.clone())).collect();
    names.insert(node_id(&cfg.name), cfg.name.clone());
    let access = Access {
        children: cfg.children.iter().map(|c| c.name.clone()).collect(),
        client_sites: sites.iter().map(|s| s.to_string()).collect(),
        ..Access::default()
    };
    Ok(NodeSetup {
        name: cfg.name.clone(),
        node,
        persist: Persist::Master { store, history_len, next_proposal },
        listen: Some((cfg.listen, pki::server_config(&cfg.tls)?, access)),
        parent: None,
        transport: cfg.transport.clone(),
        seed: seed(&cfg.name, &clock),
        clock,
        metrics,
        names,
        bindings,
        cert_sites: Some(cert_sites),
        fetch_on_connect: true,
    })
}

/// A local server's daemon.
pub fn local(
    cfg: &LocalConfigFile,
    clock: Clock,
    metrics: Arc<Metrics>,
) -> Result<NodeSetup, SetupError> {
    check_identity(&cfg.tls, &cfg.name, Role::Local, Some(&cfg.site))?;
    let verifier = PolicyVerifier::new(pki::read_key32(&cfg.policy_verify_key)?);
    let tz = jiff::tz::TimeZone::get(&cfg.timezone)
        .map_err(|e| SetupError::Mismatch(format!("timezone `{}`: {e}", cfg.timezone)))?;
    let seed = seed(&cfg.name, &clock);
    let parent_id = node_id(&cfg.parent_name);
    let mut lcfg =
        LocalConfig::new(node_id(&cfg.name), Name::new(&cfg.site), parent_id, tz, verifier, seed);
    lcfg.sync_window = cfg.sync_window;
    lcfg.policy_check = cfg.policy_check;
    if !cfg.checks_in_business_hours {
        lcfg.check_quiet = Some(cfg.business_hours.quiet_hours());
    }
    lcfg.request_timeout = cfg.retry;
    lcfg.stale_after = cfg.stale_after;
    lcfg.log_keep = cfg.log_keep;
    let mut client_sites: Vec<String> =
        std::iter::once(&cfg.site).chain(&cfg.sites).cloned().collect();
    client_sites.sort();
    client_sites.dedup();
    lcfg.clients.sites = client_sites.iter().map(|s| Name::new(s)).collect();
    // A client is served only as the site its certificate names, which
    // matters once the server serves more sites than its own.
    let cert_sites = CertifiedSites::new();
    lcfg.clients.check = Some(cert_sites.admit_fn());
    lcfg.children = cfg.children.iter().map(|c| (node_id(&c.name), Name::new(&c.site))).collect();
    // A fresh server fetches within seconds of reaching its parent (the
    // driver asks on every connection); the splay only spreads restarts.
    lcfg.bootstrap_splay = Duration::from_secs(10);

    let mut store = Store::open(&cfg.data_dir, Role::Local, &cfg.name)?;
    let configured: Vec<&str> = [cfg.name.as_str(), cfg.parent_name.as_str()]
        .into_iter()
        .chain(cfg.children.iter().map(|c| c.name.as_str()))
        .collect();
    let bindings = bind_configured(&mut store, &cfg.data_dir, &configured)?;
    let (state, client_names) = store.local_load()?;
    let persist = Persist::Local {
        policies: state.policies.iter().map(|h| (h.id().clone(), h.revision())).collect(),
        upto: state.upto,
        proposals: state.proposals.iter().map(|(p, _)| *p).collect(),
        seq: (state.stats_seq, state.stats_acked.min(state.stats_seq)),
        names: client_names.clone(),
        store,
    };
    let node = Node::Local(Local::restore(lcfg, state));

    let mut names = client_names;
    names.insert(parent_id, cfg.parent_name.clone());
    names.insert(node_id(&cfg.name), cfg.name.clone());
    for c in &cfg.children {
        names.insert(node_id(&c.name), c.name.clone());
    }
    let access = Access {
        children: cfg.children.iter().map(|c| c.name.clone()).collect(),
        client_sites,
        ..Access::default()
    };
    let parent =
        ParentLink { addr: cfg.parent.clone(), name: cfg.parent_name.clone(), id: parent_id };
    Ok(NodeSetup {
        name: cfg.name.clone(),
        node,
        persist,
        listen: Some((cfg.listen, pki::server_config(&cfg.tls)?, access)),
        parent: Some((parent, pki::client_config(&cfg.tls)?)),
        transport: cfg.transport.clone(),
        clock,
        metrics,
        names,
        bindings,
        cert_sites: Some(cert_sites),
        seed,
        fetch_on_connect: true,
    })
}

/// A client's daemon.
pub fn client(
    cfg: &ClientConfigFile,
    clock: Clock,
    metrics: Arc<Metrics>,
) -> Result<NodeSetup, SetupError> {
    check_identity(&cfg.tls, &cfg.name, Role::Client, Some(&cfg.site))?;
    let verifier = PolicyVerifier::new(pki::read_key32(&cfg.policy_verify_key)?);
    let server = node_id(&cfg.server_name);
    let profile = Arc::new(ClientProfile {
        site: Name::new(&cfg.site),
        platform: Name::new(&cfg.platform),
        server,
        poll: cfg.poll,
        splay: cfg.splay,
        status_every: cfg.status_every,
        inventory: inventory(cfg),
        engine_version: cfg.engine_version,
        // No scanner runs here, so no threats are invented.
        threat_rate: 0.0,
        scan_every: cfg.scan_every,
        wake_splay: cfg.wake_splay,
        verifier,
    });
    let store = Store::open(&cfg.data_dir, Role::Client, &cfg.name)?;
    let state = store.client_load()?;
    let persist = Persist::Client {
        applied: state.applied.iter().map(|e| (e.id.clone(), e.revision)).collect(),
        meta: (state.have, state.threats, state.rejected, state.last_scan),
        store,
    };
    let seed = seed(&cfg.name, &clock);
    let node = Node::Client(Client::restore(node_id(&cfg.name), profile, seed, state));
    let names = BTreeMap::from([(server, cfg.server_name.clone())]);
    let parent = ParentLink { addr: cfg.server.clone(), name: cfg.server_name.clone(), id: server };
    Ok(NodeSetup {
        name: cfg.name.clone(),
        node,
        persist,
        listen: None,
        parent: Some((parent, pki::client_config(&cfg.tls)?)),
        transport: cfg.transport.clone(),
        clock,
        metrics,
        names,
        // A client accepts no connections: nobody to admit.
        bindings: BTreeMap::new(),
        cert_sites: None,
        seed,
        fetch_on_connect: true,
    })
}

/// The inventory a client reports. A real client would describe its
/// installed software here; this reference client describes only its
/// operating system family (`os=linux`), padded with filler bytes or cut to
/// `inventory` bytes when the configuration gives a size.
pub fn inventory(cfg: &ClientConfigFile) -> Blob {
    let mut bytes = format!("os={}", std::env::consts::OS).into_bytes();
    if let Some(size) = cfg.inventory {
        let pad = size.saturating_sub(bytes.len());
        let seed = u64::from(node_id(&cfg.name).0);
        bytes.extend_from_slice(Blob::filler(pad, seed).as_bytes());
        bytes.truncate(size);
    }
    Blob::from_bytes(bytes)
}
