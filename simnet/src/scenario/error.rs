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
    #[error("{at}: missing key `{key}` in {table}")]
    MissingKey {
        /// The table that lacks the key.
        at: Location,
        /// The absent key.
        key: String,
        /// The table that lacks it.
        table: String,
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
