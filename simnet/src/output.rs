//! What a run produces: the summary printed as JSON by `tiersync run
//! --json`, and the detail the report writer draws from.

use std::collections::BTreeMap;

use serde::Serialize;
use tiersync_engine::MessageKind;

use crate::transport::TransportModel;

/// The summary of one run: every field but `wall_seconds` depends only on
/// the scenario, the strategy and the seed.
#[derive(Clone, Debug, Serialize)]
pub struct RunSummary {
    /// Scenario name.
    pub scenario: String,
    /// `tiered`, `flat` or `flat-conditional`.
    pub strategy: String,
    /// The seed the run used.
    pub seed: u64,
    /// SHA-256 (first 16 bytes, hex) over every delivered message's time,
    /// sender, receiver, kind and length: equal hashes, equal runs.
    pub trace_hash: String,
    /// Simulated time covered, seconds.
    pub simulated_seconds: f64,
    /// Wall-clock time the run took, seconds: the only field that varies.
    pub wall_seconds: f64,
    /// Events processed (deliveries, timers, scenario actions).
    pub events: u64,
    /// Messages delivered to a node.
    pub delivered_messages: u64,
    /// WAN totals over every WAN link and direction.
    pub wan: WanSummary,
    /// The master's own traffic.
    pub master: MasterSummary,
    /// Policy propagation delay over every (change, affected client) pair.
    pub propagation_seconds: PropagationSummary,
    /// Client-hours spent running a policy revision older than the newest
    /// one for the client, counted from each change's assignment: the
    /// moment the master gives it a revision, not the scenario's `at`, so
    /// for a change made at a local server the time before the master
    /// accepted it is left out (propagation delay counts it).
    pub staleness_client_hours: f64,
    /// Client counts.
    pub clients: ClientSummary,
    /// Messages and bytes per message kind (bytes on the wire, overhead
    /// included, counted once per message; `app_bytes` is frame bytes).
    pub by_kind: BTreeMap<String, KindSummary>,
    /// Per server (the master, then each local server): its traffic.
    pub servers: Vec<ServerSummary>,
    /// Per site: WAN bytes of its link, business-hours share, syncs, and
    /// the freshness of the master's view of it.
    pub sites: Vec<SiteSummary>,
    /// Answers to the scenario's status queries.
    pub status_queries: Vec<QuerySummary>,
    /// Messages lost on links (loss, partitions), and to nodes that were
    /// down.
    pub lost_messages: u64,
    /// What became of the scenario's `[[change]]`s: made late or never
    /// because their local server was down, and never given a revision.
    pub changes: ChangeSummary,
    /// Per (site, platform) group of clients, in site then platform order:
    /// the clients' traffic added up.
    pub client_groups: Vec<ClientGroupSummary>,
    /// Per link (each site's LAN, then its WAN link to the parent), both
    /// directions' totals.
    pub links: Vec<LinkSummary>,
    /// Input the nodes rejected (by reason), e.g. integrity failures.
    pub rejections: BTreeMap<String, u64>,
    /// How frame bytes became wire bytes.
    pub transport_model: TransportModel,
}

/// WAN totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct WanSummary {
    /// Bytes on the wire, a message counted once per WAN link it crosses.
    pub bytes: u64,
    /// Messages, counted like bytes.
    pub messages: u64,
    /// Bytes sent while the site at the child end of the link was in its
    /// local business hours.
    pub business_hours_bytes: u64,
    /// Highest share of a WAN link's capacity used by this strategy's own
    /// traffic in any one-minute bucket, 0 to 1: bytes × 8 ÷ (line rate ×
    /// 60 s), over every WAN link and direction, whatever the scenario's
    /// `bucket`. A message's bytes are spread over the time it takes to
    /// serialise, so a long transfer fills the minutes it spans.
    pub peak_utilization: f64,
}

/// What became of the scenario's changes.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ChangeSummary {
    /// `[[change]]` entries in the scenario.
    pub total: u64,
    /// Changes whose origin local server was down at their time: the
    /// operator makes them again once it is back, so they start late
    /// (their propagation delay still counts from the scenario's time).
    pub deferred: u64,
    /// Changes whose origin local server was still down at the end: never
    /// made. Their affected clients count in `never_applied`.
    pub dropped: u64,
    /// Changes that had no revision from the master at the end (dropped
    /// ones included).
    pub unassigned: u64,
}

/// The traffic of one group of clients: one site, one platform.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientGroupSummary {
    /// Site name.
    pub site: String,
    /// Platform name.
    pub platform: String,
    /// Clients in the group.
    pub clients: u64,
    /// Bytes received (on the wire, in the message's direction).
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
}

/// One link's totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LinkSummary {
    /// `wan:<site>` (the site's link to its parent) or `lan:<site>`.
    pub name: String,
    /// The site it belongs to (a WAN link: its child end).
    pub site: String,
    /// Whether it is a WAN link.
    pub wan: bool,
    /// Line rate of each direction, bits per second.
    pub bandwidth_bps: u64,
    /// From the parent (on a LAN: from a server to a node it serves).
    pub down: DirectionSummary,
    /// Towards the parent (on a LAN: towards the server).
    pub up: DirectionSummary,
}

/// One direction of a link.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DirectionSummary {
    /// Bytes sent onto it: messages (lost ones included) and the ACKs and
    /// handshake bytes flowing back for messages the other way.
    pub bytes: u64,
    /// Messages sent onto it, lost ones included.
    pub messages: u64,
    /// Of those, messages it lost (loss draw); messages stopped by a
    /// partition never got onto it and are not counted here.
    pub lost_messages: u64,
    /// Highest share of the line rate used in any one-minute bucket.
    pub peak_utilization: f64,
}

/// The master's traffic.
#[derive(Clone, Debug, Default, Serialize)]
pub struct MasterSummary {
    /// Bytes received, on the wire: messages that reached it while up.
    pub bytes_in: u64,
    /// Bytes sent, on the wire, lost ones included.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
}

/// Propagation delay percentiles, seconds.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PropagationSummary {
    /// (change, client) pairs that applied.
    pub count: u64,
    /// (change, client) pairs that had not applied when the run ended.
    pub never_applied: u64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Largest.
    pub max: f64,
}

/// Client counts.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ClientSummary {
    /// Clients simulated.
    pub total: u64,
    /// Clients switched on when the run ended.
    pub online_at_end: u64,
    /// Clients whose statistics the master holds at the end (directly, or
    /// in the consolidated uploads of the local servers).
    pub reporting_at_master: u64,
    /// Clients enforcing, at the end, exactly the effective policies the
    /// master's final policy set derives for their site and platform.
    pub up_to_date_at_end: u64,
}

/// Traffic of one message kind.
#[derive(Clone, Debug, Default, Serialize)]
pub struct KindSummary {
    /// Messages sent.
    pub messages: u64,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Frame bytes (the engine's encoded length).
    pub app_bytes: u64,
    /// Bytes each message causes in the reverse direction, counted once
    /// per message like `bytes`: pure ACKs, and for a message on a
    /// connection of its own the receiver's side of setup and teardown.
    pub reverse_bytes: u64,
}

/// One server's traffic, bytes on the wire.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ServerSummary {
    /// Node id.
    pub node: u32,
    /// `master` or `local`.
    pub role: String,
    /// Its site.
    pub site: String,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
}

/// One site's totals.
#[derive(Clone, Debug, Default, Serialize)]
pub struct SiteSummary {
    /// Site name.
    pub site: String,
    /// IANA time zone.
    pub timezone: String,
    /// Clients at the site.
    pub clients: u64,
    /// Bytes on the site's WAN link towards its parent (0 for the root).
    pub wan_bytes_up: u64,
    /// Bytes on the site's WAN link from its parent.
    pub wan_bytes_down: u64,
    /// Of those, bytes during the site's business hours.
    pub business_hours_bytes: u64,
    /// Highest utilisation of the site's WAN link in one minute, either
    /// direction, 0 to 1, measured as `wan.peak_utilization` is.
    pub peak_utilization: f64,
    /// Scheduled synchronisations its local server started.
    pub syncs: u64,
    /// Mean age of the master's newest information about the site, hours
    /// (`null` for a site without clients).
    pub master_view_age_hours_mean: Option<f64>,
    /// Age of it at the end of the run, hours.
    pub master_view_age_hours_end: Option<f64>,
}

/// The answer to one `[[status_query]]`.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QuerySummary {
    /// When it was asked.
    pub at: String,
    /// `current` or `historical`.
    pub kind: String,
    /// When it was answered, seconds after it was asked.
    pub answered_after_seconds: Option<f64>,
    /// Sites in the answer.
    pub sites_answered: Vec<String>,
    /// Sites that did not answer in time.
    pub sites_missing: Vec<String>,
    /// Clients counted in the answer.
    pub clients_counted: u64,
    /// An error, for a drill-down that could not be served.
    pub error: Option<String>,
}

/// The detail behind a summary, for reports and CSV files.
#[derive(Clone, Debug, Default)]
pub struct RunDetail {
    /// Width of a time bucket, seconds.
    pub bucket_seconds: u64,
    /// Start of the run, Unix seconds.
    pub start_unix: i64,
    /// Link names, by link id (`wan:tokyo`, `lan:tokyo`).
    pub links: Vec<LinkInfo>,
    /// Per bucket, link and direction: bytes and messages (only non-empty
    /// rows).
    pub timeseries: Vec<SeriesRow>,
    /// Per message kind and bucket: wire bytes and messages sent, summing
    /// to `by_kind` (only non-empty rows, kind by kind; empty without
    /// [`crate::world::RunOptions::keep_detail`]).
    pub kind_series: Vec<KindSeriesRow>,
    /// The nodes of `node_series`, by its `node` index: the master, the
    /// local servers, then the client groups (empty without the detail).
    pub nodes: Vec<NodeInfo>,
    /// Per node and bucket: bytes and messages in and out, summing to
    /// `servers` and `client_groups` (only non-empty rows, node by node;
    /// empty without the detail).
    pub node_series: Vec<NodeSeriesRow>,
    /// Per bucket: master bytes and messages in and out.
    pub master_series: Vec<MasterRow>,
    /// Every (change, client) delay.
    pub propagation: Vec<PropagationRow>,
    /// Change descriptions, by change index.
    pub changes: Vec<String>,
    /// Every scheduled synchronisation started: site index, Unix seconds.
    pub syncs: Vec<(usize, f64)>,
    /// Every policy request a local server's parent received (syncs,
    /// checks between syncs, the first fetch of a server holding nothing),
    /// with the answer it got, in the order they were sent.
    pub fetches: Vec<FetchRow>,
}

/// Why a local server asked its parent for policies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum FetchKind {
    /// The scheduled synchronisation in its window (statistics up,
    /// changes down).
    Sync,
    /// A lighter check for new policies between syncs, or a fetch outside
    /// the schedule: after the parent's wake-up for an urgent change, or by
    /// the server where a change was made, for the revision the master gave
    /// it.
    Check,
    /// The first fetch of a server that holds no policy yet: at the start
    /// of the run, every local server downloads the whole policy set.
    Initial,
}

/// One policy request of a local server to its parent, and its answer.
#[derive(Clone, Debug, PartialEq)]
pub struct FetchRow {
    /// Site index of the requesting server.
    pub site: usize,
    /// What kind of request it was.
    pub kind: FetchKind,
    /// When it was sent, Unix seconds.
    pub at_unix: f64,
    /// When the parent sent its answer, Unix seconds; `None` if it never
    /// answered (the request or the answer was lost, or the run ended).
    pub answered_unix: Option<f64>,
    /// Bytes on the wire of the answer, overhead included (0 unanswered).
    pub reply_bytes: u64,
    /// Policy revisions the answer carried (0: nothing new).
    pub revisions: u32,
    /// Whether the answer was sent in the business hours of the
    /// requesting server's site.
    pub reply_in_business_hours: bool,
}

/// A link of the simulated network.
#[derive(Clone, Debug)]
pub struct LinkInfo {
    /// Display name, `wan:<site>` or `lan:<site>`.
    pub name: String,
    /// The site index the link belongs to.
    pub site: usize,
    /// Whether it is a WAN link.
    pub wan: bool,
    /// Capacity, bits per second.
    pub bandwidth_bps: u64,
}

/// One time-series row.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRow {
    /// Bucket index from the start.
    pub bucket: u32,
    /// Link id.
    pub link: u16,
    /// 0 down (from the parent), 1 up (towards the parent).
    pub dir: u8,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Messages.
    pub messages: u64,
    /// Seconds the link direction was busy with this traffic.
    pub busy_seconds: f64,
}

/// One message kind's traffic in one bucket.
#[derive(Clone, Debug, PartialEq)]
pub struct KindSeriesRow {
    /// Bucket index from the start (of the message's sending).
    pub bucket: u32,
    /// The message kind.
    pub kind: MessageKind,
    /// Bytes on the wire, counted once per message as `by_kind` does.
    pub bytes: u64,
    /// Messages sent.
    pub messages: u64,
}

/// A node of [`RunDetail::node_series`]: a server or a client group.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeInfo {
    /// `master`, a local server's site name, or `<site>/<platform>` for a
    /// client group.
    pub name: String,
    /// `master`, `local` or `clients`.
    pub role: String,
    /// Its site.
    pub site: String,
    /// A client group's platform; empty for a server.
    pub platform: String,
}

/// One node's traffic in one bucket, bytes on the wire: a message sent
/// counts in the bucket it was sent in, one received in the bucket it
/// arrived in (only if the node was up), as the per-node totals count them.
#[derive(Clone, Debug, PartialEq)]
pub struct NodeSeriesRow {
    /// Bucket index from the start.
    pub bucket: u32,
    /// Index into [`RunDetail::nodes`].
    pub node: u32,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent, lost ones included.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
}

/// The master's load in one bucket.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MasterRow {
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
}

/// One (change, client) propagation delay.
#[derive(Clone, Debug, PartialEq)]
pub struct PropagationRow {
    /// Change index in the scenario.
    pub change: u16,
    /// Site index of the client.
    pub site: u16,
    /// Platform index (into the sorted platform list).
    pub platform: u8,
    /// Delay, milliseconds.
    pub delay_ms: u64,
}

/// A run's full output.
#[derive(Clone, Debug)]
pub struct RunOutput {
    /// The summary.
    pub summary: RunSummary,
    /// The detail.
    pub detail: RunDetail,
    /// Platform names by index.
    pub platforms: Vec<String>,
}
