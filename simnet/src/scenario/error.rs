//! Errors from loading a scenario, each pointing at the file, line and
//! column of the key at fault.
//!
//! The user's file is the one at fault in every case here, so every message
//! says where to look and what was expected, and never assumes the reader
//! knows the Rust names of the model.

use std::fmt::{self, Display};
use std::path::PathBuf;

use tiersync_engine::Time;

/// Where in the input an error was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// A place in the scenario file; line and column count from 1, and the
    /// column counts characters, as editors do.
    File {
        /// The file name as given to the loader.
        file: String,
        /// Line number, from 1.
        line: usize,
        /// Column number in characters, from 1.
        column: usize,
    },
    /// A value given as an override rather than in the file.
    Override {
        /// The dotted key of the override, such as `client.poll`.
        key: String,
        /// The value text as given.
        value: String,
    },
}

impl Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::File { file, line, column } => write!(f, "{file}:{line}:{column}"),
            Location::Override { key, value } => write!(f, "override `{key}={value}`"),
        }
    }
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{}: cannot read the scenario: {source}", path.display())]
    Read {
        /// The path that was opened.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// The text is not valid TOML.
    #[error("{at}: invalid TOML: {message}")]
    Syntax {
        /// Where the parser stopped.
        at: Location,
        /// The parser's explanation.
        message: String,
    },

    /// A key that the format does not have, often a misspelling.
    #[error("{at}: unknown key `{key}` in {table}{}", key_hint(suggestion, expected))]
    UnknownKey {
        /// Where the key is written.
        at: Location,
        /// The key as written.
        key: String,
        /// The table holding it, as a reader would name it (`[client]`).
        table: String,
        /// The closest valid key, when one is close enough to be a typo.
        suggestion: Option<String>,
        /// Every valid key of that table.
        expected: Vec<String>,
    },

    /// A required key is absent.
    #[error("{at}: missing key `{key}` in {table}{}", expected_hint(expected))]
    MissingKey {
        /// The table that lacks the key.
        at: Location,
        /// The absent key.
        key: String,
        /// The table that lacks it.
        table: String,
        /// What the key takes, with an example (`an IANA time zone name
        /// such as "Europe/London"`), when the format knows the key.
        expected: Option<String>,
    },

    /// A value of the wrong type or form (a bad unit, a string for a number).
    #[error("{at}: bad value for `{key}` in {table}: {message}")]
    BadValue {
        /// Where the value is written.
        at: Location,
        /// The key holding the value.
        key: String,
        /// The table holding the key.
        table: String,
        /// What was expected and what was found.
        message: String,
    },

    /// A well-formed value that contradicts the rest of the scenario.
    #[error("{at}: `{key}` in {table}: {problem}")]
    Invalid {
        /// Where the offending key or value is written.
        at: Location,
        /// The key at fault.
        key: String,
        /// The table holding the key.
        table: String,
        /// What is wrong.
        problem: Problem,
    },

    /// An override names a key that overrides cannot set.
    #[error("override `{key}`: no such key{}", suggest_hint(suggestion))]
    UnknownOverride {
        /// The dotted key as given.
        key: String,
        /// The closest key that can be overridden.
        suggestion: Option<String>,
    },

    /// An override cannot be applied to this file.
    #[error("override `{key}`: {message}")]
    BadOverride {
        /// The dotted key as given.
        key: String,
        /// Why it cannot be applied.
        message: String,
    },

    /// More than one error in one file: every key-level error (unknown,
    /// missing and bad keys) of every table, or every TOML syntax error the
    /// parser could recover from, in file order. Shown one per line, then
    /// their count.
    #[error("{}", several(errors))]
    Several {
        /// The errors, each with its own location; never fewer than two.
        errors: Vec<ScenarioError>,
    },
}

impl ScenarioError {
    /// One error for a list of them: the error itself when there is one,
    /// [`ScenarioError::Several`] for more, sorted by place in the file
    /// (overrides after the file) with repeats removed. `None` for none.
    pub(crate) fn from_list(mut errors: Vec<ScenarioError>) -> Option<ScenarioError> {
        // A misspelt key is also a missing one; its "did you mean" says it all.
        let misspelt: Vec<(String, String)> = errors
            .iter()
            .filter_map(|e| match e {
                ScenarioError::UnknownKey { table, suggestion: Some(s), .. } => {
                    Some((table.clone(), s.clone()))
                }
                _ => None,
            })
            .collect();
        errors.retain(|e| match e {
            ScenarioError::MissingKey { table, key, .. } => {
                !misspelt.iter().any(|(t, k)| t == table && k == key)
            }
            _ => true,
        });
        errors.sort_by_key(|e| e.sort_key());
        errors.dedup_by(|a, b| a.to_string() == b.to_string());
        match errors.len() {
            0 => None,
            1 => errors.pop(),
            _ => Some(ScenarioError::Several { errors }),
        }
    }

    /// The errors this one stands for: itself, or each of [`Several`].
    ///
    /// [`Several`]: ScenarioError::Several
    pub fn errors(&self) -> Vec<&ScenarioError> {
        match self {
            ScenarioError::Several { errors } => errors.iter().collect(),
            other => vec![other],
        }
    }

    /// Where the error is, for ordering: file errors by line and column,
    /// then override errors, then the rest.
    fn sort_key(&self) -> (u8, usize, usize) {
        let at = match self {
            ScenarioError::Syntax { at, .. }
            | ScenarioError::UnknownKey { at, .. }
            | ScenarioError::MissingKey { at, .. }
            | ScenarioError::BadValue { at, .. }
            | ScenarioError::Invalid { at, .. } => Some(at),
            _ => None,
        };
        match at {
            Some(Location::File { line, column, .. }) => (0, *line, *column),
            Some(Location::Override { .. }) => (1, 0, 0),
            None => (2, 0, 0),
        }
    }
}

/// The lines of several errors and their count.
fn several(errors: &[ScenarioError]) -> String {
    let mut out: Vec<String> = errors.iter().map(ToString::to_string).collect();
    out.push(format!("{} errors", errors.len()));
    out.join("\n")
}

/// Formats "; expected ..." or nothing.
fn expected_hint(expected: &Option<String>) -> String {
    match expected {
        Some(e) => format!("; expected {e}"),
        None => String::new(),
    }
}

/// What a key of the format takes, in words, and a valid stand-in value.
///
/// The words complete a "missing key" message. The stand-in (TOML text)
/// takes the place of a missing or bad value while the rest of the file is
/// checked, so that one error does not hide the others; it is never used
/// to run anything, since a file with errors is refused.
pub(crate) struct KeyForm {
    /// "an IANA time zone name such as \"Europe/London\""
    pub(crate) words: &'static str,
    /// "\"UTC\""
    pub(crate) stand_in: &'static str,
}

/// The form of `key` in the table named `table` (as [`Location`]-style
/// table names: `[client]`, `[[site]] "a"`), for the keys that are
/// required somewhere; `None` for keys this list does not know.
pub(crate) fn key_form(key: &str, table: &str) -> Option<KeyForm> {
    const INSTANT: &str = "an RFC 3339 time with a UTC offset, such as 2026-03-02T00:00:00Z";
    const INSTANT_STAND_IN: &str = "2026-01-01T00:00:00Z";
    let form = |words, stand_in| Some(KeyForm { words, stand_in });
    match key {
        "name" if table.contains("site") => {
            form("a site name in quotes, such as \"tokyo\"", "\"x\"")
        }
        "name" => form("a short name in quotes, such as \"figure-1\"", "\"x\""),
        "seed" => form("a whole number ≥ 0, such as 1", "0"),
        "start" | "at" | "from" | "to" => form(INSTANT, INSTANT_STAND_IN),
        "duration" => form("a duration such as \"7d\"", "\"1d\""),
        "master" => form("a [master] table with `site`", "{ site = \"x\" }"),
        "client" => form(
            "a [client] table with `poll`, `splay`, `status_every` and `inventory`",
            "{ poll = \"1h\", splay = \"0s\", status_every = \"1h\", inventory = \"1KiB\" }",
        ),
        "local" => form("a [local] table with `sync_window`", "{ sync_window = \"02:00-04:00\" }"),
        "site" => form("a site name in quotes, such as \"hq\"", "\"x\""),
        "poll" => form("a duration such as \"1h\"", "\"1h\""),
        "splay" => form("a duration such as \"30m\" (\"0s\" for none)", "\"0s\""),
        "status_every" => form("a duration such as \"1h\"", "\"1h\""),
        "inventory" => form("a byte size such as \"4KiB\"", "\"1KiB\""),
        "share" => form("a number from 0 to 1, such as 0.4", "0.5"),
        "off" => form("a duration such as \"3d\"", "\"1d\""),
        "every" => form("a duration such as \"8d\"", "\"2d\""),
        "sync_window" => {
            form("a local time-of-day window such as \"02:00-04:00\"", "\"02:00-04:00\"")
        }
        "timezone" => form("an IANA time zone name such as \"Europe/London\"", "\"UTC\""),
        "bandwidth" => form("a bandwidth such as \"50Mbit/s\"", "\"1Mbit/s\""),
        "latency" => form("a duration such as \"80ms\"", "\"1ms\""),
        "id" => form("a policy id in quotes, such as \"antivirus\"", "\"x\""),
        "platforms" => {
            form("a list of platform names, such as [\"windows\", \"linux\"]", "[\"x\"]")
        }
        "policy" => form("a policy id in quotes, such as \"antivirus\"", "\"x\""),
        "kind" if table.contains("fault") => form(
            "one of \"partition\", \"loss\", \"duplicate\", \"crash\", \"skew\"",
            "\"partition\"",
        ),
        "kind" => form("\"current\" or \"historical\"", "\"current\""),
        "rate" => form("a number from 0 to 1, such as 0.01", "0"),
        "node" if table.contains("skew") => form("\"local\" or \"clients\"", "\"local\""),
        "node" => form("\"local\", \"clients\" or a share of clients from 0 to 1", "\"local\""),
        "restart_after" => form("a duration such as \"10h\"", "\"1h\""),
        "offset" => form("a signed duration such as \"-90s\" or \"+2m\"", "\"1s\""),
        _ => None,
    }
}

/// serde's wording of a wrong value (`invalid type: string "one",
/// expected u64`) in words a scenario's author uses (`expected a whole
/// number ≥ 0, found the string "one"`). Other messages are kept.
pub(crate) fn humanise(message: &str) -> String {
    let rest =
        message.strip_prefix("invalid type: ").or_else(|| message.strip_prefix("invalid value: "));
    let Some(rest) = rest else { return message.to_owned() };
    let Some((found, expected)) = rest.rsplit_once(", expected ") else {
        return message.to_owned();
    };
    format!("expected {}, found {}", expected_words(expected), found_words(found))
}

/// The expected part of a serde message, in words.
fn expected_words(expected: &str) -> String {
    let words = match expected {
        "u8" => "a whole number from 0 to 255",
        "u16" => "a whole number from 0 to 65,535",
        "u32" => "a whole number from 0 to 4,294,967,295",
        "u64" | "u128" | "usize" => "a whole number ≥ 0",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a string" | "string" => "a string in quotes",
        "a character" | "char" => "a single character in quotes",
        "a sequence" => "a list in square brackets, such as [\"a\", \"b\"]",
        "a map" => "a table, such as { key = \"value\" }",
        other if other.starts_with("struct ") => "a table",
        other => return other.to_owned(),
    };
    words.to_owned()
}

/// The found part of a serde message, in words.
fn found_words(found: &str) -> String {
    let ticked = |prefix: &str| found.strip_prefix(prefix).map(|v| v.trim_matches('`').to_owned());
    if let Some(s) = found.strip_prefix("string ") {
        return format!("the string {s}");
    }
    if let Some(v) = ticked("integer ").or_else(|| ticked("floating point ")) {
        return v;
    }
    if let Some(v) = ticked("boolean ") {
        return format!("`{v}`");
    }
    match found {
        "sequence" => "a list".to_owned(),
        "map" => "a table".to_owned(),
        other => other.to_owned(),
    }
}

/// Formats "; did you mean `x`?" or the list of valid keys.
fn key_hint(suggestion: &Option<String>, expected: &[String]) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None if expected.is_empty() => "; this table takes no keys".to_owned(),
        None => format!("; expected one of {}", backticked(expected)),
    }
}

/// Formats "; did you mean `x`?" or nothing.
fn suggest_hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        None => String::new(),
    }
}

/// Joins names as "`a`, `b`, `c`".
pub(crate) fn backticked<S: AsRef<str>>(names: &[S]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{}`", n.as_ref())).collect();
    quoted.join(", ")
}

/// A semantic problem: the file parses, but does not describe a runnable
/// deployment.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Problem {
    /// A time zone name missing from the bundled IANA database.
    #[error("unknown time zone `{name}`{}", suggest_hint(suggestion))]
    UnknownTimeZone {
        /// The name as written.
        name: String,
        /// The closest known zone name.
        suggestion: Option<String>,
    },
    /// A reference to a site that is not defined.
    #[error("no site is named `{name}`{}", suggest_hint(suggestion))]
    UnknownSite {
        /// The name as written.
        name: String,
        /// The closest defined site name.
        suggestion: Option<String>,
    },
    /// Two sites share a name.
    #[error("site `{name}` is already defined on line {first_line}")]
    DuplicateSite {
        /// The repeated name.
        name: String,
        /// Line of the first definition.
        first_line: usize,
    },
    /// Two policies share an id.
    #[error("policy `{id}` is already defined on line {first_line}")]
    DuplicatePolicy {
        /// The repeated id.
        id: String,
        /// Line of the first definition.
        first_line: usize,
    },
    /// Following `parent` links comes back to where it started.
    #[error("the parent links form a cycle: {}", chain.join(" -> "))]
    ParentCycle {
        /// Site names along the loop, ending where it began.
        chain: Vec<String>,
    },
    /// A second site without a parent.
    #[error(
        "site `{name}` has no `parent`, but `{root}` is already the root; \
         only the master's site may be without a parent"
    )]
    SecondRoot {
        /// The site without a parent.
        name: String,
        /// The first site without a parent.
        root: String,
    },
    /// The master is not at the root of the site tree.
    #[error(
        "the master must be at the root site `{root}` (the one without a parent), \
         not at `{master}`"
    )]
    MasterNotAtRoot {
        /// The master's site as written.
        master: String,
        /// The site without a parent.
        root: String,
    },
    /// A child site without a WAN link to its parent.
    #[error(
        "site `{site}` has parent `{parent}`, so it needs a `wan` table \
         with at least `bandwidth` and `latency`"
    )]
    MissingWan {
        /// The site without a link.
        site: String,
        /// Its parent.
        parent: String,
    },
    /// A WAN link on the root, which has no parent to link to.
    #[error("site `{site}` is the root and has no parent to link to; remove its `wan`")]
    WanOnRoot {
        /// The root site.
        site: String,
    },
    /// A scenario without any site.
    #[error("a scenario needs at least one [[site]]")]
    NoSites,
    /// A change for a policy that neither exists nor is created by it.
    #[error(
        "no policy has id `{id}`, and the change gives no `platforms` to create it{}",
        suggest_hint(suggestion)
    )]
    UnknownPolicy {
        /// The id as written.
        id: String,
        /// The closest defined policy id.
        suggestion: Option<String>,
    },
    /// An instant outside `[start, start + duration)`.
    #[error("{at} is outside the run, which goes from {start} to {end}")]
    OutsideRun {
        /// The instant given.
        at: Time,
        /// Start of the run.
        start: Time,
        /// End of the run (exclusive).
        end: Time,
    },
    /// A site without a local server, named where one is needed (a change's
    /// origin, a crash or skew of `local`).
    #[error(
        "site `{site}` has no local server (it has no clients and relays for no site \
         that has one, or `local_servers = 0`)"
    )]
    NoLocalServer {
        /// The site named.
        site: String,
    },
    /// A platform-specific setting for a platform the policy does not target.
    #[error("policy `{policy}` does not target platform `{platform}`")]
    UnknownPlatform {
        /// The policy id.
        policy: String,
        /// The platform named.
        platform: String,
    },
    /// A list that must name at least one item is empty.
    #[error("the list must not be empty")]
    EmptyList,
    /// A fault kind that does not exist.
    #[error(
        "unknown fault kind `{kind}`; kinds are {}{}",
        backticked(FAULT_KINDS),
        suggest_hint(suggestion)
    )]
    UnknownFaultKind {
        /// The kind as written.
        kind: String,
        /// The closest fault kind.
        suggestion: Option<String>,
    },
    /// A fault on the root site's uplink, which does not exist.
    #[error("site `{site}` is the root and has no uplink for a `{kind}` fault")]
    NoUplink {
        /// The root site.
        site: String,
        /// The fault kind.
        kind: &'static str,
    },
    /// A time interval that ends before it starts.
    #[error("`to` ({to}) must be after `from` ({from})")]
    EmptyInterval {
        /// Start of the interval.
        from: Time,
        /// End of the interval.
        to: Time,
    },
    /// A drill-down that names both a site and a client.
    #[error("give either `site` or `client`, not both")]
    SiteAndClient,
    /// A client number beyond the scenario's client count.
    #[error("client {client} does not exist; clients are numbered 0 to {last}")]
    NoSuchClient {
        /// The number given.
        client: u64,
        /// The largest valid number.
        last: u64,
    },
    /// A scenario without any client, queried for one.
    #[error("the scenario has no clients")]
    NoClients,
    /// A duration that must be greater than zero.
    #[error("it must be greater than zero")]
    Zero,
    /// A skew fault that names both a kind of node and one client.
    #[error("give either `node` or `client`, not both")]
    NodeAndClient,
    /// A skew fault that names no node.
    #[error(
        "a skew fault needs `node` (`local`, `clients` or `master`) or `client` (a client \
         number within the site, from 0)"
    )]
    SkewWithoutNode,
    /// `node = "master"` at a site that is not the master's.
    #[error("`node = \"master\"` names the master, which runs at site `{master}`, not `{site}`")]
    MasterElsewhere {
        /// The site the fault names.
        site: String,
        /// The master's site.
        master: String,
    },
    /// A client number beyond the site's client count.
    #[error("site `{site}` has {count} clients, numbered from 0; there is no client {client}")]
    NoSuchSiteClient {
        /// The site named.
        site: String,
        /// The number given.
        client: u32,
        /// Clients at the site.
        count: u64,
    },
    /// A site asking for more local servers than the simulator builds.
    #[error(
        "site `{site}` asks for {count} local servers; the simulator runs at most one per \
         site: write `local_servers = 1`, or 0 to serve its clients from the parent's server"
    )]
    SeveralLocalServers {
        /// The site.
        site: String,
        /// The count given.
        count: u32,
    },
    /// More distinct policies than the simulator's metering tracks.
    #[error(
        "the scenario has {count} distinct policies (its [[policy]] ids and those its \
         [[change]]s create); the simulator tracks at most {max}, one bit each"
    )]
    TooManyPolicies {
        /// Distinct policy ids in the file.
        count: usize,
        /// The most the simulator tracks.
        max: usize,
    },
    /// More distinct client platforms than the simulator's metering tracks.
    #[error(
        "the scenario's clients run {count} distinct platforms; the simulator tracks at \
         most {max}, one bit each"
    )]
    TooManyPlatforms {
        /// Distinct platforms among the sites' clients.
        count: usize,
        /// The most the simulator tracks.
        max: usize,
    },
    /// A laptop absence at least as long as the cycle it repeats in.
    #[error("`off` ({off}) must be shorter than `every` ({every})")]
    AbsenceTooLong {
        /// How long clients stay away.
        off: String,
        /// How often they go away.
        every: String,
    },
}

/// The fault kinds in the order the documentation lists them.
pub(crate) const FAULT_KINDS: &[&str] = &["partition", "loss", "duplicate", "crash", "skew"];
