//! From a scenario to a deployment plan: which nodes exist, where they
//! sit, who serves whom, and which links a message between two sites
//! crosses.

use std::collections::BTreeMap;

use tiersync_engine::{Name, NodeId, Params, SiteName, Time, Value};

use crate::link::{Direction, LinkConfig};
use crate::scenario::{Scenario, Strategy};

/// Who serves a site's clients.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerRef {
    /// The master: under the flat strategies, and under `tiered` for a
    /// site with `local_servers = 0` and no server on the way up.
    Master,
    /// A local server, by its index in [`Plan::locals`].
    Local(usize),
}

/// One local server of the plan; its node id is `1 + index`.
#[derive(Clone, Debug)]
pub struct LocalPlan {
    /// Its site.
    pub site: usize,
    /// Its parent: the master or a regional local server.
    pub parent: NodeId,
    /// Local servers directly below it, with their sites.
    pub children: BTreeMap<NodeId, SiteName>,
}

/// One simulated link.
#[derive(Clone, Debug)]
pub struct LinkPlan {
    /// The site it belongs to (a WAN link: the child end).
    pub site: usize,
    /// WAN (to the parent's site) or the site's LAN.
    pub wan: bool,
    /// Its properties.
    pub config: LinkConfig,
}

/// One link crossed, in one direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hop {
    /// Link index.
    pub link: usize,
    /// Direction.
    pub dir: Direction,
}

/// Sorted, disjoint UTC intervals (a site's business hours).
#[derive(Clone, Debug, Default)]
pub struct Intervals(Vec<(Time, Time)>);

impl Intervals {
    /// Whether `t` lies in one of the intervals.
    pub fn contains(&self, t: Time) -> bool {
        let i = self.0.partition_point(|(start, _)| *start <= t);
        i > 0 && t < self.0[i - 1].1
    }
}

/// The deployment a scenario describes, under one strategy.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Index of the master's site.
    pub root: usize,
    /// Site names, by index.
    pub site_names: Vec<SiteName>,
    /// Local servers.
    pub locals: Vec<LocalPlan>,
    /// Local servers directly below the master.
    pub children_of_master: BTreeMap<NodeId, SiteName>,
    /// Who serves each site's clients.
    pub client_server: Vec<ServerRef>,
    /// Node id of the first client.
    pub client_base: u32,
    /// Number of clients.
    pub client_count: u64,
    /// Per site, the range of client indices.
    pub client_range: Vec<(u32, u32)>,
    /// Site of each client, by client index.
    pub client_site: Vec<u16>,
    /// Every link.
    pub links: Vec<LinkPlan>,
    /// Each site's WAN link to its parent.
    pub wan_link: Vec<Option<usize>>,
    /// Each site's LAN.
    pub lan_link: Vec<usize>,
    /// Links crossed from site `a` to site `b`: `paths[a][b]`. Within one
    /// site it is the LAN, written `Up`: the direction there depends on
    /// the two nodes, see [`Plan::lan_direction`].
    pub paths: Vec<Vec<Vec<Hop>>>,
    /// Per link, the business hours of its site.
    pub business: Vec<Intervals>,
}

impl Plan {
    /// The direction of a message between two nodes of one site on its LAN:
    /// `Down` from a server to a node it serves (the master to a local
    /// server, a server to a client), `Up` the other way.
    pub fn lan_direction(&self, from: NodeId, to: NodeId) -> Direction {
        if self.rank(from) < self.rank(to) { Direction::Down } else { Direction::Up }
    }

    /// 0 for the master, 1 for a local server, 2 for a client.
    fn rank(&self, node: NodeId) -> u8 {
        match node.0 {
            0 => 0,
            n if n < self.client_base => 1,
            _ => 2,
        }
    }

    /// The site a node sits at.
    pub fn site_of(&self, node: NodeId) -> usize {
        if node.0 == 0 {
            self.root
        } else if node.0 < self.client_base {
            self.locals[node.0 as usize - 1].site
        } else {
            self.client_site[(node.0 - self.client_base) as usize] as usize
        }
    }
}

/// Builds the plan of `sc` under `strategy`.
pub fn plan(sc: &Scenario, strategy: Strategy) -> Plan {
    let n = sc.sites.len();
    let root = sc.root_index();
    let site_names: Vec<SiteName> = sc.sites.iter().map(|s| Name::new(&s.name)).collect();

    // Which sites run a local server: under `tiered`, every site with
    // clients, the master's own included (its clients are served across
    // the site's LAN by a local server whose parent is the master), and
    // every relay site with such a site below it.
    let serves: Vec<bool> =
        (0..n).map(|i| strategy == Strategy::Tiered && sc.runs_local_server(i)).collect();
    let local_of: Vec<Option<usize>> = {
        let mut next = 0;
        serves
            .iter()
            .map(|&on| {
                on.then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect()
    };
    // The server above a site: the nearest local server up the tree, or
    // the master. The local server at the master's own site serves only
    // that site's clients; everything else above it talks to the master.
    let server_above = |mut i: usize| -> ServerRef {
        while let Some(p) = sc.sites[i].parent_index {
            if p == root {
                break;
            }
            if let Some(l) = local_of[p] {
                return ServerRef::Local(l);
            }
            i = p;
        }
        ServerRef::Master
    };

    // Local servers and their parents and children.
    let mut locals: Vec<LocalPlan> = (0..n)
        .filter(|&i| serves[i])
        .map(|i| LocalPlan {
            site: i,
            parent: match server_above(i) {
                ServerRef::Master => NodeId(0),
                ServerRef::Local(l) => NodeId(1 + l as u32),
            },
            children: BTreeMap::new(),
        })
        .collect();
    let mut children_of_master = BTreeMap::new();
    for i in 0..locals.len() {
        let id = NodeId(1 + i as u32);
        let name = site_names[locals[i].site].clone();
        match locals[i].parent {
            NodeId(0) => {
                children_of_master.insert(id, name);
            }
            NodeId(p) => {
                locals[p as usize - 1].children.insert(id, name);
            }
        }
    }

    // Who serves each site's clients.
    let client_server: Vec<ServerRef> = (0..n)
        .map(|i| match local_of[i] {
            Some(l) => ServerRef::Local(l),
            None if strategy == Strategy::Tiered => server_above(i),
            None => ServerRef::Master,
        })
        .collect();

    // Clients, numbered site by site.
    let client_base = 1 + locals.len() as u32;
    let mut client_range = Vec::with_capacity(n);
    let mut client_site = Vec::new();
    for (i, s) in sc.sites.iter().enumerate() {
        let from = client_site.len() as u32;
        client_site.extend(std::iter::repeat_n(i as u16, s.client_count() as usize));
        client_range.push((from, client_site.len() as u32));
    }
    let client_count = client_site.len() as u64;

    // Links: each site's LAN, and its WAN to the parent.
    let mut links = Vec::new();
    let mut wan_link = vec![None; n];
    let mut lan_link = vec![0; n];
    for (i, s) in sc.sites.iter().enumerate() {
        lan_link[i] = links.len();
        links.push(LinkPlan {
            site: i,
            wan: false,
            config: LinkConfig {
                bandwidth_bps: s.lan.bandwidth.bits_per_second(),
                latency: s.lan.latency.into(),
                jitter: std::time::Duration::ZERO,
                loss: 0.0,
                duplicate: 0.0,
                background: [0.0; 24],
                clock: crate::calendar::LocalClock::new(s.timezone.clone()),
            },
        });
        if let Some(w) = &s.wan {
            wan_link[i] = Some(links.len());
            links.push(LinkPlan {
                site: i,
                wan: true,
                config: LinkConfig {
                    bandwidth_bps: w.bandwidth.bits_per_second(),
                    latency: w.latency.into(),
                    jitter: w.jitter.into(),
                    loss: w.loss.value(),
                    duplicate: w.duplicate.value(),
                    background: w.background.hourly_shares(),
                    clock: crate::calendar::LocalClock::new(s.timezone.clone()),
                },
            });
        }
    }

    let paths =
        (0..n).map(|a| (0..n).map(|b| path(sc, &wan_link, &lan_link, a, b)).collect()).collect();
    let business = links.iter().map(|l| business_hours(sc, l.site)).collect();

    Plan {
        root,
        site_names,
        locals,
        children_of_master,
        client_server,
        client_base,
        client_count,
        client_range,
        client_site,
        links,
        wan_link,
        lan_link,
        paths,
        business,
    }
}

/// The links from site `a` to site `b`: the LAN when they are the same
/// site, otherwise up the tree to the closest common ancestor and down.
fn path(sc: &Scenario, wan: &[Option<usize>], lan: &[usize], a: usize, b: usize) -> Vec<Hop> {
    if a == b {
        return vec![Hop { link: lan[a], dir: Direction::Up }];
    }
    let ancestors = |mut i: usize| {
        let mut v = vec![i];
        while let Some(p) = sc.sites[i].parent_index {
            v.push(p);
            i = p;
        }
        v
    };
    let (up, down) = (ancestors(a), ancestors(b));
    let common = *up.iter().find(|s| down.contains(s)).unwrap_or(&sc.root_index());
    let mut hops = Vec::new();
    for &s in up.iter().take_while(|&&s| s != common) {
        if let Some(l) = wan[s] {
            hops.push(Hop { link: l, dir: Direction::Up });
        }
    }
    let downward: Vec<usize> = down.iter().take_while(|&&s| s != common).copied().collect();
    for &s in downward.iter().rev() {
        if let Some(l) = wan[s] {
            hops.push(Hop { link: l, dir: Direction::Down });
        }
    }
    hops
}

/// A site's business hours over the run, as UTC intervals (public so that
/// a report can say what share of the run they cover).
pub fn business_hours(sc: &Scenario, site: usize) -> Intervals {
    let tz = &sc.sites[site].timezone;
    let bh = &sc.business_hours;
    let days: Vec<jiff::civil::Weekday> = bh.days.iter().map(|d| d.to_jiff()).collect();
    let window = tiersync_engine::schedule::DailyWindow {
        start_min: bh.window.start_minute(),
        end_min: bh.window.end_minute(),
    };
    let mut out = Vec::new();
    let mut at = sc.start - std::time::Duration::from_secs(2 * 86_400);
    let stop = sc.end() + std::time::Duration::from_secs(86_400);
    while at < stop {
        let (from, to) = window.next_after(tz, at);
        let weekday = tz.to_datetime(from.to_jiff()).date().weekday();
        if days.contains(&weekday) {
            out.push((from, to));
        }
        at = to;
    }
    Intervals(out)
}

/// A TOML table as engine parameters.
pub fn params(t: &toml::Table) -> Params {
    t.iter().map(|(k, v)| (k.clone(), value(v))).collect()
}

/// Overlays keyed by platform or site.
pub fn overlays(m: &BTreeMap<String, toml::Table>) -> BTreeMap<Name, Params> {
    m.iter().map(|(k, t)| (Name::new(k), params(t))).collect()
}

fn value(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::Str(s.clone()),
        toml::Value::Integer(i) => Value::Int(*i),
        toml::Value::Float(f) => Value::Float(*f),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::Str(d.to_string()),
        toml::Value::Array(a) => Value::List(a.iter().map(value).collect()),
        toml::Value::Table(t) => Value::Map(params(t)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIGURE_1: &str = include_str!("../../scenarios/figure-1.toml");

    /// Figure 1 with ten clients at the master's own site.
    fn with_hq_clients() -> Scenario {
        let text = FIGURE_1.replacen(
            "timezone = \"America/New_York\"",
            "timezone = \"America/New_York\"\nclients = { linux = 10 }",
            1,
        );
        Scenario::from_str_named(&text, "figure-1.toml").unwrap()
    }

    #[test]
    fn the_master_site_gets_a_local_server_for_its_clients_under_tiered() {
        let sc = with_hq_clients();
        let tiered = plan(&sc, Strategy::Tiered);
        let root_local = tiered.locals.iter().position(|l| l.site == tiered.root).unwrap();
        assert_eq!(tiered.locals[root_local].parent, NodeId(0));
        assert_eq!(tiered.client_server[tiered.root], ServerRef::Local(root_local));
        let id = NodeId(1 + root_local as u32);
        assert_eq!(tiered.children_of_master.get(&id).map(|s| s.as_str()), Some("hq"));
        // It serves only its own site: the other local servers still have
        // the master as parent, and it has no children.
        assert!(tiered.locals.iter().all(|l| l.parent == NodeId(0)));
        assert!(tiered.locals[root_local].children.is_empty());
        assert_eq!(tiered.children_of_master.len(), 4);
        // Under flat, the same clients poll the master.
        let flat = plan(&sc, Strategy::Flat);
        assert!(flat.locals.is_empty());
        assert_eq!(flat.client_server[flat.root], ServerRef::Master);
    }

    #[test]
    fn lan_direction_is_down_from_a_server_and_up_towards_it() {
        let sc = with_hq_clients();
        let plan = plan(&sc, Strategy::Tiered);
        let (master, local, client) = (NodeId(0), NodeId(1), NodeId(plan.client_base));
        assert_eq!(plan.lan_direction(master, local), Direction::Down);
        assert_eq!(plan.lan_direction(local, master), Direction::Up);
        assert_eq!(plan.lan_direction(local, client), Direction::Down);
        assert_eq!(plan.lan_direction(client, local), Direction::Up);
        assert_eq!(plan.lan_direction(master, client), Direction::Down);
    }
}
