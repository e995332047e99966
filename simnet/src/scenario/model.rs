//! The sections of a scenario file, as Rust types.
//!
//! Every type here refuses unknown keys, so a misspelt key is an error
//! rather than a silently ignored setting. Each optional key has its default
//! in a function next to the field, with the reason for the value.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use jiff::tz::TimeZone;
use serde::Deserialize;
use serde::de::{self, Deserializer, Visitor};
use tiersync_engine::Time;

use super::background::Background;
use super::document::nearest;
use crate::units::{Bandwidth, ByteSize, Probability, SignedSpan, Span, TimeOfDayWindow};

/// How policies travel from the master to the clients.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// Master to local servers in a nightly window, local servers to their
    /// clients: the patent's design, and the default because it is what a
    /// scenario is usually written to study.
    #[default]
    Tiered,
    /// Every client polls the master over the WAN and downloads its full
    /// effective policy each time.
    Flat,
    /// Every client polls the master, downloading only when something
    /// changed.
    FlatConditional,
}

impl Strategy {
    /// The name as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::Tiered => "tiered",
            Strategy::Flat => "flat",
            Strategy::FlatConditional => "flat-conditional",
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A day of the week, written `mon` to `sun`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
#[allow(missing_docs)]
pub enum Weekday {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl Weekday {
    /// The same day in jiff's calendar.
    pub fn to_jiff(self) -> jiff::civil::Weekday {
        use jiff::civil::Weekday as J;
        match self {
            Weekday::Mon => J::Monday,
            Weekday::Tue => J::Tuesday,
            Weekday::Wed => J::Wednesday,
            Weekday::Thu => J::Thursday,
            Weekday::Fri => J::Friday,
            Weekday::Sat => J::Saturday,
            Weekday::Sun => J::Sunday,
        }
    }
}

/// The working week, used to report traffic inside and outside office
/// hours in each site's local time.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// Local working hours; default `08:00-18:00`, a common office day.
    #[serde(default = "default_business_window")]
    pub window: TimeOfDayWindow,
    /// Working days; default Monday to Friday.
    #[serde(default = "default_business_days")]
    pub days: BTreeSet<Weekday>,
}

impl Default for BusinessHours {
    fn default() -> BusinessHours {
        BusinessHours { window: default_business_window(), days: default_business_days() }
    }
}

fn default_business_window() -> TimeOfDayWindow {
    // 08:00 to 18:00 is 480 to 1080 minutes after midnight.
    TimeOfDayWindow::new(8 * 60, 18 * 60).unwrap_or_else(|| unreachable!("valid window"))
}

fn default_business_days() -> BTreeSet<Weekday> {
    use Weekday::*;
    BTreeSet::from([Mon, Tue, Wed, Thu, Fri])
}

/// `[master]`: where the master policy server runs.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Master {
    /// The site hosting the master; it must be the root of the site tree.
    pub site: String,
    /// Change-log entries the master keeps before compacting; default 1000.
    /// At a few changes a day that is months of history, so a local server
    /// that missed several syncs still gets a delta; an older revision
    /// forces a full snapshot.
    #[serde(default = "default_log_keep")]
    pub log_keep: u32,
}

fn default_log_keep() -> u32 {
    1000
}

/// `[client]`: how every client behaves.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientSettings {
    /// How often a client asks its server for changes.
    pub poll: Span,
    /// Upper bound of a random offset added to each poll, so that clients
    /// switched on together do not poll together.
    pub splay: Span,
    /// How often a client reports its security information.
    pub status_every: Span,
    /// Size of the opaque inventory in each status report.
    pub inventory: ByteSize,
    /// Laptops that go offline now and then; default none, every client
    /// stays on for the whole run.
    #[serde(default)]
    pub offline: Option<Offline>,
    /// Engine version the clients report; default 1. It only labels status
    /// reports, so any constant serves until a scenario upgrades clients.
    #[serde(default = "default_engine_version")]
    pub engine_version: u32,
    /// Probability that one status report finds a new threat; default
    /// 0.001, about one find per client in six weeks of hourly reports: it
    /// only varies the reports' content, which a scenario seldom studies.
    #[serde(default = "default_threat_rate")]
    pub threat_rate: Probability,
    /// Interval between a client's full scans, which its reports mention;
    /// default `1d`, the daily scan most endpoint products schedule.
    #[serde(default = "default_scan_every")]
    pub scan_every: Span,
    /// Upper bound of the random delay of the poll that follows a wake-up
    /// (an urgent change); default `1m`, so that the clients of one server
    /// do not all answer in the same millisecond, yet the urgent path stays
    /// within minutes.
    #[serde(default = "default_wake_splay")]
    pub wake_splay: Span,
}

fn default_engine_version() -> u32 {
    1
}

fn default_threat_rate() -> Probability {
    Probability::new(0.001).unwrap_or(Probability::ZERO)
}

fn default_scan_every() -> Span {
    Span::from_secs(86_400)
}

fn default_wake_splay() -> Span {
    Span::from_secs(60)
}

/// `[client.offline]`: a share of clients that are away regularly.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offline {
    /// Share of each site's clients that go offline.
    pub share: Probability,
    /// How long they stay off each time.
    pub off: Span,
    /// Time from the start of one absence to the start of the next.
    pub every: Span,
}

/// `[local]`: how every local policy server behaves.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalSettings {
    /// Local time of day of the full synchronisation with the parent.
    pub sync_window: TimeOfDayWindow,
    /// Interval of lighter checks for new policies between syncs; absent or
    /// `"off"` disables them, as in the patent's basic method where changes
    /// arrive only with the scheduled sync.
    #[serde(default, deserialize_with = "de_span_or_off")]
    pub policy_check: Option<Span>,
    /// Whether those checks also run in the site's business hours (the
    /// scenario's `[business_hours]`, local time). Default `true`, the
    /// patent's checks at any hour; `false` makes a check due in business
    /// hours wait for their end, so that content a check finds is not
    /// pulled across the WAN while people work, at the cost of up to a
    /// working day of delay.
    #[serde(default = "default_true")]
    pub checks_in_business_hours: bool,
    /// Clients not seen for this long are counted stale; default `3d`, so
    /// that machines switched off for a weekend are not flagged on Monday.
    #[serde(default = "default_stale_after")]
    pub stale_after: Span,
    /// The local server's request timeout: how long it waits for its
    /// parent's answer to a sync, a policy check or a proposal before it
    /// asks again, doubling after each try (so it is also the delay before
    /// the first retry). Default `5m`: long enough not to hammer a
    /// recovering parent, short enough for several tries within a two-hour
    /// window.
    #[serde(default = "default_retry")]
    pub retry: Span,
    /// How long a local waits for its children when asked for current
    /// status; default `30s`, many round trips even over a 170 ms link yet
    /// short enough for a person waiting on the answer.
    #[serde(default = "default_status_deadline")]
    pub status_deadline: Span,
}

fn default_true() -> bool {
    true
}

fn default_stale_after() -> Span {
    Span::from_secs(3 * 24 * 3600)
}

fn default_retry() -> Span {
    Span::from_mins(5)
}

fn default_status_deadline() -> Span {
    Span::from_secs(30)
}

/// `[[site]]` as validated: one location with its time zone, clients and
/// link to its parent.
#[derive(Clone, Debug)]
pub struct Site {
    /// Unique name.
    pub name: String,
    /// The parent site's name; `None` only for the root.
    pub parent: Option<String>,
    /// Index of the parent in [`Scenario::sites`](super::Scenario::sites).
    pub parent_index: Option<usize>,
    /// The IANA time zone name as written.
    pub timezone_name: String,
    /// The time zone, with daylight-saving rules, from jiff's bundled
    /// database so that results do not depend on the host's zone files.
    pub timezone: TimeZone,
    /// Client count per platform, in platform-name order.
    pub clients: BTreeMap<String, u32>,
    /// The link to the parent's site; present for every site but the root.
    pub wan: Option<Wan>,
    /// The site's local network.
    pub lan: Lan,
    /// Local policy servers at the site; 0 means its clients are served by
    /// the parent's servers over the WAN.
    pub local_servers: u32,
}

impl Site {
    /// Number of clients at the site, all platforms together.
    pub fn client_count(&self) -> u64 {
        self.clients.values().map(|&n| u64::from(n)).sum()
    }

    /// Whether the site has clients and allows a local server. A relay
    /// site without clients runs one too when a site below it does; the
    /// full rule is [`Scenario::runs_local_server`](super::Scenario::runs_local_server).
    pub fn has_local_server(&self) -> bool {
        self.local_servers > 0 && self.client_count() > 0
    }
}

/// Per site, whether it runs a local server under the tiered strategy:
/// every site with clients (the master's own included) and every site
/// below the root that relays for a site running one, unless it says
/// `local_servers = 0`.
pub(crate) fn local_server_sites(sites: &[Site], root: usize) -> Vec<bool> {
    // Deepest sites first, so that a relay sees its children decided.
    let depth = |mut i: usize| {
        let mut d = 0;
        while let Some(p) = sites[i].parent_index {
            d += 1;
            i = p;
        }
        d
    };
    let mut order: Vec<usize> = (0..sites.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(depth(i)), i));
    let mut runs = vec![false; sites.len()];
    for i in order {
        let below = (0..sites.len()).any(|c| sites[c].parent_index == Some(i) && runs[c]);
        let site = &sites[i];
        runs[i] = site.local_servers > 0 && (site.client_count() > 0 || (i != root && below));
    }
    runs
}

/// `[[site]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SiteDoc {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) parent: Option<String>,
    pub(crate) timezone: String,
    /// Default empty: a site may be a pure relay tier or the master's own.
    #[serde(default)]
    pub(crate) clients: BTreeMap<String, u32>,
    #[serde(default)]
    pub(crate) wan: Option<Wan>,
    #[serde(default)]
    pub(crate) lan: Lan,
    /// Default 1, the patent's one local server per site.
    #[serde(default = "default_local_servers")]
    pub(crate) local_servers: u32,
}

fn default_local_servers() -> u32 {
    1
}

/// A site's WAN link to its parent's site.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wan {
    /// Capacity in each direction.
    pub bandwidth: Bandwidth,
    /// One-way propagation delay.
    pub latency: Span,
    /// Largest random extra delay per message; default 0, an ideal link, so
    /// that any jitter in a result was asked for.
    #[serde(default)]
    pub jitter: Span,
    /// Probability that a message is lost; default 0 for the same reason.
    /// A `loss` fault replaces it within the fault's window.
    #[serde(default)]
    pub loss: Probability,
    /// Probability that a message is delivered twice; default 0. A
    /// `duplicate` fault replaces it.
    #[serde(default)]
    pub duplicate: Probability,
    /// Other traffic sharing the link; default `none`.
    #[serde(default)]
    pub background: Background,
}

/// A site's local network between clients and its local server.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lan {
    /// Capacity; default `1Gbit/s`, a switched office LAN.
    #[serde(default = "default_lan_bandwidth")]
    pub bandwidth: Bandwidth,
    /// One-way delay; default `1ms`, a few switch hops.
    #[serde(default = "default_lan_latency")]
    pub latency: Span,
}

impl Default for Lan {
    fn default() -> Lan {
        Lan { bandwidth: default_lan_bandwidth(), latency: default_lan_latency() }
    }
}

fn default_lan_bandwidth() -> Bandwidth {
    Bandwidth::new(1_000_000_000).unwrap_or_else(|| unreachable!("non-zero"))
}

fn default_lan_latency() -> Span {
    Span::from_millis(1)
}

/// `[[policy]]`: a security policy that exists when the run starts.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Unique id, referred to by changes.
    pub id: String,
    /// Client platforms the policy applies to; at least one.
    pub platforms: Vec<String>,
    /// Size of bulk content such as signatures; default 0, since a policy
    /// of settings only (firewall rules) has none.
    #[serde(default)]
    pub content: ByteSize,
    /// Global parameters; default empty.
    #[serde(default)]
    pub params: toml::Table,
    /// Per-platform parameters merged over the global ones; default none.
    #[serde(default)]
    pub platform_params: BTreeMap<String, toml::Table>,
    /// Per-site parameters merged over the global ones; default none.
    #[serde(default)]
    pub site_params: BTreeMap<String, toml::Table>,
}

/// `[[change]]` as validated: a policy created or modified during the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    /// When the change is made.
    pub at: Time,
    /// The policy changed or created.
    pub policy: String,
    /// True when no earlier policy or change defines `policy`.
    pub creates_policy: bool,
    /// New content size, if the content changes.
    pub content: Option<ByteSize>,
    /// New global parameters, if they change.
    pub params: Option<toml::Table>,
    /// New platform list, required when the change creates the policy.
    pub platforms: Option<Vec<String>>,
    /// The site where the change is made: the master's site or a site with
    /// a local server.
    pub origin: String,
    /// Whether it is pushed at once rather than at the next sync.
    pub urgent: bool,
}

/// `[[change]]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ChangeDoc {
    #[serde(deserialize_with = "de_time")]
    pub(crate) at: Time,
    pub(crate) policy: String,
    #[serde(default)]
    pub(crate) content: Option<ByteSize>,
    #[serde(default)]
    pub(crate) params: Option<toml::Table>,
    #[serde(default)]
    pub(crate) platforms: Option<Vec<String>>,
    /// Default: the master's site, where most policies are authored.
    #[serde(default)]
    pub(crate) origin: Option<String>,
    /// Default false: changes wait for the scheduled sync, as in the patent.
    #[serde(default)]
    pub(crate) urgent: bool,
}

/// `[[status_query]]`: an operator asks the master for status.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusQuery {
    /// When the query is made.
    #[serde(deserialize_with = "de_time")]
    pub at: Time,
    /// Current (ask every local now) or historical (from the store).
    pub kind: StatusKind,
    /// Drill down to one site; default none, the whole deployment.
    #[serde(default)]
    pub site: Option<String>,
    /// Drill down to one client, numbered from 0 across sites in file order
    /// and, within a site, by platform name; default none.
    #[serde(default)]
    pub client: Option<u64>,
}

/// Where a status answer comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StatusKind {
    /// The master asks every local server now and waits with a deadline.
    Current,
    /// The master answers from its stored uploads.
    Historical,
}

/// `[[fault]]`: something going wrong during the run.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// The site's WAN link carries nothing for a time.
    Partition(PartitionFault),
    /// The site's WAN link loses messages at a rate, in place of its own.
    Loss(LossFault),
    /// The site's WAN link delivers messages twice at a rate, in place of
    /// its own.
    Duplicate(DuplicateFault),
    /// A node at the site stops and later restarts.
    Crash(CrashFault),
    /// A node's clock at the site is offset.
    Skew(SkewFault),
}

impl Fault {
    /// The site the fault applies to.
    pub fn site(&self) -> &str {
        match self {
            Fault::Partition(f) => &f.site,
            Fault::Loss(f) => &f.site,
            Fault::Duplicate(f) => &f.site,
            Fault::Crash(f) => &f.site,
            Fault::Skew(f) => &f.site,
        }
    }

    /// The kind as written in `kind = "..."`.
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Partition(_) => "partition",
            Fault::Loss(_) => "loss",
            Fault::Duplicate(_) => "duplicate",
            Fault::Crash(_) => "crash",
            Fault::Skew(_) => "skew",
        }
    }
}

/// `kind = "partition"`: the site's WAN link is cut from `from` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionFault {
    /// The site whose uplink is cut.
    pub site: String,
    /// When the cut begins.
    #[serde(deserialize_with = "de_time")]
    pub from: Time,
    /// When the link comes back.
    #[serde(deserialize_with = "de_time")]
    pub to: Time,
}

/// `kind = "loss"`: message loss on the site's WAN link at `rate` from
/// `from` to `to`.
///
/// The rate replaces the link's `wan.loss` within the window rather than
/// adding to it, so that a fault states the link's whole loss there (and
/// `rate = 0` gives a lossy link a clean spell). Where two loss faults of
/// one link overlap, the later in the file applies.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LossFault {
    /// The site whose uplink loses messages.
    pub site: String,
    /// Probability that each message is lost, in place of `wan.loss`.
    pub rate: Probability,
    /// Start; default the start of the run.
    #[serde(default, deserialize_with = "de_opt_time")]
    pub from: Option<Time>,
    /// End; default the end of the run.
    #[serde(default, deserialize_with = "de_opt_time")]
    pub to: Option<Time>,
}

/// `kind = "duplicate"`: messages on the site's WAN link are delivered
/// twice, for the whole run.
///
/// Like a loss fault, its rate replaces the link's `wan.duplicate` rather
/// than adding to it; of two on one link, the later in the file applies.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DuplicateFault {
    /// The site whose uplink duplicates messages.
    pub site: String,
    /// Probability that each message is delivered twice, in place of
    /// `wan.duplicate`.
    pub rate: Probability,
}

/// `kind = "crash"`: nodes at a site stop at `at` and restart later.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashFault {
    /// The site of the crashing nodes.
    pub site: String,
    /// Which nodes crash.
    pub node: CrashTarget,
    /// When they stop.
    #[serde(deserialize_with = "de_time")]
    pub at: Time,
    /// How long until they restart.
    pub restart_after: Span,
}

/// Which nodes a crash takes down: `"local"`, `"clients"` or a number, the
/// share of the site's clients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum CrashTarget {
    /// The site's local policy server.
    Local,
    /// Every client at the site.
    Clients,
    /// This share of the site's clients.
    Share(Probability),
}

/// `kind = "skew"`: a node's clock runs ahead or behind, as validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SkewFault {
    /// The site of the skewed nodes.
    pub site: String,
    /// Whose clock is off.
    pub node: SkewTarget,
    /// How far off, negative for behind: `-90s`.
    pub offset: SignedSpan,
}

/// `kind = "skew"` as written: `node` or `client` names whose clock moves.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SkewFaultDoc {
    pub(crate) site: String,
    #[serde(default)]
    pub(crate) node: Option<SkewNodeName>,
    #[serde(default)]
    pub(crate) client: Option<u32>,
    pub(crate) offset: SignedSpan,
}

/// The values `node` takes in a skew fault.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SkewNodeName {
    Local,
    Clients,
    Master,
}

/// Whose clock a skew fault moves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SkewTarget {
    /// The site's local policy server (`node = "local"`).
    Local,
    /// Every client at the site (`node = "clients"`).
    Clients,
    /// The master policy server (`node = "master"`); the fault's site must
    /// be the master's.
    Master,
    /// One client of the site (`client = N`), numbered from 0 within the
    /// site, by platform name and then in order, as the clients are built.
    Client(u32),
}

impl<'de> Deserialize<'de> for CrashTarget {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<CrashTarget, D::Error> {
        deserializer.deserialize_any(CrashTargetVisitor)
    }
}

struct CrashTargetVisitor;

impl CrashTargetVisitor {
    fn share<E: de::Error>(text: String) -> Result<CrashTarget, E> {
        text.parse().map(CrashTarget::Share).map_err(E::custom)
    }
}

impl Visitor<'_> for CrashTargetVisitor {
    type Value = CrashTarget;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("`local`, `clients` or a share of clients from 0 to 1")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<CrashTarget, E> {
        match v {
            "local" => Ok(CrashTarget::Local),
            "clients" => Ok(CrashTarget::Clients),
            _ => {
                let hint = match nearest(v, ["local", "clients"].into_iter()) {
                    Some(s) => format!("; did you mean `{s}`?"),
                    None => String::new(),
                };
                Err(E::custom(format_args!(
                    "unknown node `{v}`{hint}; expected `local`, `clients` or a share \
                     of clients from 0 to 1"
                )))
            }
        }
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<CrashTarget, E> {
        Self::share(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<CrashTarget, E> {
        Self::share(v.to_string())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<CrashTarget, E> {
        Self::share(v.to_string())
    }
}

/// Reads `"off"` as `None` and anything else as a [`Span`].
fn de_span_or_off<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Span>, D::Error> {
    struct SpanOrOff;

    impl Visitor<'_> for SpanOrOff {
        type Value = Option<Span>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a duration such as \"6h\", or \"off\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<Span>, E> {
            if v.trim() == "off" {
                return Ok(None);
            }
            v.parse().map(Some).map_err(E::custom)
        }

        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Option<Span>, E> {
            self.visit_str(&v.to_string())
        }
    }

    deserializer.deserialize_any(SpanOrOff)
}

/// Reads an instant written as an RFC 3339 string or an unquoted TOML
/// offset date-time. A time without an offset is refused: it would be
/// ambiguous across the sites' time zones.
pub(crate) fn de_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Time, D::Error> {
    let value = toml::Value::deserialize(deserializer)?;
    let text = match &value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(dt) => dt.to_string(),
        other => {
            return Err(de::Error::custom(format_args!(
                "expected a time such as \"2026-03-02T00:00:00Z\", found a {}",
                other.type_str()
            )));
        }
    };
    parse_time(&text).map_err(de::Error::custom)
}

fn de_opt_time<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Time>, D::Error> {
    de_time(deserializer).map(Some)
}

/// Parses an RFC 3339 instant such as `2026-03-02T00:00:00Z`.
pub(crate) fn parse_time(text: &str) -> Result<Time, String> {
    text.trim().parse::<jiff::Timestamp>().map(Time::from_jiff).map_err(|e| {
        format!(
            "`{text}` is not an RFC 3339 time with a UTC offset, such as \
                 2026-03-02T00:00:00Z ({e})"
        )
    })
}
