//! Scenario files: one simulated deployment described in TOML.
//!
//! A scenario names the sites (with time zones, clients and WAN links), the
//! policies that exist at the start, the changes made during the run, the
//! status queries an operator makes and the faults injected. The format is
//! documented key by key in `scenarios/README.md`.
//!
//! Loading is strict: unknown keys, unknown names and impossible values are
//! errors, each pointing at the file, line and column of the key at fault
//! and, for a misspelling, naming the closest valid key. A scenario that
//! loads is one the simulator can run without further checks.
//!
//! ```no_run
//! # use std::path::Path;
//! # use tiersync_simnet::scenario::Scenario;
//! let overrides = [("client.poll".to_owned(), "15m".to_owned())];
//! let path = Path::new("scenarios/figure-1.toml");
//! let scenario = Scenario::load_with_overrides(path, &overrides)?;
//! println!("{} clients at {} sites", scenario.total_clients(), scenario.sites.len());
//! # Ok::<(), tiersync_simnet::scenario::ScenarioError>(())
//! ```

// A scenario error is built at most once per load, never on a hot path, so
// its size costs nothing; boxing it would only make matching on it clumsier.
#![allow(clippy::result_large_err)]

mod background;
mod document;
mod error;
mod model;
mod validate;

use std::path::Path;

use serde::Deserialize;
use serde::de::IgnoredAny;
use tiersync_engine::Time;
use toml::Spanned;
use toml::de::{DeValue, ValueDeserializer};

pub use background::{Background, BackgroundProfile};
pub use error::{Location, Problem, ScenarioError};
pub use model::{
    BusinessHours, Change, ClientSettings, CrashFault, CrashTarget, DuplicateFault, Fault, Lan,
    LocalSettings, LossFault, Master, Offline, PartitionFault, Policy, Site, SkewFault, SkewTarget,
    StatusKind, StatusQuery, Strategy, Wan, Weekday,
};
pub(crate) use validate::MAX_TRACKED;

use crate::units::Span;
use document::{Document, field_names, key_path, nearest};
use error::FAULT_KINDS;
use model::{ChangeDoc, SiteDoc, SkewFaultDoc, SkewNodeName, de_time};

/// A validated scenario.
///
/// Names are checked (every parent, origin and drill-down names a defined
/// site; every change names a policy), the sites form one tree rooted at the
/// master's site, and every instant lies within the run.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// A short name used in reports and output folders.
    pub name: String,
    /// The one seed every random choice of the run derives from.
    pub seed: u64,
    /// Start of the run (UTC).
    pub start: Time,
    /// Length of the run.
    pub duration: Span,
    /// The distribution strategy simulated unless the caller picks another.
    pub strategy: Strategy,
    /// Width of the metering time buckets.
    pub bucket: Span,
    /// Working hours, for reporting traffic in and out of office hours.
    pub business_hours: BusinessHours,
    /// The master policy server.
    pub master: Master,
    /// Client behaviour.
    pub client: ClientSettings,
    /// Local policy server behaviour.
    pub local: LocalSettings,
    /// Sites in file order; each knows its parent's index.
    pub sites: Vec<Site>,
    /// Policies present at the start, in file order.
    pub policies: Vec<Policy>,
    /// Changes in file order (not necessarily in time order).
    pub changes: Vec<Change>,
    /// Operator status queries in file order.
    pub status_queries: Vec<StatusQuery>,
    /// Faults in file order.
    pub faults: Vec<Fault>,
    /// Index of the root site, the master's.
    root: usize,
    /// Per site, whether it runs a local server under `tiered`.
    local_server: Vec<bool>,
}

/// The top level of a scenario file as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ScenarioDoc {
    name: String,
    seed: u64,
    #[serde(deserialize_with = "de_time")]
    start: Time,
    duration: Span,
    #[serde(default)]
    strategy: Strategy,
    /// Default one minute: it resolves the bursts of a sync window, which
    /// last minutes, while a week's run stays at about 10,000 buckets.
    #[serde(default = "default_bucket")]
    bucket: Span,
    #[serde(default)]
    business_hours: BusinessHours,
    master: Master,
    client: ClientSettings,
    local: LocalSettings,
    #[serde(default)]
    site: Vec<SiteDoc>,
    #[serde(default)]
    policy: Vec<Policy>,
    #[serde(default)]
    change: Vec<ChangeDoc>,
    #[serde(default)]
    status_query: Vec<StatusQuery>,
    /// Faults are read separately, per kind, before this struct; the field
    /// is here so that `fault` counts as a known key in suggestions.
    #[serde(default)]
    #[allow(dead_code)]
    fault: Option<IgnoredAny>,
}

fn default_bucket() -> Span {
    Span::from_mins(1)
}

/// Top-level keys that an override may set directly.
const TOP_LEVEL_OVERRIDES: &[&str] = &["name", "seed", "start", "duration", "strategy", "bucket"];

impl Scenario {
    /// Reads and validates the scenario file at `path`.
    pub fn load(path: &Path) -> Result<Scenario, ScenarioError> {
        Scenario::load_with_overrides(path, &[])
    }

    /// Reads the file at `path`, applies `overrides` and validates.
    ///
    /// Each override is a dotted key and a value, such as (`client.poll`,
    /// `15m`). Keys are limited to the top-level settings and the `client`,
    /// `local`, `master` and `business_hours` tables; sites, policies and
    /// other arrays cannot be overridden. A value that parses as a TOML
    /// value is used as one (`7`, `true`, `"15m"`), anything else as a
    /// string (`15m`).
    pub fn load_with_overrides(
        path: &Path,
        overrides: &[(String, String)],
    ) -> Result<Scenario, ScenarioError> {
        let text = std::fs::read_to_string(path)
            .map_err(|source| ScenarioError::Read { path: path.to_owned(), source })?;
        Scenario::from_str_with_overrides(&text, &path.display().to_string(), overrides)
    }

    /// Validates scenario `text`; `file_name` is used in error messages.
    pub fn from_str_named(text: &str, file_name: &str) -> Result<Scenario, ScenarioError> {
        Scenario::from_str_with_overrides(text, file_name, &[])
    }

    /// Validates scenario `text` with overrides applied, as
    /// [`Scenario::load_with_overrides`] does for a file.
    pub fn from_str_with_overrides(
        text: &str,
        file_name: &str,
        overrides: &[(String, String)],
    ) -> Result<Scenario, ScenarioError> {
        let mut doc = Document::parse(text, file_name)?;

        // Splice the overrides into the parsed document, so that the file
        // and the overrides go through one set of checks.
        let valid_keys = override_keys();
        for (key, value) in overrides {
            let key = key.trim();
            if !valid_keys.iter().any(|k| k == key) {
                let suggestion = nearest(key, valid_keys.iter().map(String::as_str));
                let key = key.to_owned();
                return Err(ScenarioError::UnknownOverride { key, suggestion });
            }
            doc.apply_override(key, value.trim())?;
        }

        // Deserialise everything but the faults, whose keys depend on their
        // kind and are read one by one below.
        let mut root = doc.root().clone();
        root.remove("fault");
        let top = toml::de::Deserializer::from(Spanned::new(0..0, root.clone()));
        let raw = ScenarioDoc::deserialize(top);
        let faults = read_faults(&doc);

        // Key-level errors anywhere in the file are reported together;
        // the checks across keys below need a file without them.
        match (raw, faults) {
            (Ok(raw), Ok(faults)) => validate::build(&doc, raw, faults),
            (raw, faults) => {
                let mut errors = Vec::new();
                if let Err(first) = raw {
                    let all = doc
                        .key_errors::<ScenarioDoc>(&Spanned::new(0..0, DeValue::Table(root)), &[]);
                    errors.extend(if all.is_empty() { vec![doc.de_error(&first)] } else { all });
                }
                errors.extend(faults.err().unwrap_or_default());
                Err(ScenarioError::from_list(errors)
                    .unwrap_or_else(|| unreachable!("a failed read has an error")))
            }
        }
    }

    /// End of the run: `start + duration` (exclusive).
    pub fn end(&self) -> Time {
        self.start + self.duration.as_duration()
    }

    /// The root site, where the master runs.
    pub fn root_site(&self) -> &Site {
        &self.sites[self.root]
    }

    /// Index of the root site in [`Scenario::sites`].
    pub fn root_index(&self) -> usize {
        self.root
    }

    /// Whether site `index` runs a local server under the tiered strategy:
    /// it has clients (the master's own site included) or, below the root,
    /// relays for a site that runs one; and it does not say
    /// `local_servers = 0`. The flat strategies run no local server.
    pub fn runs_local_server(&self, index: usize) -> bool {
        self.local_server.get(index).copied().unwrap_or(false)
    }

    /// The index of the site called `name`.
    pub fn site_index(&self, name: &str) -> Option<usize> {
        self.sites.iter().position(|s| s.name == name)
    }

    /// The site called `name`.
    pub fn site(&self, name: &str) -> Option<&Site> {
        self.sites.iter().find(|s| s.name == name)
    }

    /// Indices of the sites whose parent is site `index`, in file order.
    pub fn children(&self, index: usize) -> impl Iterator<Item = usize> + '_ {
        self.sites
            .iter()
            .enumerate()
            .filter(move |(_, s)| s.parent_index == Some(index))
            .map(|(i, _)| i)
    }

    /// The policy with id `id`, among those present at the start.
    pub fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    /// Number of clients in the whole scenario.
    pub fn total_clients(&self) -> u64 {
        self.sites.iter().map(Site::client_count).sum()
    }
}

/// Every dotted key an override may set, taken from the model's own field
/// lists so that a new setting is overridable without editing this.
fn override_keys() -> Vec<String> {
    let mut keys: Vec<String> = TOP_LEVEL_OVERRIDES.iter().map(|k| (*k).to_owned()).collect();
    let tables = [
        ("master", field_names::<Master>()),
        ("client", field_names::<ClientSettings>()),
        ("client.offline", field_names::<Offline>()),
        ("local", field_names::<LocalSettings>()),
        ("business_hours", field_names::<BusinessHours>()),
    ];
    for (table, fields) in tables {
        keys.extend(fields.iter().map(|f| format!("{table}.{f}")));
    }
    keys
}

/// Reads each `[[fault]]`: its `kind` picks the struct, which then refuses
/// keys that do not belong to that kind.
/// Every fault's errors are collected, not only the first fault's.
fn read_faults(doc: &Document<'_>) -> Result<Vec<Fault>, Vec<ScenarioError>> {
    let Some(value) = doc.root().get("fault") else {
        return Ok(Vec::new());
    };
    let at = doc.locate(value.span().start);
    let DeValue::Array(items) = value.get_ref() else {
        let (key, table) = doc.describe(&key_path!["fault"]);
        let message = "expected [[fault]] tables".to_owned();
        return Err(vec![ScenarioError::BadValue { at, key, table, message }]);
    };
    let mut faults = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match read_fault(doc, i, item) {
            Ok(f) => faults.push(f),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(faults) } else { Err(errors) }
}

fn read_fault<'a>(
    doc: &Document<'a>,
    index: usize,
    item: &Spanned<DeValue<'a>>,
) -> Result<Fault, Vec<ScenarioError>> {
    read_fault_kind(doc, index, item).map_err(|e| vec![e])?
}

/// Reads the kind of a fault; on success, the result of reading the rest
/// as that kind, with all of its key errors.
#[allow(clippy::type_complexity)]
fn read_fault_kind<'a>(
    doc: &Document<'a>,
    index: usize,
    item: &Spanned<DeValue<'a>>,
) -> Result<Result<Fault, Vec<ScenarioError>>, ScenarioError> {
    let DeValue::Table(table) = item.get_ref() else {
        let (key, table) = doc.describe(&key_path!["fault", index]);
        return Err(ScenarioError::BadValue {
            at: doc.locate(item.span().start),
            key,
            table,
            message: "expected a table".to_owned(),
        });
    };

    // Find the kind, which must be a known name.
    let kind_path = key_path!["fault", index, "kind"];
    let Some(kind) = table.get("kind") else {
        return Err(ScenarioError::MissingKey {
            at: doc.locate(item.span().start),
            key: "kind".to_owned(),
            table: doc.table_name(&key_path!["fault", index]),
            expected: Some(format!("one of {}", error::backticked(FAULT_KINDS))),
        });
    };
    let Some(kind_name) = kind.get_ref().as_str() else {
        let (key, table) = doc.describe(&kind_path);
        return Err(ScenarioError::BadValue {
            at: doc.locate(kind.span().start),
            key,
            table,
            message: format!("expected a string, one of {}", error::backticked(FAULT_KINDS)),
        });
    };

    // Deserialise the other keys as that kind's struct.
    let mut rest = table.clone();
    rest.remove("kind");
    let rest = Spanned::new(item.span(), DeValue::Table(rest));
    let base = key_path!["fault", index];
    fn read<'a, T: for<'de> Deserialize<'de>>(
        doc: &Document<'a>,
        rest: &Spanned<DeValue<'a>>,
        base: &[document::Seg],
        wrap: fn(T) -> Fault,
    ) -> Result<Fault, Vec<ScenarioError>> {
        match T::deserialize(ValueDeserializer::from(rest.clone())) {
            Ok(t) => Ok(wrap(t)),
            Err(first) => {
                let all = doc.key_errors::<T>(rest, base);
                Err(if all.is_empty() { vec![doc.de_error(&first)] } else { all })
            }
        }
    }
    let fault = match kind_name {
        "partition" => read::<PartitionFault>(doc, &rest, &base, Fault::Partition),
        "loss" => read::<LossFault>(doc, &rest, &base, Fault::Loss),
        "duplicate" => read::<DuplicateFault>(doc, &rest, &base, Fault::Duplicate),
        "crash" => read::<CrashFault>(doc, &rest, &base, Fault::Crash),
        "skew" => {
            // Read as written, then turned into its target, which may fail
            // on its own (both `node` and `client`, or neither).
            let raw = match SkewFaultDoc::deserialize(ValueDeserializer::from(rest.clone())) {
                Ok(raw) => raw,
                Err(first) => {
                    let all = doc.key_errors::<SkewFaultDoc>(&rest, &base);
                    return Ok(Err(if all.is_empty() { vec![doc.de_error(&first)] } else { all }));
                }
            };
            skew_fault(doc, index, raw).map(Fault::Skew).map_err(|e| vec![e])
        }
        other => {
            let (key, table) = doc.describe(&kind_path);
            return Err(ScenarioError::Invalid {
                at: doc.locate(kind.span().start),
                key,
                table,
                problem: Problem::UnknownFaultKind {
                    kind: other.to_owned(),
                    suggestion: nearest(other, FAULT_KINDS.iter().copied()),
                },
            });
        }
    };
    Ok(fault)
}

/// A skew fault names its node with exactly one of `node` and `client`.
fn skew_fault(
    doc: &Document<'_>,
    index: usize,
    raw: SkewFaultDoc,
) -> Result<SkewFault, ScenarioError> {
    let invalid = |path: &[document::Seg], problem: Problem| {
        let at = doc.locate(doc.span_of(path));
        let (key, table) = doc.describe(path);
        ScenarioError::Invalid { at, key, table, problem }
    };
    let node = match (raw.node, raw.client) {
        (Some(_), Some(_)) => {
            let path = key_path!["fault", index, "client"];
            return Err(invalid(&path, Problem::NodeAndClient));
        }
        (None, None) => {
            let path = key_path!["fault", index, "offset"];
            return Err(invalid(&path, Problem::SkewWithoutNode));
        }
        (Some(SkewNodeName::Local), None) => SkewTarget::Local,
        (Some(SkewNodeName::Clients), None) => SkewTarget::Clients,
        (Some(SkewNodeName::Master), None) => SkewTarget::Master,
        (None, Some(n)) => SkewTarget::Client(n),
    };
    Ok(SkewFault { site: raw.site, node, offset: raw.offset })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::{Bandwidth, ByteSize, Probability};

    const FIGURE_1: &str = include_str!("../../scenarios/figure-1.toml");

    fn figure_1() -> Scenario {
        match Scenario::from_str_named(FIGURE_1, "figure-1.toml") {
            Ok(s) => s,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn figure_1_top_level_and_defaults() {
        let s = figure_1();
        assert_eq!(s.name, "figure-1");
        assert_eq!(s.seed, 1);
        assert_eq!(s.start.to_string(), "2026-03-02T00:00:00Z");
        assert_eq!(s.end().to_string(), "2026-03-09T00:00:00Z");
        assert_eq!(s.strategy, Strategy::Tiered);
        assert_eq!(s.bucket, Span::from_mins(1));
        assert_eq!(s.business_hours.window.to_string(), "08:00-18:00");
        assert_eq!(s.business_hours.days.len(), 5);
        assert_eq!(s.master.site, "hq");
        assert_eq!(s.master.log_keep, 1000);
    }

    #[test]
    fn figure_1_client_and_local() {
        let s = figure_1();
        assert_eq!(s.client.poll, Span::from_secs(3600));
        assert_eq!(s.client.splay, Span::from_mins(30));
        assert_eq!(s.client.status_every, Span::from_secs(3600));
        assert_eq!(s.client.inventory, ByteSize::new(4096));
        assert_eq!(s.client.offline, None);
        assert_eq!(s.client.engine_version, 1);
        assert_eq!(s.local.sync_window.to_string(), "02:00-04:00");
        assert_eq!(s.local.policy_check, Some(Span::from_secs(6 * 3600)));
        assert_eq!(s.local.stale_after, Span::from_secs(3 * 86_400));
        assert_eq!(s.local.retry, Span::from_mins(5));
        assert_eq!(s.local.status_deadline, Span::from_secs(30));
    }

    #[test]
    fn figure_1_sites() {
        let s = figure_1();
        let names: Vec<_> = s.sites.iter().map(|x| x.name.as_str()).collect();
        assert_eq!(names, ["hq", "a", "b", "c"]);
        assert_eq!(s.root_site().name, "hq");
        assert_eq!(s.root_index(), 0);
        let parents: Vec<_> = s.sites.iter().map(|x| x.parent_index).collect();
        assert_eq!(parents, [None, Some(0), Some(0), Some(0)]);
        assert_eq!(s.children(0).collect::<Vec<_>>(), [1, 2, 3]);
        assert_eq!(s.total_clients(), 1500 + 200 + 2500 + 400 + 800);

        let a = s.site("a").unwrap();
        assert_eq!(a.timezone_name, "Europe/London");
        let platforms: Vec<_> = a.clients.keys().map(String::as_str).collect();
        assert_eq!(platforms, ["macos", "windows"]);
        let wan = a.wan.as_ref().unwrap();
        assert_eq!(wan.bandwidth, Bandwidth::new(50_000_000).unwrap());
        assert_eq!(wan.latency, Span::from_millis(80));
        assert_eq!(wan.loss, Probability::new(0.001).unwrap());
        assert_eq!(wan.jitter, Span::ZERO);
        assert_eq!(wan.background, Background::Profile(BackgroundProfile::Office));
        assert_eq!(a.lan, Lan::default());
        assert_eq!(a.local_servers, 1);
        assert!(s.root_site().wan.is_none());
        assert_eq!(s.site("b").unwrap().wan.as_ref().unwrap().loss, Probability::ZERO);
    }

    #[test]
    fn figure_1_policies_changes_queries_faults() {
        let s = figure_1();
        let av = s.policy("antivirus").unwrap();
        assert_eq!(av.content, ByteSize::new(200 * 1024));
        assert_eq!(av.platforms, ["windows", "macos", "linux"]);
        assert_eq!(av.params.get("heuristics"), Some(&toml::Value::Boolean(true)));
        assert_eq!(s.policy("firewall").unwrap().content, ByteSize::new(8192));

        assert_eq!(s.changes.len(), 2);
        assert_eq!(s.changes[0].origin, "hq");
        assert!(!s.changes[0].creates_policy);
        assert_eq!(s.changes[1].origin, "b");
        assert_eq!(s.changes[1].at.to_string(), "2026-03-05T09:30:00Z");
        let allow = s.changes[1].params.as_ref().unwrap().get("allow").unwrap();
        assert_eq!(allow.as_array().unwrap().len(), 1);

        assert_eq!(s.status_queries[0].kind, StatusKind::Current);
        let Fault::Partition(p) = &s.faults[0] else {
            panic!("expected a partition, got {:?}", s.faults[0]);
        };
        assert_eq!(p.site, "c");
        assert_eq!(p.to.saturating_since(p.from), std::time::Duration::from_secs(5 * 3600));
    }

    #[test]
    fn time_zones_carry_daylight_saving_rules() {
        let s = figure_1();
        let london = &s.site("a").unwrap().timezone;
        let summer = "2026-07-01T12:00:00Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!(london.to_offset(summer).seconds(), 3600);
    }
}
