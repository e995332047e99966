//! `report.md`: the scenario in a paragraph, the results table, the
//! charts with a sentence each, the transport model and how to reproduce.
//!
//! Nothing here reads a clock: the same runs give the same file.

use std::fmt::Write as _;

use tiersync_simnet::output::RunSummary;
use tiersync_simnet::scenario::{CrashTarget, Fault, Scenario};

use super::Comparison;
use super::tables::{self, SUMMARY_COLUMNS};
use crate::commands::run::{bytes, dur};

/// The charts, in report order: file stem, heading.
pub const CHARTS: [(&str, &str); 5] = [
    ("wan-per-hour", "WAN bytes per hour"),
    ("local-day", "WAN use by hour of each site's local day"),
    ("sync-timeline", "Sync windows and syncs on a 24-hour UTC clock"),
    ("propagation-cdf", "Policy propagation delay"),
    ("master-load", "Master load per hour"),
];

/// The whole file.
pub fn report(cmp: &Comparison<'_>) -> String {
    let sc = cmp.scenario;
    let mut md = String::new();
    let _ = writeln!(md, "# {}: flat, flat-conditional and tiered compared\n", sc.name);
    md += &wrap(&describe(sc));
    md += "\n";
    md += &results(cmp);
    md += &break_even(cmp);
    md += &charts(cmp);
    md += FILES;
    md += &transport(cmp);
    md += &reproduce(cmp);
    md
}

/// Words wrapped at 80 columns, so the file reads well as text too.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > 80 {
            out += &line;
            out += "\n";
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line += word;
    }
    if !line.is_empty() {
        out += &line;
        out += "\n";
    }
    out
}

/// An integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The scenario in one paragraph.
fn describe(sc: &Scenario) -> String {
    let mut zones: Vec<&str> = sc.sites.iter().map(|s| s.timezone_name.as_str()).collect();
    zones.sort_unstable();
    zones.dedup();
    let mut p = format!(
        "The scenario `{}` runs for {} from {} (seed {}) with {} sites in {} time zones, \
         {} clients in all: ",
        sc.name,
        sc.duration,
        sc.start,
        sc.seed,
        sc.sites.len(),
        zones.len(),
        thousands(sc.total_clients())
    );
    let sites: Vec<String> = sc.sites.iter().map(|s| describe_site(sc, s)).collect();
    p += &sites.join("; ");
    let c = &sc.client;
    let _ = write!(
        p,
        ". Clients poll every {} (splay up to {}) and report every {} with a {} inventory",
        c.poll, c.splay, c.status_every, c.inventory
    );
    if let Some(off) = &c.offline {
        let _ = write!(
            p,
            "; {:.0}% of them are laptops that go off for {} every {}",
            off.share.value() * 100.0,
            off.off,
            off.every
        );
    }
    let _ =
        write!(p, ". Local servers sync with their parent in {} local time", sc.local.sync_window);
    match sc.local.policy_check {
        Some(every) => {
            let _ = write!(p, " and check for new policies every {every}");
        }
        None => p += " and make no checks between syncs",
    }
    let policies: Vec<String> = sc
        .policies
        .iter()
        .map(|pol| format!("`{}` ({} for {})", pol.id, pol.content, pol.platforms.join(", ")))
        .collect();
    let _ = write!(p, ". Policies at the start: {}. ", policies.join(", "));
    p += &describe_changes(sc);
    p += &describe_faults(sc);
    p
}

fn describe_site(sc: &Scenario, s: &tiersync_simnet::scenario::Site) -> String {
    let mut d = format!("`{}` ({}", s.name, s.timezone_name);
    if sc.master.site == s.name {
        d += ", master";
    }
    let n = s.client_count();
    if n > 0 {
        let _ = write!(d, ", {} clients", thousands(n));
    }
    if let (Some(parent), Some(wan)) = (&s.parent, &s.wan) {
        let _ = write!(d, ", {} at {} to `{parent}`", wan.bandwidth, wan.latency);
        if wan.loss.value() > 0.0 {
            let _ = write!(d, ", {}% loss", wan.loss.value() * 100.0);
        }
    }
    if !s.has_local_server() && n > 0 && s.parent.is_some() {
        d += ", no local server";
    }
    d += ")";
    d
}

fn describe_changes(sc: &Scenario) -> String {
    if sc.changes.is_empty() {
        return "No policy changes are made during the run. ".to_owned();
    }
    let list: Vec<String> = sc
        .changes
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let what = match c.content {
                Some(size) => format!("`{}` content {size}", c.policy),
                None => format!("`{}` settings", c.policy),
            };
            let urgent = if c.urgent { ", urgent" } else { "" };
            format!("({}) {what} at {} from `{}`{urgent}", i + 1, c.at, c.origin)
        })
        .collect();
    format!(
        "{} changes are made, numbered as in `propagation.csv`: {}. ",
        sc.changes.len(),
        list.join("; ")
    )
}

fn describe_faults(sc: &Scenario) -> String {
    if sc.faults.is_empty() {
        return "No faults are injected.".to_owned();
    }
    let list: Vec<String> = sc.faults.iter().map(describe_fault).collect();
    format!("Faults: {}.", list.join("; "))
}

fn describe_fault(f: &Fault) -> String {
    match f {
        Fault::Partition(p) => format!("`{}` cut off from {} to {}", p.site, p.from, p.to),
        Fault::Loss(l) => {
            let when = match (l.from, l.to) {
                (Some(a), Some(b)) => format!(" from {a} to {b}"),
                _ => String::new(),
            };
            format!("{}% loss on `{}`'s link{when}", l.rate.value() * 100.0, l.site)
        }
        Fault::Duplicate(d) => {
            format!("{}% duplication on `{}`'s link", d.rate.value() * 100.0, d.site)
        }
        Fault::Crash(c) => {
            let who = match c.node {
                CrashTarget::Local => "the local server".to_owned(),
                CrashTarget::Clients => "every client".to_owned(),
                CrashTarget::Share(s) => format!("{:.0}% of the clients", s.value() * 100.0),
            };
            format!("{who} at `{}` down at {} for {}", c.site, c.at, c.restart_after)
        }
        Fault::Skew(s) => format!("clock skew of {} at `{}`", s.offset, s.site),
    }
}

/// The results table; its columns are those of `summary.csv`.
fn results(cmp: &Comparison<'_>) -> String {
    let mut md = String::from("## Results\n\n");
    md += "| ";
    md += &SUMMARY_COLUMNS.join(" | ");
    md += " |\n|";
    md += &"---|".repeat(SUMMARY_COLUMNS.len());
    md += "\n";
    let flat = tables::flat_of(cmp);
    for r in &cmp.runs {
        md += "| ";
        md += &readable_row(&r.summary, flat).join(" | ");
        md += " |\n";
    }
    md += "\n";
    md += &wrap(
        "Bytes are shown in binary units (1 GiB = 2^30 bytes) and delays in the largest \
         fitting unit; `summary.csv` holds the same columns with exact byte counts and \
         delays in seconds, equal to `tiersync run --json` for the same scenario, strategy \
         and seed. WAN bytes count a message once per WAN link it crosses, with TCP/IP and \
         TLS overhead. Business hours are each site's local working hours. Peak utilisation \
         is the share of a WAN link's time taken by the strategy's own traffic in its \
         busiest metering bucket (the scenario's `bucket`, one minute by default). \
         Propagation is the time from a change being made to an affected client \
         applying it, over every (change, client) pair; never-applied pairs had not applied \
         when the run ended. Staleness is client-hours spent on an outdated policy. A \
         reduction factor is flat's figure divided by the strategy's.",
    );
    md += "\n";
    md
}

/// One table row in readable units.
fn readable_row(s: &RunSummary, flat: Option<&RunSummary>) -> Vec<String> {
    let p = &s.propagation_seconds;
    let factor = |f: Option<f64>| f.map(|x| format!("×{}", factor_text(x))).unwrap_or_default();
    vec![
        format!("**{}**", s.strategy),
        bytes(s.wan.bytes),
        bytes(s.wan.business_hours_bytes),
        format!("{:.2}%", s.wan.peak_utilization * 100.0),
        bytes(s.master.bytes_in),
        bytes(s.master.bytes_out),
        thousands(s.master.messages_in),
        thousands(s.master.messages_out),
        dur(p.p50),
        dur(p.p90),
        dur(p.p99),
        dur(p.max),
        thousands(p.never_applied),
        thousands(s.staleness_client_hours.round() as u64),
        factor(flat.and_then(|f| tables::reduction(f.wan.bytes, s.wan.bytes))),
        factor(flat.and_then(|f| {
            tables::reduction(tables::master_messages(f), tables::master_messages(s))
        })),
        s.seed.to_string(),
        format!("`{}`", s.trace_hash),
    ]
}

/// A reduction factor with as many digits as it deserves.
pub fn factor_text(x: f64) -> String {
    if x >= 100.0 { thousands(x.round() as u64) } else { format!("{x:.1}") }
}

/// Each chart, with the sentence saying what it shows.
fn charts(cmp: &Comparison<'_>) -> String {
    let mut md = String::from("## Charts\n\n");
    for (i, (stem, heading)) in CHARTS.iter().enumerate() {
        let _ = writeln!(md, "### {}. {heading}\n", i + 1);
        md += &wrap(&sentence(cmp, stem));
        let _ = writeln!(md, "\n![{heading}]({stem}.png)\n\n[SVG]({stem}.svg)\n");
    }
    md
}

/// The one sentence under a chart, with the numbers it is about.
fn sentence(cmp: &Comparison<'_>, stem: &str) -> String {
    let get = |name: &str| cmp.runs.iter().map(|r| &r.summary).find(|s| s.strategy == name);
    let share = |s: &RunSummary| {
        if s.wan.bytes == 0 {
            0.0
        } else {
            s.wan.business_hours_bytes as f64 * 100.0 / s.wan.bytes as f64
        }
    };
    let each = |f: &dyn Fn(&RunSummary) -> String| {
        cmp.runs
            .iter()
            .map(|r| format!("{} {}", r.summary.strategy, f(&r.summary)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match stem {
        "wan-per-hour" => format!(
            "WAN bytes per hour over every WAN link, one line per strategy ({}); the y axis \
             is logarithmic when the strategies differ by orders of magnitude, and hours \
             without WAN traffic lie on its floor.",
            each(&|s| format!("{} in all", bytes(s.wan.bytes)))
        ),
        "local-day" => format!(
            "For each site's WAN link, the mean share of its capacity used in each hour of \
             the site's local day: grey is the scenario's background load, each line a \
             strategy's own traffic (busier direction), the yellow band business hours; the \
             share of WAN bytes sent in business hours is {}.",
            each(&|s| format!("{:.0}%", share(s)))
        ),
        "sync-timeline" => {
            let syncs: u64 =
                get("tiered").map(|s| s.sites.iter().map(|x| x.syncs).sum()).unwrap_or(0);
            format!(
                "One UTC day with a row per site: the blue band is the {} local sync window \
                 placed in UTC with real daylight-saving rules (a lighter edge shows a window \
                 that moved during the run), and each dot one of the tiered run's {} syncs, \
                 one height per day — the master's work spread over several points in 24 hours.",
                cmp.scenario.local.sync_window, syncs
            )
        }
        "propagation-cdf" => format!(
            "The share of (change, affected client) pairs applied within a given delay, per \
             strategy (p50 / p99: {}); a curve that stops below 100% has pairs never applied.",
            each(&|s| format!(
                "{} / {}",
                dur(s.propagation_seconds.p50),
                dur(s.propagation_seconds.p99)
            ))
        ),
        _ => format!(
            "Messages (top) and bytes (bottom) handled by the master per hour, in and out \
             together, one line per strategy ({}).",
            each(&|s| format!("{} messages", thousands(tables::master_messages(s))))
        ),
    }
}

/// Per WAN link: how many clients polling would cost what replication
/// costs, from the `sites` part of the JSON.
///
/// Polling's cost is `flat-conditional`'s (downloads only after a change,
/// the fair baseline), per client behind the link; replication's is
/// `tiered`'s traffic on the same link. A link with fewer clients than
/// the break-even is cheaper to leave to polling.
fn break_even(cmp: &Comparison<'_>) -> String {
    let sc = cmp.scenario;
    let get = |name: &str| cmp.runs.iter().map(|r| &r.summary).find(|s| s.strategy == name);
    let (Some(poll), Some(tiered)) = (get("flat-conditional"), get("tiered")) else {
        return String::new();
    };

    // Clients behind each site's link: its own and those of every site
    // below it.
    let mut behind: Vec<u64> = sc.sites.iter().map(|s| s.client_count()).collect();
    for i in 0..sc.sites.len() {
        let mut p = sc.sites[i].parent_index;
        while let Some(j) = p {
            behind[j] += sc.sites[i].client_count();
            p = sc.sites[j].parent_index;
        }
    }
    let mut md = String::from(
        "### Break-even between polling and replication

",
    );
    md += &wrap(
        "Per WAN link: the traffic of `flat-conditional` (clients poll the master and download \
         only after a change) per client behind the link, against the traffic of `tiered` \
         (one local server replicates for them) on the same link over the whole run. Below \
         the break-even number of clients, polling costs less WAN traffic than replication.",
    );
    md += "\n| link | clients behind it | polling, per client | replication, whole link | \
           break-even clients | cheaper here |\n|---|---|---|---|---|---|\n";
    for (i, site) in sc.sites.iter().enumerate() {
        let (Some(p), Some(t)) = (poll.sites.get(i), tiered.sites.get(i)) else { continue };
        if site.wan.is_none() || behind[i] == 0 {
            continue;
        }
        let per_client = (p.wan_bytes_up + p.wan_bytes_down) as f64 / behind[i] as f64;
        let replication = t.wan_bytes_up + t.wan_bytes_down;
        let even = if per_client > 0.0 { replication as f64 / per_client } else { f64::INFINITY };
        let cheaper = if (behind[i] as f64) > even { "replication" } else { "polling" };
        let even_text =
            if even.is_finite() { thousands(even.ceil() as u64) } else { "—".to_owned() };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {even_text} | {cheaper} |",
            site.name,
            thousands(behind[i]),
            bytes(per_client.round() as u64),
            bytes(replication),
        );
    }
    md += "\n";
    md
}

/// What each file of the report holds.
const FILES: &str = "## Files\n\n\
- `summary.csv`: the results table, exact.\n\
- `sites.csv`: per site and strategy, the `sites` part of `tiersync run --json`: WAN \
bytes up and down its link, business-hours bytes, peak utilisation, syncs and the age of \
the master's view of the site.\n\
- `timeseries.csv`: bytes and messages per one-hour bucket (start in UTC), strategy, \
link (`wan:<site>` is the site's link to its parent, `lan:<site>` its LAN) and direction \
(`down` from the parent, `up` towards it); hours without traffic are left out.\n\
- `propagation.csv`: per change (numbered as above), client platform, site and strategy, \
how many (change, client) pairs (`clients`) applied the change with a delay in each \
one-minute bin (`delay_seconds` is the bin's start).\n\
- `*.png`, `*.svg`: the charts above.\n\n";

/// The transport overhead model every byte count includes.
fn transport(cmp: &Comparison<'_>) -> String {
    let mut md = String::from("## Transport overhead model\n\n");
    md += &wrap(
        "Each message is charged the exact length of its encoded frame plus TCP/IP and \
         TLS 1.3 overhead: every message starts a new TLS record and TCP segment, records \
         and segments are split at the sizes below, the receiver sends a pure ACK per \
         delayed-ACK group, and each new connection pays a TCP and TLS handshake. The \
         parameters, in bytes unless named otherwise:",
    );
    md += "\n";
    let Some(run) = cmp.runs.first() else { return md };
    if let Ok(serde_json::Value::Object(map)) = serde_json::to_value(&run.summary.transport_model) {
        for (k, v) in map {
            let _ = writeln!(md, "- `{k}`: {v}");
        }
    }
    md += "\n";
    md
}

/// The seed and trace hashes, and the commands that give them again.
fn reproduce(cmp: &Comparison<'_>) -> String {
    let mut md = String::from("## Reproduce\n\n");
    let _ = writeln!(md, "```sh\ntiersync compare {}\n```\n", cmp.path);
    md += &wrap(&format!(
        "Every run used seed {}. The same scenario, strategy and seed give the same trace \
         hash (over every delivered message's time, ends, kind and length) on any machine; \
         `tiersync run {} --strategy <name> --json` prints it with the same numbers as above.",
        cmp.runs.first().map(|r| r.summary.seed).unwrap_or(cmp.scenario.seed),
        cmp.path
    ));
    md += "\n";
    for r in &cmp.runs {
        let _ = writeln!(md, "- {}: `{}`", r.summary.strategy, r.summary.trace_hash);
    }
    md
}
