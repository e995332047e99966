//! The daemons' configuration files.
//!
//! One TOML file per node. Time zones, schedules and durations use the
//! keys and units of scenario files (`timezone = "Asia/Tokyo"`,
//! `sync_window = "02:00-04:00"`, `policy_check = "6h"`, `poll = "1h"`),
//! so a scenario's site can be deployed by copying its values. Relative
//! paths are taken from the directory of the file that names them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use thiserror::Error;
use tiersync_engine::schedule::{DailyWindow, QuietHours};
use tiersync_engine::units::{ByteSize, Span, TimeOfDayWindow};

use crate::ids::{Role, valid_name};

/// Why a configuration file could not be used: an operator's mistake.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid TOML of the expected shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with its location.
        message: String,
    },
    /// A value is out of range or malformed.
    #[error("{path}: `{key}`: {message}")]
    Value {
        /// The file.
        path: PathBuf,
        /// The key.
        key: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// TLS files of a node.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA certificate every peer must chain to (PEM).
    pub ca: PathBuf,
    /// This node's certificate (PEM).
    pub cert: PathBuf,
    /// This node's private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// Bounds and timings of connections; every field has a default.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Transport {
    /// Send a keepalive frame after this much silence.
    #[serde(deserialize_with = "de_duration")]
    pub keepalive: Duration,
    /// Close a connection that has sent nothing for this long.
    #[serde(deserialize_with = "de_duration")]
    pub dead_after: Duration,
    /// Largest frame accepted, in bytes (`134217728` or `"128MiB"`).
    #[serde(deserialize_with = "de_bytes")]
    pub max_frame_bytes: usize,
    /// A peer must send a frame's body at least this fast, in bytes per
    /// second, after a grace of `handshake_timeout`.
    pub min_send_rate_bps: u64,
    /// Time allowed for a TLS handshake.
    #[serde(deserialize_with = "de_duration")]
    pub handshake_timeout: Duration,
    /// Frames queued for one peer before it counts as too slow to keep.
    pub send_queue_frames: usize,
    /// Bytes queued for one peer before it counts as too slow to keep
    /// (`"256MiB"` or a number). A frame is always accepted into an empty
    /// queue, so one frame up to `max_frame_bytes` always fits.
    #[serde(deserialize_with = "de_bytes")]
    pub send_queue_bytes: usize,
    /// First reconnection delay; doubles after each failure.
    #[serde(deserialize_with = "de_duration")]
    pub backoff_min: Duration,
    /// Longest reconnection delay.
    #[serde(deserialize_with = "de_duration")]
    pub backoff_max: Duration,
    /// Longest a stopping daemon waits for the exchanges it started (a
    /// poll, a report, a synchronisation, a status query) to be answered
    /// before it closes its connections; it stops as soon as none is left.
    #[serde(deserialize_with = "de_duration")]
    pub shutdown_grace: Duration,
}

impl Default for Transport {
    fn default() -> Transport {
        Transport {
            // 15 s of silence before a keepalive and 45 s before a peer is
            // dead: three keepalives lost, as many TCP keepalive defaults
            // count probes, while a dead master is noticed within a minute.
            keepalive: Duration::from_secs(15),
            dead_after: Duration::from_secs(45),
            // 128 MiB: above the largest content we expect (a 70 MB daily
            // signature set), and a bound on what one peer can make us hold.
            max_frame_bytes: 128 << 20,
            // 16 KiB/s: a 70 MB signature set over a poor link still fits
            // in its allowance, a peer trickling bytes to hold a buffer
            // does not.
            min_send_rate_bps: 16 << 10,
            handshake_timeout: Duration::from_secs(10),
            send_queue_frames: 1024,
            // Two of the largest frames: a peer may be one full frame
            // behind while the next one waits, no more.
            send_queue_bytes: 256 << 20,
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            // A bound, not a wait: a daemon with nothing in flight stops at
            // once. Ten seconds lets a synchronisation over a slow link
            // finish; a stuck peer cannot hold a stop longer than that.
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// A child server below this one (a local server below the master, or
/// below a regional local server).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChildEntry {
    /// The child's certificate name.
    pub name: String,
    /// The site it serves.
    pub site: String,
}

/// `master.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MasterConfigFile {
    /// The name in this node's certificate.
    pub name: String,
    /// The master's own site.
    pub site: String,
    /// IANA time zone of the master's site.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Where the store and logs live.
    pub data_dir: PathBuf,
    /// The ed25519 policy-signing secret (from `tiersync pki init`).
    pub policy_signing_key: PathBuf,
    /// How long `status --current` waits for local servers; the scenario
    /// key `status_deadline` (`[local]` there), default `30s`.
    #[serde(default = "thirty_seconds", deserialize_with = "de_duration")]
    pub status_deadline: Duration,
    /// Clients of the master's own sites not heard from for this long count
    /// as stale; the scenario key `stale_after`, default `3d`.
    #[serde(default = "three_days", deserialize_with = "de_duration")]
    pub stale_after: Duration,
    /// Change-log entries kept before compacting (a child further behind
    /// gets a snapshot); the scenario's `[master] log_keep`, default 1000.
    #[serde(default = "thousand")]
    pub log_keep: usize,
    /// Extra sites whose clients may poll the master directly.
    #[serde(default)]
    pub sites: Vec<String>,
    /// TLS files.
    pub tls: TlsFiles,
    /// Connection bounds.
    #[serde(default)]
    pub transport: Transport,
    /// Local servers directly below.
    #[serde(default, rename = "child")]
    pub children: Vec<ChildEntry>,
}

/// `local.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfigFile {
    /// The name in this node's certificate.
    pub name: String,
    /// The site it serves.
    pub site: String,
    /// IANA time zone in which the sync window is placed.
    pub timezone: String,
    /// Address to listen on for clients (and child servers).
    pub listen: SocketAddr,
    /// The parent's address (`host:port`).
    pub parent: String,
    /// The name in the parent's certificate.
    pub parent_name: String,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The master's ed25519 public key (from `tiersync pki init`).
    pub policy_verify_key: PathBuf,
    /// Extra sites whose clients this server serves besides its own: sites
    /// below it without a server of their own (a scenario site with
    /// `local_servers = 0`). The master must list them in its `sites` too,
    /// or it refuses their statistics.
    #[serde(default)]
    pub sites: Vec<String>,
    /// Daily synchronisation window, local time, `HH:MM-HH:MM`.
    #[serde(default = "night", deserialize_with = "de_window")]
    pub sync_window: DailyWindow,
    /// Interval of the lighter checks for new policies between syncs;
    /// absent or `"off"` runs none, as in scenario files.
    #[serde(default, deserialize_with = "de_duration_or_off")]
    pub policy_check: Option<Duration>,
    /// Whether those checks also run in business hours (`[business_hours]`
    /// in `timezone`). `false` makes a check due then wait for their end,
    /// so content it finds does not cross the WAN while the site works;
    /// the same key as in scenario files, default `true`.
    #[serde(default = "yes")]
    pub checks_in_business_hours: bool,
    /// The site's working week, in which no check runs when
    /// `checks_in_business_hours = false`: the scenario's top-level
    /// `[business_hours]` table, default `08:00-18:00` Monday to Friday.
    #[serde(default)]
    pub business_hours: BusinessHours,
    /// How long to wait for the parent's answer to a sync, a check or a
    /// proposal before asking again, doubled per try: the scenario key
    /// `retry`, default `5m` as there. `request_timeout`, this key's
    /// earlier name, is still read.
    #[serde(default = "five_minutes", alias = "request_timeout", deserialize_with = "de_duration")]
    pub retry: Duration,
    /// Clients not heard from for this long count as stale in the site's
    /// statistics; the scenario key `stale_after`, default `3d`.
    #[serde(default = "three_days", deserialize_with = "de_duration")]
    pub stale_after: Duration,
    /// Change-log entries kept for the servers below this one; the
    /// scenario's `[master] log_keep`, which the simulator gives every
    /// server, default 1000.
    #[serde(default = "thousand")]
    pub log_keep: usize,
    /// TLS files.
    pub tls: TlsFiles,
    /// Connection bounds.
    #[serde(default)]
    pub transport: Transport,
    /// Local servers below this one (a middle tier).
    #[serde(default, rename = "child")]
    pub children: Vec<ChildEntry>,
}

/// `client.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfigFile {
    /// The name in this node's certificate.
    pub name: String,
    /// The client's site.
    pub site: String,
    /// The client's platform (`windows`, `macos`, `linux`, …).
    pub platform: String,
    /// IANA time zone of the client (for its logs' readers; polls are by
    /// interval).
    #[serde(default = "utc")]
    pub timezone: String,
    /// The server's address (`host:port`): its site's local server.
    pub server: String,
    /// The name in the server's certificate.
    pub server_name: String,
    /// Where the store lives.
    pub data_dir: PathBuf,
    /// The master's ed25519 public key.
    pub policy_verify_key: PathBuf,
    /// Interval between polls.
    #[serde(default = "one_hour", deserialize_with = "de_duration")]
    pub poll: Duration,
    /// Bound of the random delay of the first poll.
    #[serde(default = "half_hour", deserialize_with = "de_duration")]
    pub splay: Duration,
    /// Interval between status reports.
    #[serde(default = "one_hour", deserialize_with = "de_duration")]
    pub status_every: Duration,
    /// Size of the inventory in each report (`"2KiB"` or a number of
    /// bytes), the scenario key `inventory`: the client's description
    /// (`os=linux`) padded with filler, or cut, to exactly this size, so a
    /// deployment can carry a scenario's report sizes. Default: the
    /// description alone.
    #[serde(default, deserialize_with = "de_opt_bytes")]
    pub inventory: Option<usize>,
    /// Interval between full scans, which reports mention; the scenario
    /// key `scan_every`, default `1d`.
    #[serde(default = "one_day", deserialize_with = "de_duration")]
    pub scan_every: Duration,
    /// Bound of the random delay of the poll after a wake-up (an urgent
    /// change), so a server's clients do not all answer at once; the
    /// scenario key `wake_splay`, default `1m`.
    #[serde(default = "one_minute", deserialize_with = "de_duration")]
    pub wake_splay: Duration,
    /// Engine version the client reports; the scenario key
    /// `engine_version`, default 1.
    #[serde(default = "one")]
    pub engine_version: u32,
    /// TLS files.
    pub tls: TlsFiles,
    /// Connection bounds.
    #[serde(default)]
    pub transport: Transport,
}

/// A day of the week, `mon` to `sun`, as scenario files write it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
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

/// `[business_hours]`: a site's working week, with the keys, units and
/// defaults of the scenario table of that name.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessHours {
    /// Local working hours, `HH:MM-HH:MM`; default `08:00-18:00`.
    #[serde(default = "office_window", deserialize_with = "de_window")]
    pub window: DailyWindow,
    /// Working days; default Monday to Friday.
    #[serde(default = "office_days")]
    pub days: Vec<Weekday>,
}

impl Default for BusinessHours {
    fn default() -> BusinessHours {
        BusinessHours { window: office_window(), days: office_days() }
    }
}

impl BusinessHours {
    /// The engine's quiet hours for light checks.
    pub fn quiet_hours(&self) -> QuietHours {
        let mut days = [false; 7];
        for d in &self.days {
            days[*d as usize] = true;
        }
        QuietHours { window: self.window, days }
    }
}

fn office_window() -> DailyWindow {
    QuietHours::OFFICE.window
}

fn office_days() -> Vec<Weekday> {
    use Weekday::*;
    vec![Mon, Tue, Wed, Thu, Fri]
}

/// `operator.toml`: where operator commands go and with which certificate.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OperatorConfigFile {
    /// The server's address: the master, or a local server for
    /// `policy set` there.
    pub server: String,
    /// The name in the server's certificate.
    pub server_name: String,
    /// How long to wait for an answer.
    #[serde(default = "one_minute", deserialize_with = "de_duration")]
    pub timeout: Duration,
    /// TLS files (an operator certificate).
    pub tls: TlsFiles,
}

fn utc() -> String {
    "UTC".into()
}
fn night() -> DailyWindow {
    DailyWindow::NIGHT
}
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}
fn one_minute() -> Duration {
    Duration::from_secs(60)
}
fn five_minutes() -> Duration {
    Duration::from_secs(300)
}
fn three_days() -> Duration {
    Duration::from_secs(3 * 86_400)
}
fn one_day() -> Duration {
    Duration::from_secs(86_400)
}
fn thousand() -> usize {
    1000
}
fn one() -> u32 {
    1
}
fn half_hour() -> Duration {
    Duration::from_secs(1800)
}
fn one_hour() -> Duration {
    Duration::from_secs(3600)
}

/// Parses a span such as `500ms`, `90s`, `1h30m`, `2.5h` or `7d`: the
/// units of scenario files, through the same parser
/// ([`tiersync_engine::units::Span`]).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    s.parse::<Span>().map(Duration::from).map_err(|e| e.to_string())
}

/// Parses a daily window `HH:MM-HH:MM` (an end before the start wraps past
/// midnight, `24:00` may end it), through the parser of scenario files
/// ([`tiersync_engine::units::TimeOfDayWindow`]).
pub fn parse_window(s: &str) -> Result<DailyWindow, String> {
    let w = s.parse::<TimeOfDayWindow>().map_err(|e| e.to_string())?;
    Ok(DailyWindow { start_min: w.start_minute(), end_min: w.end_minute() })
}

fn de_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<usize, D::Error> {
    let size = ByteSize::deserialize(d)?;
    usize::try_from(size.bytes()).map_err(|_| serde::de::Error::custom("too large"))
}

fn de_duration<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    parse_duration(&s).map_err(serde::de::Error::custom)
}

fn de_opt_bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    de_bytes(d).map(Some)
}

/// A span, or `"off"` for none: `policy_check` as scenario files read it.
fn de_duration_or_off<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Duration>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim() == "off" {
        return Ok(None);
    }
    parse_duration(&s).map(Some).map_err(serde::de::Error::custom)
}

fn de_window<'de, D: serde::Deserializer<'de>>(d: D) -> Result<DailyWindow, D::Error> {
    let s = String::deserialize(d)?;
    parse_window(&s).map_err(serde::de::Error::custom)
}

/// A configuration file that knows how to check itself and resolve its
/// relative paths.
pub trait ConfigFile: for<'de> Deserialize<'de> {
    /// Makes relative paths relative to `base`, and checks values.
    fn finish(&mut self, base: &Path) -> Result<(), (&'static str, String)>;
}

fn rebase(base: &Path, p: &mut PathBuf) {
    if p.is_relative() {
        *p = base.join(&*p);
    }
}

fn rebase_tls(base: &Path, tls: &mut TlsFiles) {
    rebase(base, &mut tls.ca);
    rebase(base, &mut tls.cert);
    rebase(base, &mut tls.key);
}

fn check_name(key: &'static str, name: &str) -> Result<(), (&'static str, String)> {
    if valid_name(name) {
        Ok(())
    } else {
        Err((key, format!("`{name}` must be lower-case letters, digits, `-` and `.`")))
    }
}

fn check_tz(tz: &str) -> Result<(), (&'static str, String)> {
    jiff::tz::TimeZone::get(tz).map(|_| ()).map_err(|e| ("timezone", e.to_string()))
}

impl ConfigFile for MasterConfigFile {
    fn finish(&mut self, base: &Path) -> Result<(), (&'static str, String)> {
        check_name("name", &self.name)?;
        check_tz(&self.timezone)?;
        for c in &self.children {
            check_name("child.name", &c.name)?;
        }
        rebase(base, &mut self.data_dir);
        rebase(base, &mut self.policy_signing_key);
        rebase_tls(base, &mut self.tls);
        Ok(())
    }
}

/// Refuses a zero interval, as scenario files do: a poll or check every
/// 0 s would spin.
fn positive(key: &'static str, d: Duration) -> Result<(), (&'static str, String)> {
    if d.is_zero() { Err((key, "must be longer than zero".into())) } else { Ok(()) }
}

impl ConfigFile for LocalConfigFile {
    fn finish(&mut self, base: &Path) -> Result<(), (&'static str, String)> {
        check_name("name", &self.name)?;
        check_name("parent_name", &self.parent_name)?;
        check_tz(&self.timezone)?;
        for c in &self.children {
            check_name("child.name", &c.name)?;
        }
        if let Some(check) = self.policy_check {
            positive("policy_check", check)?;
        }
        rebase(base, &mut self.data_dir);
        rebase(base, &mut self.policy_verify_key);
        rebase_tls(base, &mut self.tls);
        Ok(())
    }
}

impl ConfigFile for ClientConfigFile {
    fn finish(&mut self, base: &Path) -> Result<(), (&'static str, String)> {
        check_name("name", &self.name)?;
        check_name("server_name", &self.server_name)?;
        check_tz(&self.timezone)?;
        positive("poll", self.poll)?;
        positive("status_every", self.status_every)?;
        rebase(base, &mut self.data_dir);
        rebase(base, &mut self.policy_verify_key);
        rebase_tls(base, &mut self.tls);
        Ok(())
    }
}

impl ConfigFile for OperatorConfigFile {
    fn finish(&mut self, base: &Path) -> Result<(), (&'static str, String)> {
        check_name("server_name", &self.server_name)?;
        rebase_tls(base, &mut self.tls);
        Ok(())
    }
}

/// Reads and checks a configuration file.
pub fn load<C: ConfigFile>(path: &Path) -> Result<C, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
    let mut cfg: C = toml::from_str(&text)
        .map_err(|e| ConfigError::Parse { path: path.to_owned(), message: e.to_string() })?;
    let base = path.parent().unwrap_or(Path::new("."));
    cfg.finish(base).map_err(|(key, message)| ConfigError::Value {
        path: path.to_owned(),
        key,
        message,
    })?;
    Ok(cfg)
}

/// A commented example configuration for `role`, as `tiersync init-config`
/// prints it. Paths match what `tiersync pki init pki` and `tiersync pki
/// issue pki …` write.
pub fn example(role: Role) -> &'static str {
    match role {
        Role::Master => MASTER_EXAMPLE,
        Role::Local => LOCAL_EXAMPLE,
        Role::Client => CLIENT_EXAMPLE,
        Role::Operator => OPERATOR_EXAMPLE,
    }
}

const MASTER_EXAMPLE: &str = r#"# tiersync master policy server
# run: `tiersync master --config master.toml`
# Relative paths are relative to this file.

name = "master"                # the name in this node's certificate
site = "hq"                    # the master's own site
timezone = "America/New_York"  # IANA time zone of the master's site
listen = "127.0.0.1:7401"      # local servers and operators connect here;
                               # "0.0.0.0:7401" to accept other machines
data_dir = "data/master"       # SQLite store: policies, change log, statistics
policy_signing_key = "pki/policy-signing.key"  # ed25519 secret: keep it private
status_deadline = "30s"        # how long `status --current` waits for sites
# stale_after = "3d"           # clients of the master's site silent this long are stale
# log_keep = 1000              # change-log entries kept; a child further behind
                               # gets a snapshot

[tls]
ca = "pki/ca.pem"              # peers must chain to this CA
cert = "pki/master.pem"
key = "pki/master.key"

# Local servers directly below the master: certificate name and site.
[[child]]
name = "tokyo"
site = "tokyo"

[[child]]
name = "london"
site = "london"

# Optional connection bounds (defaults shown).
# [transport]
# keepalive = "15s"            # send a keepalive after this much silence
# dead_after = "45s"           # close a peer silent for this long
# max_frame_bytes = "128MiB"   # largest frame accepted
# send_queue_bytes = "256MiB"  # bytes queued for one peer before it is cut off
# shutdown_grace = "10s"       # longest wait for in-flight exchanges on SIGTERM
# min_send_rate_bps = 16384    # slower senders are cut off
# backoff_min = "1s"           # reconnection delay, doubled per failure...
# backoff_max = "60s"          # ...up to this, with random jitter
"#;

fn yes() -> bool {
    true
}

const LOCAL_EXAMPLE: &str = r#"# tiersync local policy server: `tiersync local --config local.toml`
# Relative paths are relative to this file.

name = "tokyo"                 # the name in this node's certificate
site = "tokyo"                 # the site it serves; clients must be of this site
timezone = "Asia/Tokyo"        # IANA zone in which the sync window is placed
listen = "127.0.0.1:7402"      # clients connect here; "0.0.0.0:7402" from other
                               # machines
parent = "127.0.0.1:7401"      # the master (or a regional local server)
parent_name = "master"         # the name in the parent's certificate
data_dir = "data/tokyo"        # SQLite store: policies, client reports, unacked stats
policy_verify_key = "pki/policy-signing.pub"  # the master's public key
# Schedule: the keys, units and defaults of a scenario file's [local].
sync_window = "02:00-04:00"    # daily full synchronisation, local time
policy_check = "6h"            # lighter checks for new policies in between;
                               # "off" (or no key): none between syncs
checks_in_business_hours = true  # false: no check in [business_hours] below
retry = "5m"                   # ask the parent again after this much silence,
                               # doubled per try (`request_timeout` also read)
# stale_after = "3d"           # clients silent this long count as stale
# log_keep = 1000              # change-log entries kept for servers below this one
# sites = ["tokyo-annex"]      # sites below with no server of their own whose
                               # clients it serves (list them at the master too)

# The site's working week, local time (a scenario's [business_hours]).
# [business_hours]
# window = "08:00-18:00"
# days = ["mon", "tue", "wed", "thu", "fri"]

[tls]
ca = "pki/ca.pem"
cert = "pki/tokyo.pem"
key = "pki/tokyo.key"
"#;

const CLIENT_EXAMPLE: &str = r#"# tiersync client: `tiersync client --config client.toml`
# Relative paths are relative to this file.

name = "pc1.tokyo"             # the name in this node's certificate
site = "tokyo"                 # must match the site in its certificate
platform = "windows"           # which effective policies it receives
timezone = "Asia/Tokyo"
server = "127.0.0.1:7402"      # its site's local server
server_name = "tokyo"          # the name in the server's certificate
data_dir = "data/pc1.tokyo"    # SQLite store: the policies it enforces
policy_verify_key = "pki/policy-signing.pub"
# Schedule: the keys, units and defaults of a scenario file's [client].
poll = "1h"                    # how often it asks for changes
splay = "30m"                  # random delay of the first poll
status_every = "1h"            # how often it reports its security information
# wake_splay = "1m"            # random delay of the poll after an urgent wake-up
# scan_every = "1d"            # full-scan interval its reports mention
# inventory = "2KiB"           # pad (or cut) each report's inventory to this size
# engine_version = 1           # engine version its reports give

[tls]
ca = "pki/ca.pem"
cert = "pki/pc1.tokyo.pem"
key = "pki/pc1.tokyo.key"
"#;

const OPERATOR_EXAMPLE: &str = r#"# tiersync operator commands
# `tiersync policy …` and `tiersync status …`
# read this file (`--config`, default `operator.toml`).

server = "127.0.0.1:7401"      # the master; a local server for `policy set` there
server_name = "master"         # the name in the server's certificate
timeout = "60s"                # how long to wait for an answer

[tls]
ca = "pki/ca.pem"
cert = "pki/admin.pem"         # `tiersync pki issue pki --role operator --name admin`
key = "pki/admin.key"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_windows_parse_like_scenario_files() {
        assert_eq!(parse_duration("6h"), Ok(Duration::from_secs(6 * 3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        // Compound and decimal spans, as scenario files write them.
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("2.5h"), Ok(Duration::from_secs(9000)));
        let err = parse_duration("6 parsecs").unwrap_err();
        assert!(err.contains("unknown unit `parsecs`"), "{err}");
        assert!(parse_duration("30").unwrap_err().contains("missing unit"));
        assert_eq!(parse_window("23:00-01:00"), Ok(DailyWindow { start_min: 1380, end_min: 60 }));
        assert_eq!(parse_window("22:00-24:00"), Ok(DailyWindow { start_min: 1320, end_min: 1440 }));
        assert!(parse_window("25:00-01:00").is_err());
    }

    #[test]
    fn config_files_take_scenario_units() {
        let t: Transport = toml::from_str(
            "keepalive = \"1m30s\"\ndead_after = \"2.5m\"\nmax_frame_bytes = \"64MiB\"\n\
             send_queue_bytes = 1048576\n",
        )
        .unwrap();
        assert_eq!(t.keepalive, Duration::from_secs(90));
        assert_eq!(t.dead_after, Duration::from_secs(150));
        assert_eq!(t.max_frame_bytes, 64 << 20);
        assert_eq!(t.send_queue_bytes, 1 << 20);
        let bad = toml::from_str::<Transport>("keepalive = \"15\"\n").unwrap_err();
        assert!(bad.to_string().contains("missing unit"), "{bad}");
    }

    /// The keys a local server's file needs besides its schedule.
    const LOCAL_BASE: &str = "name = \"tokyo\"\nsite = \"tokyo\"\ntimezone = \"Asia/Tokyo\"\n\
        listen = \"127.0.0.1:0\"\nparent = \"127.0.0.1:1\"\nparent_name = \"master\"\n\
        data_dir = \"d\"\npolicy_verify_key = \"k\"\n";

    const TLS: &str = "[tls]\nca = \"ca.pem\"\ncert = \"c.pem\"\nkey = \"c.key\"\n";

    fn local(schedule: &str) -> Result<LocalConfigFile, String> {
        toml::from_str(&format!("{LOCAL_BASE}{schedule}{TLS}")).map_err(|e| e.to_string())
    }

    /// `policy_check = "off"` means no checks, as in scenario files; the
    /// request retry is `retry`, with `request_timeout` still read (but
    /// not both); the defaults are the scenario's.
    #[test]
    fn local_schedule_keys_are_those_of_scenario_files() {
        assert_eq!(local("policy_check = \"off\"\n").unwrap().policy_check, None);
        assert_eq!(local("").unwrap().policy_check, None);
        let c = local("policy_check = \"90m\"\nretry = \"2m\"\n").unwrap();
        assert_eq!(c.policy_check, Some(Duration::from_secs(5400)));
        assert_eq!(c.retry, Duration::from_secs(120));
        let old = local("request_timeout = \"7m\"\n").unwrap();
        assert_eq!(old.retry, Duration::from_secs(420), "the old key is still read");
        let both = local("retry = \"1m\"\nrequest_timeout = \"7m\"\n").unwrap_err();
        assert!(both.contains("duplicate"), "{both}");
        let d = local("").unwrap();
        assert_eq!(d.retry, Duration::from_secs(300));
        assert_eq!(d.stale_after, Duration::from_secs(3 * 86_400));
        assert_eq!(d.log_keep, 1000);
        assert!(d.checks_in_business_hours);
        assert_eq!(d.business_hours.quiet_hours(), QuietHours::OFFICE);
        let bh = local(
            "checks_in_business_hours = false\n[business_hours]\nwindow = \"07:30-19:00\"\n\
             days = [\"sun\", \"mon\"]\n",
        )
        .unwrap();
        let q = bh.business_hours.quiet_hours();
        assert_eq!(q.window, DailyWindow { start_min: 450, end_min: 1140 });
        assert_eq!(q.days, [true, false, false, false, false, false, true]);
        let bad = local("policy_check = \"often\"\n").unwrap_err();
        assert!(bad.contains("policy_check"), "{bad}");
        let mut zero = local("policy_check = \"0s\"\n").unwrap();
        assert_eq!(zero.finish(Path::new("/")).unwrap_err().0, "policy_check");
    }

    /// A misspelt key is an error naming the file, the line and the key,
    /// in every section.
    #[test]
    fn unknown_keys_are_errors_with_file_line_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokyo.toml");
        for (text, line, key) in [
            (format!("{LOCAL_BASE}retyr = \"5m\"\n{TLS}"), 9, "retyr"),
            (format!("{LOCAL_BASE}[business_hours]\ndayz = []\n{TLS}"), 10, "dayz"),
            (format!("{LOCAL_BASE}{TLS}[transport]\nkeepalivee = \"1s\"\n"), 14, "keepalivee"),
        ] {
            std::fs::write(&path, text).unwrap();
            let err = load::<LocalConfigFile>(&path).unwrap_err();
            assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
            let msg = err.to_string();
            assert!(msg.starts_with(&path.display().to_string()), "{msg}");
            assert!(msg.contains(&format!("line {line}")), "{msg}");
            assert!(msg.contains(&format!("`{key}`")), "{msg}");
        }
    }

    #[test]
    fn every_example_parses() {
        let dir = Path::new("/etc/tiersync");
        let check = |text: &str, f: &dyn Fn(&str) -> Result<(), String>| f(text).unwrap();
        check(MASTER_EXAMPLE, &|t| {
            let mut c: MasterConfigFile = toml::from_str(t).map_err(|e| e.to_string())?;
            assert_eq!(c.children.len(), 2);
            c.finish(dir).map_err(|e| e.1)
        });
        check(LOCAL_EXAMPLE, &|t| {
            let mut c: LocalConfigFile = toml::from_str(t).map_err(|e| e.to_string())?;
            assert_eq!(c.policy_check, Some(Duration::from_secs(6 * 3600)));
            assert_eq!(c.retry, Duration::from_secs(300));
            c.finish(dir).map_err(|e| e.1)
        });
        check(CLIENT_EXAMPLE, &|t| {
            let mut c: ClientConfigFile = toml::from_str(t).map_err(|e| e.to_string())?;
            c.finish(dir).map_err(|e| e.1)
        });
        check(OPERATOR_EXAMPLE, &|t| {
            let mut c: OperatorConfigFile = toml::from_str(t).map_err(|e| e.to_string())?;
            c.finish(dir).map_err(|e| e.1)
        });
    }
}
