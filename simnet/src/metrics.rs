//! What a run measures: traffic per link, direction and time bucket; the
//! master's load; propagation delay of every (change, affected client)
//! pair; staleness; the freshness of the master's view of each site.
//!
//! Everything here is fed by the simulator's own bookkeeping (bytes it
//! carried) and by the nodes' observations (a client applied a revision,
//! the master assigned one); nothing re-derives protocol behaviour.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use tiersync_engine::outbox::{Observation, Rejection};
use tiersync_engine::{Client, ClientProfile, Message, MessageKind, Name, NodeId, Time};

use crate::build::Plan;
use crate::link::Direction;
use crate::output::{
    ChangeSummary, ClientGroupSummary, DirectionSummary, FetchKind, FetchRow, KindSeriesRow,
    KindSummary, LinkSummary, MasterRow, MasterSummary, NodeInfo, NodeSeriesRow, PropagationRow,
    PropagationSummary, QuerySummary, RunDetail, SeriesRow, ServerSummary, SiteSummary, WanSummary,
};
use crate::scenario::Scenario;

/// Largest propagation delay the histogram resolves: 30 days, in ms.
const MAX_DELAY_MS: u64 = 30 * 86_400 * 1000;

/// Most policies (and platforms) tracked for staleness: one bit each of a
/// `u64`; the scenario loader refuses more.
use crate::scenario::MAX_TRACKED;

/// The utilisation bucket, nanoseconds: one minute, as the issue defines
/// `peak_utilization`, whatever the scenario's metering bucket.
const MINUTE_NS: i64 = 60_000_000_000;

/// One scenario change, as tracked.
#[derive(Clone, Debug)]
struct ChangeTrack {
    /// The scenario's time for it, from which its delay counts.
    made: Option<Time>,
    policy: usize,
    revision: Option<u64>,
    /// Platforms affected, one bit per platform index.
    platforms: u64,
    /// Clients of those platforms when the change was made.
    affected: u64,
    applied: u64,
    /// Made later than its time, because its local server was down.
    deferred: bool,
    /// Never made: its local server was down until the end.
    dropped: bool,
}

/// Freshness of the master's view of one site.
#[derive(Clone, Copy, Debug)]
struct Fresh {
    info: Time,
    since: Time,
    area_s2: f64,
}

/// Traffic on one link, for [`Observer::count_link`].
#[derive(Clone, Copy, Debug)]
pub struct LinkTraffic {
    /// Bytes on the wire.
    pub bytes: u64,
    /// Time the transmitter was occupied, nanoseconds.
    pub busy_ns: u64,
    /// Whether it started in the site's business hours.
    pub business: bool,
    /// Whether the link is a WAN link.
    pub wan: bool,
    /// Whether this is a message (not ACKs flowing back).
    pub message: bool,
    /// Whether the link lost the message after it was sent onto it.
    pub lost: bool,
}

/// What crossed one link in one direction during one metering bucket.
#[derive(Clone, Copy, Debug, Default)]
struct TrafficCell {
    bytes: u64,
    busy_ns: u64,
    messages: u32,
}

/// What one message kind carried in one metering bucket: wire bytes, as
/// [`KindSummary::bytes`] counts them, and messages sent. Kept only with
/// the detail; `u32` messages keep a cell at 16 bytes (a 1-minute bucket
/// holds far fewer than 4 billion messages of one kind).
#[derive(Clone, Copy, Debug, Default)]
struct KindCell {
    bytes: u64,
    messages: u32,
}

/// What one server or client group sent and received in one metering
/// bucket, bytes on the wire, as [`Observer::count_sent`] and
/// [`Observer::count_received`] count its totals. Kept only with the
/// detail, 24 bytes: some 160 rows of 10,080 one-minute buckets (a week of
/// a million clients) take about 39 MB.
#[derive(Clone, Copy, Debug, Default)]
struct NodeCell {
    bytes_in: u64,
    bytes_out: u64,
    messages_in: u32,
    messages_out: u32,
}

/// The parts of a summary the observer computes.
pub struct SummaryParts {
    pub wan: WanSummary,
    pub master: MasterSummary,
    pub propagation: PropagationSummary,
    pub staleness_client_hours: f64,
    pub by_kind: BTreeMap<String, KindSummary>,
    pub sites: Vec<SiteSummary>,
    pub queries: Vec<QuerySummary>,
    pub servers: Vec<ServerSummary>,
    pub rejections: BTreeMap<String, u64>,
    pub platforms: Vec<String>,
    pub changes: ChangeSummary,
    pub client_groups: Vec<ClientGroupSummary>,
    pub links: Vec<LinkSummary>,
}

/// Accumulates a run's measurements.
pub struct Observer {
    start: Time,
    bucket_ns: i64,
    buckets: usize,
    /// The span and index of the bucket [`Observer::bucket`] found last.
    last_bucket: std::cell::Cell<(i64, i64, usize)>,
    /// The span and index of the minute [`Observer::minute`] found last.
    last_minute: std::cell::Cell<(i64, i64, usize)>,
    keep_detail: bool,
    links: usize,

    // Traffic per (link, direction, bucket), at index
    // `(link * 2 + direction) * buckets + bucket`; totals per link and
    // direction, and the WAN's, are their sums, taken at the end.
    link_cells: Vec<TrafficCell>,
    link_dir_lost: Vec<[u64; 2]>,
    link_business: Vec<u64>,
    /// Bytes per (link, direction, minute), spread over serialisation time.
    minutes: usize,
    minute_bytes: Vec<u64>,
    wan: WanSummary,

    master: MasterSummary,
    master_series: Vec<MasterRow>,
    /// Traffic per server node (master and local servers), by node id.
    servers: Vec<MasterSummary>,
    /// Node id of the first client.
    client_base: u32,
    /// Per client, its (site, platform) group: its profile's index.
    client_group: Vec<u32>,
    /// Traffic per client group.
    groups: Vec<MasterSummary>,
    /// Per group: site, platform, clients.
    group_info: Vec<(String, String, u64)>,
    kinds: [KindSummary; MessageKind::ALL.len()],
    /// Only with the detail (else empty): traffic per (kind, bucket), at
    /// `kind * buckets + bucket`.
    kind_cells: Vec<KindCell>,
    /// Only with the detail (else empty): traffic per (node row, bucket),
    /// at `row * buckets + bucket`; the rows are the servers by node id,
    /// then the client groups (see [`Observer::node_row`]).
    node_cells: Vec<NodeCell>,

    // Propagation and staleness.
    policy_index: BTreeMap<Name, usize>,
    policy_platforms: Vec<u64>,
    platforms: Vec<String>,
    client_platform: Vec<u8>,
    /// Clients per platform index.
    platform_clients: Vec<u64>,
    client_site: Vec<u16>,
    changes: Vec<ChangeTrack>,
    proposals: BTreeMap<(NodeId, u64), usize>,
    applied: Vec<u64>,
    master_rev: Vec<u64>,
    stale_bits: Vec<u64>,
    stale_since: Vec<Time>,
    staleness_ns: f64,
    hist: Histogram<u64>,
    rows: Vec<PropagationRow>,

    site_names: Vec<Name>,
    syncs: Vec<(usize, f64)>,
    fetches: Vec<FetchRow>,
    /// (requesting node, request id) → its row in `fetches`, until answered.
    open_fetches: BTreeMap<(u32, u32), usize>,
    sync_count: Vec<u64>,
    fresh: Vec<Fresh>,
    queries: Vec<QuerySummary>,
    asked: Vec<Time>,
    rejections: BTreeMap<String, u64>,
}

impl Observer {
    /// An observer for `sc` run as `plan`.
    pub fn new(
        sc: &Scenario,
        plan: &Plan,
        clients: &[Client],
        profiles: &[std::sync::Arc<ClientProfile>],
        client_profile: &[u32],
        keep_detail: bool,
    ) -> Observer {
        let bucket_ns = i64::try_from(std::time::Duration::from(sc.bucket).as_nanos())
            .unwrap_or(i64::MAX)
            .max(1);
        let span = sc.end().0 - sc.start.0;
        let buckets = (span / bucket_ns + 1) as usize;
        let links = plan.links.len();

        // Every policy the run can know, and every platform, in order.
        let mut policy_index = BTreeMap::new();
        for p in &sc.policies {
            let n = policy_index.len();
            policy_index.entry(Name::new(&p.id)).or_insert(n);
        }
        for c in &sc.changes {
            let n = policy_index.len();
            policy_index.entry(Name::new(&c.policy)).or_insert(n);
        }
        let mut platforms: Vec<String> =
            sc.sites.iter().flat_map(|s| s.clients.keys().cloned()).collect();
        platforms.sort();
        platforms.dedup();
        let platform_of = |name: &str| platforms.iter().position(|p| p == name).unwrap_or(0);
        let client_platform: Vec<u8> = client_profile
            .iter()
            .map(|&p| platform_of(profiles[p as usize].platform.as_str()) as u8)
            .collect();
        debug_assert_eq!(client_platform.len(), clients.len());
        let mut platform_clients = vec![0u64; platforms.len()];
        for &p in &client_platform {
            platform_clients[p as usize] += 1;
        }
        let mut group_info: Vec<(String, String, u64)> =
            profiles.iter().map(|p| (p.site.to_string(), p.platform.to_string(), 0)).collect();
        for &g in client_profile {
            group_info[g as usize].2 += 1;
        }
        let minutes = (span.max(1) as u64).div_ceil(MINUTE_NS as u64) as usize;
        // The per-kind and per-node series are for reports only: a plain
        // run (a million clients, for speed) allocates none of them.
        let (kind_cells, node_cells) = if keep_detail {
            let node_rows = plan.client_base as usize + profiles.len();
            (
                vec![KindCell::default(); MessageKind::ALL.len() * buckets],
                vec![NodeCell::default(); node_rows * buckets],
            )
        } else {
            (Vec::new(), Vec::new())
        };

        let n_policies = policy_index.len();
        let changes = sc
            .changes
            .iter()
            .map(|c| ChangeTrack {
                made: None,
                policy: policy_index[c.policy.as_str()],
                revision: None,
                platforms: 0,
                affected: 0,
                applied: 0,
                deferred: false,
                dropped: false,
            })
            .collect();
        Observer {
            start: sc.start,
            bucket_ns,
            buckets,
            last_bucket: std::cell::Cell::new((0, 0, 0)),
            last_minute: std::cell::Cell::new((0, 0, 0)),
            keep_detail,
            links,
            link_cells: vec![TrafficCell::default(); links * 2 * buckets],
            link_dir_lost: vec![[0; 2]; links],
            link_business: vec![0; links],
            minutes,
            minute_bytes: vec![0; links * 2 * minutes],
            wan: WanSummary::default(),
            master: MasterSummary::default(),
            master_series: vec![MasterRow::default(); buckets],
            servers: vec![MasterSummary::default(); plan.client_base as usize],
            client_base: plan.client_base,
            client_group: client_profile.to_vec(),
            groups: vec![MasterSummary::default(); profiles.len()],
            group_info,
            kinds: Default::default(),
            kind_cells,
            node_cells,
            policy_index,
            policy_platforms: vec![0; n_policies],
            platforms,
            client_platform,
            platform_clients,
            client_site: plan.client_site.clone(),
            changes,
            proposals: BTreeMap::new(),
            applied: vec![0; clients.len() * n_policies],
            master_rev: vec![0; n_policies],
            stale_bits: vec![0; clients.len()],
            stale_since: vec![Time::EPOCH; clients.len()],
            staleness_ns: 0.0,
            hist: Histogram::new_with_bounds(1, MAX_DELAY_MS, 3)
                .unwrap_or_else(|_| unreachable!("constant bounds are valid")),
            rows: Vec::new(),
            site_names: plan.site_names.clone(),
            syncs: Vec::new(),
            fetches: Vec::new(),
            open_fetches: BTreeMap::new(),
            sync_count: vec![0; sc.sites.len()],
            fresh: vec![Fresh { info: sc.start, since: sc.start, area_s2: 0.0 }; sc.sites.len()],
            queries: sc
                .status_queries
                .iter()
                .map(|q| QuerySummary {
                    at: q.at.to_string(),
                    kind: format!("{:?}", q.kind).to_lowercase(),
                    ..Default::default()
                })
                .collect(),
            asked: vec![Time::EPOCH; sc.status_queries.len()],
            rejections: BTreeMap::new(),
        }
    }

    fn bucket(&self, t: Time) -> usize {
        // Most times asked fall in the bucket asked last: no division.
        let (from, to, index) = self.last_bucket.get();
        if from <= t.0 && t.0 < to {
            return index;
        }
        let raw = ((t.0 - self.start.0) / self.bucket_ns).max(0) as usize;
        let index = raw.min(self.buckets - 1);
        if t.0 >= self.start.0 && raw < self.buckets {
            let from = self.start.0 + raw as i64 * self.bucket_ns;
            self.last_bucket.set((from, from + self.bucket_ns, index));
        }
        index
    }

    /// The one-minute slot of `t` since the start (0 before it), with the
    /// slot asked last remembered as [`Observer::bucket`] does.
    fn minute(&self, t: i64) -> usize {
        let (from, to, index) = self.last_minute.get();
        if from <= t && t < to {
            return index;
        }
        let index = ((t - self.start.0).max(0) / MINUTE_NS) as usize;
        if t >= self.start.0 {
            let from = self.start.0 + index as i64 * MINUTE_NS;
            self.last_minute.set((from, from + MINUTE_NS, index));
        }
        index
    }

    /// Traffic crossed `link` in `dir` starting at `at`, taking `busy_ns`
    /// of the link's time: a message (perhaps lost by the link after it was
    /// sent), or (`message` false) the pure ACKs and handshake bytes that
    /// flow back for one, which add bytes but are not messages.
    #[inline]
    pub fn count_link(&mut self, link: usize, dir: Direction, at: Time, t: LinkTraffic) {
        let LinkTraffic { bytes, busy_ns, business, wan, message, lost } = t;
        let d = dir as usize;
        let row = link * 2 + d;
        let b = self.bucket(at);
        let cell = &mut self.link_cells[row * self.buckets + b];
        cell.bytes += bytes;
        cell.messages += u32::from(message);
        if busy_ns > 0 {
            self.add_busy(row, b, at.0, busy_ns);
        }
        self.add_minute_bytes(row, at.0, busy_ns, bytes);
        if lost {
            self.link_dir_lost[link][d] += 1;
        }
        if wan && business {
            self.link_business[link] += bytes;
        }
    }

    /// A message crossed `link` in `dir` starting at `at` and was not
    /// lost: `wire` bytes taking `busy_ns` of the link's time, and
    /// `reverse` bytes flowing back for it (its ACKs, a wake-up's far side
    /// of the handshake), which take no transmitter time and are not
    /// messages. `business`: it started in the business hours of a WAN
    /// link's site. Counts what [`Observer::count_link`] counts for the two,
    /// in one pass: this runs for every message of a run.
    #[allow(clippy::too_many_arguments)]
    #[inline]
    pub fn count_crossing(
        &mut self,
        link: usize,
        dir: Direction,
        at: Time,
        wire: u64,
        busy_ns: u64,
        reverse: u64,
        business: bool,
    ) {
        let row = link * 2 + dir as usize;
        let b = self.bucket(at);
        let cell = &mut self.link_cells[row * self.buckets + b];
        cell.bytes += wire;
        cell.messages += 1;
        if busy_ns > 0 {
            // Most messages end in the bucket they start in.
            let bucket_end = self.start.0 + (b as i64 + 1) * self.bucket_ns;
            if at.0.saturating_add(busy_ns as i64) <= bucket_end {
                cell.busy_ns += busy_ns;
            } else {
                self.add_busy(row, b, at.0, busy_ns);
            }
        }
        self.add_minute_bytes(row, at.0, busy_ns, wire);
        if business {
            self.link_business[link] += wire + reverse;
        }
        if reverse > 0 {
            let back = row ^ 1;
            self.link_cells[back * self.buckets + b].bytes += reverse;
            self.add_minute_bytes(back, at.0, 0, reverse);
        }
    }

    /// Spreads busy time starting at `at` (in bucket `first`) over the
    /// buckets it spans, of direction row `row`.
    fn add_busy(&mut self, row: usize, first: usize, at: i64, busy_ns: u64) {
        let mut from = at;
        let to = at + busy_ns as i64;
        let mut b = first;
        loop {
            let bucket_end = self.start.0 + (b as i64 + 1) * self.bucket_ns;
            let end = to.min(bucket_end).max(from + 1);
            self.link_cells[row * self.buckets + b].busy_ns += (end - from) as u64;
            if b == self.buckets - 1 || end >= to {
                break;
            }
            from = end;
            b = self.bucket(Time(from));
        }
    }

    /// Adds `bytes` to the one-minute buckets of direction row `row`,
    /// spread in proportion over `[at, at + busy_ns)`; with no busy time,
    /// all at `at`. Bytes after the run's last minute are not kept. A known
    /// limit: ACKs and handshake bytes flowing back take no transmitter
    /// time, so they land in one minute and may lift a saturated direction
    /// a little above its share.
    #[inline]
    fn add_minute_bytes(&mut self, row: usize, at: i64, busy_ns: u64, bytes: u64) {
        let base = row * self.minutes;
        let m = self.minute(at);
        if m >= self.minutes {
            return;
        }
        let minute_end = self.start.0 + (m as i64 + 1) * MINUTE_NS;
        let to = at + busy_ns as i64;
        if busy_ns == 0 || to <= minute_end {
            // All in one minute: the common case, a message shorter than
            // the rest of the minute it starts in.
            self.minute_bytes[base + m] += bytes;
            return;
        }
        self.spread_minute_bytes(row, at, busy_ns, bytes);
    }

    /// The rest of [`Observer::add_minute_bytes`]: a message whose
    /// serialisation runs past the end of the minute it starts in.
    fn spread_minute_bytes(&mut self, row: usize, at: i64, busy_ns: u64, bytes: u64) {
        let base = row * self.minutes;
        let to = at + busy_ns as i64;
        let start = self.start.0;
        let (mut from, mut left) = (at, bytes);
        while from < to && left > 0 {
            let m = self.minute(from);
            if m >= self.minutes {
                break;
            }
            let seg_end = to.min(start + (m as i64 + 1) * MINUTE_NS);
            let part = if seg_end == to {
                left
            } else {
                let share = u128::from(bytes) * (seg_end - from) as u128 / busy_ns as u128;
                (share as u64).min(left)
            };
            self.minute_bytes[base + m] += part;
            left -= part;
            from = seg_end;
        }
    }

    /// The highest one-minute utilisation of (`link`, `d`): bytes × 8 over
    /// the line rate times 60 s.
    fn peak_minute(&self, link: usize, d: usize, bandwidth_bps: u64) -> f64 {
        let base = (link * 2 + d) * self.minutes;
        let most = self.minute_bytes[base..base + self.minutes].iter().max().copied().unwrap_or(0);
        most as f64 * 8.0 / (bandwidth_bps.max(1) as f64 * (MINUTE_NS as f64 / 1e9))
    }

    /// A message of `kind` was sent at `at`: `wire` bytes on the wire in
    /// its own direction, `back` bytes in the reverse one, `frame` bytes of
    /// application data. With the detail, its wire bytes also go in the
    /// kind's bucket of `at`.
    #[inline]
    pub fn count_kind(&mut self, at: Time, kind: MessageKind, wire: u64, back: u64, frame: u64) {
        let k = &mut self.kinds[kind as usize];
        k.messages += 1;
        k.bytes += wire;
        k.app_bytes += frame;
        k.reverse_bytes += back;
        if self.keep_detail {
            let b = self.bucket(at);
            let cell = &mut self.kind_cells[kind as usize * self.buckets + b];
            cell.bytes += wire;
            cell.messages = cell.messages.saturating_add(1);
        }
    }

    /// `node` sent a message of `wire` bytes at `at`: counted for the
    /// master, a local server or the node's client group.
    #[inline]
    pub fn count_sent(&mut self, at: Time, node: NodeId, wire: u64) {
        let t = self.node_traffic(node);
        t.bytes_out += wire;
        t.messages_out += 1;
        if self.keep_detail {
            let cell = self.node_cell(node, at);
            cell.bytes_out += wire;
            cell.messages_out = cell.messages_out.saturating_add(1);
        }
        if node.0 == 0 {
            self.master.bytes_out += wire;
            self.master.messages_out += 1;
            let b = self.bucket(at);
            let row = &mut self.master_series[b];
            row.bytes_out += wire;
            row.messages_out += 1;
        }
    }

    /// `node` received a message of `wire` bytes at `at` (it was up).
    #[inline]
    pub fn count_received(&mut self, at: Time, node: NodeId, wire: u64) {
        let t = self.node_traffic(node);
        t.bytes_in += wire;
        t.messages_in += 1;
        if self.keep_detail {
            let cell = self.node_cell(node, at);
            cell.bytes_in += wire;
            cell.messages_in = cell.messages_in.saturating_add(1);
        }
        if node.0 == 0 {
            self.master.bytes_in += wire;
            self.master.messages_in += 1;
            let b = self.bucket(at);
            let row = &mut self.master_series[b];
            row.bytes_in += wire;
            row.messages_in += 1;
        }
    }

    /// Starts loading what counting traffic of `node` a few records ahead
    /// will read (a client's group index); changes nothing.
    #[inline]
    pub fn prefetch_node(&self, node: NodeId) {
        if let Some(c) = node.0.checked_sub(self.client_base)
            && let Some(g) = self.client_group.get(c as usize)
        {
            crate::prefetch::read(g);
        }
    }

    /// The traffic record of a server, or of a client's group.
    #[inline]
    fn node_traffic(&mut self, node: NodeId) -> &mut MasterSummary {
        match node.0.checked_sub(self.client_base) {
            None => &mut self.servers[node.0 as usize],
            Some(c) => &mut self.groups[self.client_group[c as usize] as usize],
        }
    }

    /// The row of `node` in the per-node series: a server's node id, or
    /// after the servers, its client group's index.
    #[inline]
    fn node_row(&self, node: NodeId) -> usize {
        match node.0.checked_sub(self.client_base) {
            None => node.0 as usize,
            Some(c) => self.client_base as usize + self.client_group[c as usize] as usize,
        }
    }

    /// The per-node series cell of `node` in the bucket of `at`; only with
    /// the detail.
    #[inline]
    fn node_cell(&mut self, node: NodeId, at: Time) -> &mut NodeCell {
        let i = self.node_row(node) * self.buckets + self.bucket(at);
        &mut self.node_cells[i]
    }

    /// The master received information about `site` at `now` (flat: a
    /// client's report arrived).
    pub fn site_heard(&mut self, now: Time, site: &Name) {
        if let Some(i) = self.site_names.iter().position(|s| s == site) {
            self.advance_fresh(i, now, now);
        }
    }

    /// [`Observer::site_heard`] for the site at `site` of the plan's
    /// site list.
    #[inline]
    pub fn site_heard_at(&mut self, now: Time, site: usize) {
        if site < self.fresh.len() {
            self.advance_fresh(site, now, now);
        }
    }

    /// Moves a site's freshness clock to `now`, integrating the age of the
    /// master's view since the last step; `info` is the time the newest
    /// information describes.
    fn advance_fresh(&mut self, site: usize, now: Time, info: Time) {
        let f = &mut self.fresh[site];
        let a = (f.since.0 - f.info.0) as f64 / 1e9;
        let b = (now.0 - f.info.0) as f64 / 1e9;
        f.area_s2 += (now.0 - f.since.0) as f64 / 1e9 * (a + b) / 2.0;
        f.since = now;
        f.info = f.info.max(info);
    }

    /// A policy exists with `platforms` from the start (an initial policy).
    pub fn policy_defined(&mut self, policy: &str, platforms: &[String]) {
        if let Some(&p) = self.policy_index.get(policy) {
            self.policy_platforms[p] = self.platform_mask(platforms);
        }
    }

    fn platform_mask(&self, platforms: &[String]) -> u64 {
        platforms
            .iter()
            .filter_map(|name| self.platforms.iter().position(|p| p == name))
            .fold(0u64, |m, i| m | 1u64 << (i % MAX_TRACKED))
    }

    /// A change is due at `now`, the scenario's time for it, whether or
    /// not its server can take it now; `platforms` is its new platform
    /// list, if it gives one. Every client of an affected platform counts
    /// from here: one that never applies it counts in `never_applied`.
    pub fn change_made(&mut self, change: usize, now: Time, platforms: Option<&[String]>) {
        let p = self.changes[change].policy;
        if let Some(list) = platforms {
            self.policy_platforms[p] = self.platform_mask(list);
        }
        let mask = self.policy_platforms[p];
        let affected = (0..self.platform_clients.len())
            .filter(|&i| mask & (1u64 << (i % MAX_TRACKED)) != 0)
            .map(|i| self.platform_clients[i])
            .sum();
        let ch = &mut self.changes[change];
        ch.made = Some(now);
        ch.platforms = mask;
        ch.affected = affected;
    }

    /// A change could not be made at its time (its local server was down)
    /// and waits for the server to come back.
    pub fn change_deferred(&mut self, change: usize) {
        self.changes[change].deferred = true;
    }

    /// A deferred change was never made: its server stayed down.
    pub fn change_dropped(&mut self, change: usize) {
        self.changes[change].dropped = true;
    }

    /// The proposal id under which `origin` makes `change`.
    pub fn proposal_origin(&mut self, origin: NodeId, proposal: u64, change: usize) {
        self.proposals.insert((origin, proposal), change);
    }

    /// A message between servers was delivered: a local server's policy
    /// request to its parent, or the parent's answer, becomes a row of
    /// [`RunDetail::fetches`]. Only kept with the detail.
    pub fn server_message(
        &mut self,
        now: Time,
        from: NodeId,
        to: NodeId,
        msg: &Message,
        wire: u64,
        plan: &Plan,
    ) {
        let is_local = |n: NodeId| n.0 != 0 && n.0 < plan.client_base;
        if !self.keep_detail {
            return;
        }
        let secs = now.0 as f64 / 1e9;
        match msg {
            Message::Sync { req, .. } | Message::Check { req, .. } if is_local(from) => {
                let kind = match msg {
                    Message::Sync { .. } => FetchKind::Sync,
                    Message::Check { have, .. } if have.0 == 0 => FetchKind::Initial,
                    _ => FetchKind::Check,
                };
                self.open_fetches.insert((from.0, *req), self.fetches.len());
                self.fetches.push(FetchRow {
                    site: plan.site_of(from),
                    kind,
                    at_unix: secs,
                    answered_unix: None,
                    reply_bytes: 0,
                    revisions: 0,
                    reply_in_business_hours: false,
                });
            }
            Message::Policies { req, changes, .. } if is_local(to) => {
                let Some(i) = self.open_fetches.remove(&(to.0, *req)) else { return };
                let row = &mut self.fetches[i];
                let business = plan.wan_link[row.site].map(|l| plan.business[l].contains(now));
                row.answered_unix = Some(secs);
                row.reply_bytes = wire;
                row.revisions = u32::try_from(changes.policies().len()).unwrap_or(u32::MAX);
                row.reply_in_business_hours = business.unwrap_or(false);
            }
            _ => {}
        }
    }

    /// A status query was asked.
    pub fn query_asked(&mut self, query: usize, now: Time) {
        self.asked[query] = now;
    }

    /// Records one observation of `node` (`client` is its client index).
    pub fn record(
        &mut self,
        now: Time,
        node: NodeId,
        client: Option<u32>,
        o: Observation,
        plan: &Plan,
    ) {
        match o {
            Observation::RevisionAssigned { policy, revision, origin, proposal, .. } => {
                self.assigned(now, &policy, revision.0, origin, proposal);
            }
            Observation::Applied { policy, revision } => {
                if let Some(c) = client {
                    self.applied(now, c as usize, &policy, revision.0);
                }
            }
            Observation::SyncStarted { attempt: 1 } => {
                let site = plan.site_of(node);
                self.sync_count[site] += 1;
                if self.keep_detail {
                    self.syncs.push((site, now.0 as f64 / 1e9));
                }
            }
            Observation::StatsStored { sites, .. } if node.0 == 0 => {
                for (site, as_of) in sites {
                    if let Some(i) = self.site_names.iter().position(|s| *s == site) {
                        self.advance_fresh(i, now, as_of);
                    }
                }
            }
            Observation::StatusAnswered { query, answer } => {
                let Some(q) = self.queries.get_mut(query as usize) else { return };
                let asked = self.asked[query as usize];
                q.answered_after_seconds = Some(now.saturating_since(asked).as_secs_f64());
                q.sites_answered = answer.sites.iter().map(|s| s.site.to_string()).collect();
                q.sites_missing = answer.missing.iter().map(|s| s.to_string()).collect();
                q.clients_counted = answer.sites.iter().map(|s| s.clients()).sum::<u64>()
                    + u64::from(answer.client.is_some());
                q.error = answer.error.map(|e| format!("{e:?}"));
            }
            Observation::Rejected { reason, .. } => {
                *self.rejections.entry(rejection_key(&reason)).or_default() += 1;
            }
            _ => {}
        }
    }

    /// The master gave a revision: for a scenario change, every client of
    /// an affected platform still on an older revision becomes stale.
    fn assigned(&mut self, now: Time, policy: &Name, revision: u64, origin: NodeId, proposal: u64) {
        let Some(&p) = self.policy_index.get(policy) else { return };
        self.master_rev[p] = self.master_rev[p].max(revision);
        let Some(&c) = self.proposals.get(&(origin, proposal)) else { return };
        let mask = self.changes[c].platforms;
        self.changes[c].revision = Some(revision);

        let n = self.policy_platforms.len();
        let bit = 1u64 << (p % MAX_TRACKED);
        for client in 0..self.stale_bits.len() {
            if mask & (1u64 << (self.client_platform[client] as usize % MAX_TRACKED)) == 0 {
                continue;
            }
            if self.applied[client * n + p] < revision && self.stale_bits[client] & bit == 0 {
                if self.stale_bits[client] == 0 {
                    self.stale_since[client] = now;
                }
                self.stale_bits[client] |= bit;
            }
        }
    }

    /// A client applied a revision: it ends the propagation of every change
    /// up to that revision, and perhaps its staleness.
    fn applied(&mut self, now: Time, client: usize, policy: &Name, revision: u64) {
        let Some(&p) = self.policy_index.get(policy) else { return };
        let n = self.policy_platforms.len();
        let slot = client * n + p;
        let prev = self.applied[slot];
        if revision <= prev {
            return;
        }
        self.applied[slot] = revision;

        let platform = self.client_platform[client];
        let bit = 1u64 << (platform as usize % MAX_TRACKED);
        for (i, ch) in self.changes.iter_mut().enumerate() {
            let (Some(rev), Some(made)) = (ch.revision, ch.made) else { continue };
            if ch.policy == p && rev > prev && rev <= revision && ch.platforms & bit != 0 {
                let delay_ms = now.saturating_since(made).as_millis() as u64;
                let _ = self.hist.record(delay_ms.clamp(1, MAX_DELAY_MS));
                ch.applied += 1;
                if self.keep_detail {
                    self.rows.push(PropagationRow {
                        change: i as u16,
                        site: self.client_site[client],
                        platform,
                        delay_ms,
                    });
                }
            }
        }

        let pbit = 1u64 << (p % MAX_TRACKED);
        if self.stale_bits[client] & pbit != 0 && revision >= self.master_rev[p] {
            self.stale_bits[client] &= !pbit;
            if self.stale_bits[client] == 0 {
                let since = self.stale_since[client];
                self.staleness_ns += now.saturating_since(since).as_nanos() as f64;
            }
        }
    }

    /// The rows of the per-node series, named as the JSON's totals name
    /// them: the master, each local server by its site, then each client
    /// group as `<site>/<platform>`.
    fn node_infos(&self, plan: &Plan, sc: &Scenario) -> Vec<NodeInfo> {
        let servers = (0..self.servers.len()).map(|i| {
            let site = sc.sites[plan.site_of(NodeId(i as u32))].name.clone();
            let (name, role) =
                if i == 0 { ("master".to_string(), "master") } else { (site.clone(), "local") };
            NodeInfo { name, role: role.to_string(), site, platform: String::new() }
        });
        let groups = self.group_info.iter().map(|(site, platform, _)| NodeInfo {
            name: format!("{site}/{platform}"),
            role: "clients".to_string(),
            site: site.clone(),
            platform: platform.clone(),
        });
        servers.chain(groups).collect()
    }

    /// Closes the books at `end`.
    pub fn finish(mut self, end: Time, plan: &Plan, sc: &Scenario) -> (SummaryParts, RunDetail) {
        // Clients still stale, and every site's freshness, run to the end.
        for client in 0..self.stale_bits.len() {
            if self.stale_bits[client] != 0 {
                let since = self.stale_since[client];
                self.staleness_ns += end.saturating_since(since).as_nanos() as f64;
            }
        }
        for site in 0..self.fresh.len() {
            let info = self.fresh[site].info;
            self.advance_fresh(site, end, info);
        }
        let run_s = (end.0 - self.start.0).max(1) as f64 / 1e9;

        // Utilisation per link: the busiest minute of either direction.
        let peak = |link: usize| -> f64 {
            let bps = plan.links[link].config.bandwidth_bps;
            self.peak_minute(link, 0, bps).max(self.peak_minute(link, 1, bps))
        };
        // Totals per link and direction, and the WAN's, from the buckets.
        let mut dir_bytes = vec![[0u64; 2]; self.links];
        let mut dir_msgs = vec![[0u64; 2]; self.links];
        for (row, cells) in self.link_cells.chunks(self.buckets).enumerate() {
            let (link, d) = (row / 2, row % 2);
            dir_bytes[link][d] = cells.iter().map(|c| c.bytes).sum();
            dir_msgs[link][d] = cells.iter().map(|c| u64::from(c.messages)).sum();
        }
        let mut wan = self.wan.clone();
        for l in (0..self.links).filter(|&l| plan.links[l].wan) {
            wan.bytes += dir_bytes[l][0] + dir_bytes[l][1];
            wan.messages += dir_msgs[l][0] + dir_msgs[l][1];
            wan.business_hours_bytes += self.link_business[l];
        }
        wan.peak_utilization =
            (0..self.links).filter(|&l| plan.links[l].wan).map(peak).fold(0.0, f64::max);

        let never: u64 = self.changes.iter().map(|c| c.affected.saturating_sub(c.applied)).sum();
        let q = |x: f64| self.hist.value_at_quantile(x) as f64 / 1000.0;
        let propagation = if self.hist.is_empty() {
            PropagationSummary { never_applied: never, ..Default::default() }
        } else {
            PropagationSummary {
                count: self.hist.len(),
                never_applied: never,
                p50: q(0.5),
                p90: q(0.9),
                p99: q(0.99),
                max: self.hist.max() as f64 / 1000.0,
            }
        };

        let by_kind = MessageKind::ALL
            .iter()
            .map(|k| (k.as_str().to_string(), self.kinds[*k as usize].clone()))
            .collect();

        let sites = sc
            .sites
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let (up, down, business, util) = match plan.wan_link[i] {
                    Some(l) => {
                        let [d, u] = dir_bytes[l];
                        (u, d, self.link_business[l], peak(l))
                    }
                    None => (0, 0, 0, 0.0),
                };
                let f = &self.fresh[i];
                // A site without clients has nothing for the master to know.
                let has_clients = s.client_count() > 0;
                let age_mean = has_clients.then(|| f.area_s2 / run_s / 3600.0);
                let age_end = has_clients.then(|| (end.0 - f.info.0) as f64 / 1e9 / 3600.0);
                SiteSummary {
                    site: s.name.clone(),
                    timezone: s.timezone_name.clone(),
                    clients: s.client_count(),
                    wan_bytes_up: up,
                    wan_bytes_down: down,
                    business_hours_bytes: business,
                    peak_utilization: util,
                    syncs: self.sync_count[i],
                    master_view_age_hours_mean: age_mean,
                    master_view_age_hours_end: age_end,
                }
            })
            .collect();

        let mut timeseries = Vec::new();
        for link in 0..self.links {
            for d in 0..2 {
                let base = (link * 2 + d) * self.buckets;
                for b in 0..self.buckets {
                    let cell = self.link_cells[base + b];
                    if cell.bytes > 0 {
                        timeseries.push(SeriesRow {
                            bucket: b as u32,
                            link: link as u16,
                            dir: d as u8,
                            bytes: cell.bytes,
                            messages: u64::from(cell.messages),
                            busy_seconds: cell.busy_ns as f64 / 1e9,
                        });
                    }
                }
            }
        }
        // Per kind and per node, non-empty buckets only, as `timeseries`.
        let mut kind_series = Vec::new();
        for (k, cells) in self.kind_cells.chunks(self.buckets).enumerate() {
            for (b, cell) in cells.iter().enumerate().filter(|(_, c)| c.messages > 0) {
                kind_series.push(KindSeriesRow {
                    bucket: b as u32,
                    kind: MessageKind::ALL[k],
                    bytes: cell.bytes,
                    messages: u64::from(cell.messages),
                });
            }
        }
        let mut node_series = Vec::new();
        for (node, cells) in self.node_cells.chunks(self.buckets).enumerate() {
            for (b, c) in cells.iter().enumerate() {
                if c.messages_in > 0 || c.messages_out > 0 {
                    node_series.push(NodeSeriesRow {
                        bucket: b as u32,
                        node: node as u32,
                        bytes_in: c.bytes_in,
                        bytes_out: c.bytes_out,
                        messages_in: u64::from(c.messages_in),
                        messages_out: u64::from(c.messages_out),
                    });
                }
            }
        }
        // Freed before the rest of the detail is built: at a million
        // clients the cells are tens of MB.
        self.kind_cells = Vec::new();
        self.node_cells = Vec::new();
        let nodes = if self.keep_detail { self.node_infos(plan, sc) } else { Vec::new() };
        let detail = RunDetail {
            bucket_seconds: (self.bucket_ns / 1_000_000_000) as u64,
            start_unix: self.start.as_secs(),
            links: plan
                .links
                .iter()
                .map(|l| crate::output::LinkInfo {
                    name: link_name(l, sc),
                    site: l.site,
                    wan: l.wan,
                    bandwidth_bps: l.config.bandwidth_bps,
                })
                .collect(),
            timeseries,
            kind_series,
            nodes,
            node_series,
            master_series: std::mem::take(&mut self.master_series),
            propagation: std::mem::take(&mut self.rows),
            changes: sc
                .changes
                .iter()
                .map(|c| format!("{} {} at {}", c.policy, c.origin, c.at))
                .collect(),
            syncs: std::mem::take(&mut self.syncs),
            fetches: std::mem::take(&mut self.fetches),
        };
        let parts = SummaryParts {
            wan,
            master: self.master.clone(),
            propagation,
            staleness_client_hours: self.staleness_ns / 1e9 / 3600.0,
            by_kind,
            sites,
            queries: self.queries.clone(),
            servers: self
                .servers
                .iter()
                .enumerate()
                .map(|(i, t)| ServerSummary {
                    node: i as u32,
                    role: if i == 0 { "master" } else { "local" }.to_string(),
                    site: sc.sites[plan.site_of(NodeId(i as u32))].name.clone(),
                    bytes_in: t.bytes_in,
                    bytes_out: t.bytes_out,
                    messages_in: t.messages_in,
                    messages_out: t.messages_out,
                })
                .collect(),
            rejections: self.rejections.clone(),
            platforms: self.platforms.clone(),
            changes: ChangeSummary {
                total: self.changes.len() as u64,
                deferred: self.changes.iter().filter(|c| c.deferred).count() as u64,
                dropped: self.changes.iter().filter(|c| c.dropped).count() as u64,
                unassigned: self.changes.iter().filter(|c| c.revision.is_none()).count() as u64,
            },
            client_groups: self
                .groups
                .iter()
                .zip(&self.group_info)
                .map(|(t, (site, platform, clients))| ClientGroupSummary {
                    site: site.clone(),
                    platform: platform.clone(),
                    clients: *clients,
                    bytes_in: t.bytes_in,
                    bytes_out: t.bytes_out,
                    messages_in: t.messages_in,
                    messages_out: t.messages_out,
                })
                .collect(),
            links: plan
                .links
                .iter()
                .enumerate()
                .map(|(l, info)| {
                    let dir = |d: usize| DirectionSummary {
                        bytes: dir_bytes[l][d],
                        messages: dir_msgs[l][d],
                        lost_messages: self.link_dir_lost[l][d],
                        peak_utilization: self.peak_minute(l, d, info.config.bandwidth_bps),
                    };
                    LinkSummary {
                        name: link_name(info, sc),
                        site: sc.sites[info.site].name.clone(),
                        wan: info.wan,
                        bandwidth_bps: info.config.bandwidth_bps,
                        down: dir(Direction::Down.index()),
                        up: dir(Direction::Up.index()),
                    }
                })
                .collect(),
        };
        (parts, detail)
    }
}

/// `wan:<site>` or `lan:<site>`.
fn link_name(l: &crate::build::LinkPlan, sc: &Scenario) -> String {
    format!("{}:{}", if l.wan { "wan" } else { "lan" }, sc.sites[l.site].name)
}

/// A short, stable name for a rejection reason.
fn rejection_key(r: &Rejection) -> String {
    match r {
        Rejection::UnknownPeer => "unknown_peer".into(),
        Rejection::WrongSite => "wrong_site".into(),
        Rejection::RevisionFromFuture { .. } => "revision_from_future".into(),
        Rejection::UnknownPolicy(_) => "unknown_policy".into(),
        Rejection::Integrity(_) => "integrity".into(),
        Rejection::RefusedByPeer(code) => format!("refused_by_peer:{code:?}"),
        Rejection::Unexpected => "unexpected".into(),
        _ => "other".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// One site below the master on a 10 Mbit/s line, metered in one-hour
    /// buckets.
    const ONE_LINK: &str = r#"
name = "one-link"
seed = 1
start = "2026-03-02T00:00:00Z"
duration = "1d"
bucket = "1h"

[master]
site = "hq"

[client]
poll = "1h"
splay = "30m"
status_every = "1h"
inventory = "1KiB"

[local]
sync_window = "02:00-04:00"

[[site]]
name = "hq"
timezone = "UTC"

[[site]]
name = "a"
parent = "hq"
timezone = "UTC"
wan = { bandwidth = "10Mbit/s", latency = "10ms" }
"#;

    fn traffic(bytes: u64, busy_s: u64) -> LinkTraffic {
        let busy = Duration::from_secs(busy_s);
        let busy_ns = busy.as_nanos() as u64;
        LinkTraffic { bytes, busy_ns, business: false, wan: true, message: true, lost: false }
    }

    /// Peak utilisation is bytes × 8 over line rate × 60 s in the busiest
    /// minute, whatever the metering bucket and however long the
    /// transmitter was busy (background traffic slows it).
    #[test]
    fn peak_utilization_is_the_busiest_minute_of_bytes() {
        let sc = Scenario::from_str_named(ONE_LINK, "one-link.toml").unwrap();
        let plan = crate::build::plan(&sc, crate::scenario::Strategy::Tiered);
        let wan = plan.wan_link[1].unwrap();
        let mut obs = Observer::new(&sc, &plan, &[], &[], &[], false);
        let at = |s: u64| sc.start + Duration::from_secs(s);

        // 60 Mbit over a minute that straddles two: 30 Mbit in each, 0.05.
        obs.count_link(wan, Direction::Up, at(30), traffic(7_500_000, 60));
        // 12 Mbit sent slowly over 40 s of one minute (the transmitter had
        // little left): busy most of the minute, yet 0.02 of the line.
        obs.count_link(wan, Direction::Down, at(600), traffic(1_500_000, 40));
        let (parts, _) = obs.finish(sc.end(), &plan, &sc);
        assert!((parts.wan.peak_utilization - 0.05).abs() < 1e-9, "{}", parts.wan.peak_utilization);
        let link = &parts.links[wan];
        assert_eq!(link.name, "wan:a");
        assert!((link.up.peak_utilization - 0.05).abs() < 1e-9);
        assert!((link.down.peak_utilization - 0.02).abs() < 1e-9);
        assert_eq!((link.up.bytes, link.up.messages), (7_500_000, 1));
        assert!((parts.sites[1].peak_utilization - 0.05).abs() < 1e-9);

        // 120 Mbit within one minute: 0.2, and the peak.
        let mut obs = Observer::new(&sc, &plan, &[], &[], &[], false);
        obs.count_link(wan, Direction::Up, at(30), traffic(7_500_000, 60));
        obs.count_link(wan, Direction::Up, at(3600), traffic(15_000_000, 30));
        let (parts, _) = obs.finish(sc.end(), &plan, &sc);
        assert!((parts.wan.peak_utilization - 0.2).abs() < 1e-9, "{}", parts.wan.peak_utilization);
    }

    /// The per-kind and per-node series take no memory without the
    /// detail; with it, a message counts in the bucket of its time.
    #[test]
    fn kind_and_node_cells_exist_only_with_the_detail() {
        let sc = Scenario::from_str_named(ONE_LINK, "one-link.toml").unwrap();
        let plan = crate::build::plan(&sc, crate::scenario::Strategy::Tiered);
        let at = |s: u64| sc.start + Duration::from_secs(s);
        let count = |obs: &mut Observer| {
            obs.count_kind(at(10), MessageKind::Sync, 300, 40, 200);
            obs.count_sent(at(10), NodeId(0), 300);
            obs.count_received(at(7200), NodeId(0), 300);
        };

        let mut plain = Observer::new(&sc, &plan, &[], &[], &[], false);
        assert_eq!((plain.kind_cells.capacity(), plain.node_cells.capacity()), (0, 0));
        count(&mut plain);
        let (parts, detail) = plain.finish(sc.end(), &plan, &sc);
        assert_eq!(parts.by_kind["sync"].bytes, 300);
        assert!(detail.kind_series.is_empty() && detail.node_series.is_empty());
        assert!(detail.nodes.is_empty());

        let mut kept = Observer::new(&sc, &plan, &[], &[], &[], true);
        assert_eq!(kept.kind_cells.len(), MessageKind::ALL.len() * 25, "a day of hours, and one");
        count(&mut kept);
        let (_, detail) = kept.finish(sc.end(), &plan, &sc);
        let kind = &detail.kind_series[..];
        assert_eq!(kind.len(), 1);
        assert_eq!(
            (kind[0].bucket, kind[0].kind, kind[0].bytes, kind[0].messages),
            (0, MessageKind::Sync, 300, 1)
        );
        let names: Vec<&str> = detail.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["master"], "site a has no clients: no local server");
        let rows: Vec<_> = detail
            .node_series
            .iter()
            .map(|r| (r.node, r.bucket, r.bytes_in, r.bytes_out, r.messages_in, r.messages_out))
            .collect();
        assert_eq!(rows, [(0, 0, 0, 300, 0, 1), (0, 2, 300, 0, 1, 0)]);
    }

    /// Bytes split across minutes add up to the bytes sent, to the byte.
    #[test]
    fn minute_spreading_keeps_every_byte() {
        let sc = Scenario::from_str_named(ONE_LINK, "one-link.toml").unwrap();
        let plan = crate::build::plan(&sc, crate::scenario::Strategy::Tiered);
        let mut obs = Observer::new(&sc, &plan, &[], &[], &[], false);
        let start = sc.start + Duration::from_millis(59_999);
        let busy = Duration::from_millis(130_001);
        obs.add_minute_bytes(2 * 2 + 1, start.0, busy.as_nanos() as u64, 1_000_003);
        let base = (2 * 2 + 1) * obs.minutes;
        let kept: u64 = obs.minute_bytes[base..base + 4].iter().sum();
        assert_eq!(kept, 1_000_003);
        assert!(obs.minute_bytes[base..base + 4].iter().all(|&b| b > 0));
    }
}
