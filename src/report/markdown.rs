//! `report.md`: the scenario in a paragraph, the results table, the
//! charts with a sentence each, the transport model and how to reproduce.
//!
//! Nothing here reads a clock: the same runs give the same file.

use std::fmt::Write as _;

use tiersync_simnet::output::RunSummary;
use tiersync_simnet::scenario::{CrashTarget, Fault, Scenario};

use super::Comparison;
use super::charts;
use super::series;
use super::tables::{self, SUMMARY_COLUMNS};
use crate::commands::run::{bytes, dur};

/// The charts, in report order: file stem, heading.
pub const CHARTS: [(&str, &str); 6] = [
    ("wan-per-hour", "WAN bytes per hour"),
    ("local-day", "WAN use by hour of each site's local day"),
    ("sync-timeline", "Sync windows, syncs and checks on a 24-hour UTC clock"),
    ("propagation-cdf", "Policy propagation delay"),
    ("master-load", "Master load per hour"),
    ("break-even", "Polling against replication on one link"),
];

/// The whole file.
pub fn report(cmp: &Comparison<'_>) -> String {
    let sc = cmp.scenario;
    let mut md = String::new();
    let _ = writeln!(md, "# {}: flat, flat-conditional and tiered compared\n", sc.name);
    md += &wrap(&describe(sc));
    md += "\n";
    md += &results(cmp);
    md += &when_wan(cmp);
    md += &break_even(cmp);
    md += &charts(cmp);
    md += &files(cmp);
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

/// A break-even number of clients in words: "under one client" when one
/// polling client already costs more than replication, otherwise the
/// smallest whole number of clients at which polling costs as much.
fn clients_at(x: f64) -> String {
    if !x.is_finite() {
        return "no number of clients".to_owned();
    }
    if x < 1.0 {
        return "under one client".to_owned();
    }
    let n = x.ceil() as u64;
    format!("{} {}", thousands(n), if n == 1 { "client" } else { "clients" })
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

/// Headings of the results table, one per column of `summary.csv`
/// ([`SUMMARY_COLUMNS`], in the same order), in words a reader scans.
const SUMMARY_LABELS: [&str; SUMMARY_COLUMNS.len()] = [
    "strategy",
    "WAN bytes",
    "WAN bytes in business hours",
    "peak WAN utilisation",
    "master bytes in",
    "master bytes out",
    "master messages in",
    "master messages out",
    "propagation p50",
    "p90",
    "p99",
    "max",
    "never applied",
    "staleness (client-hours)",
    "WAN bytes reduction vs flat",
    "master messages reduction vs flat",
    "seed",
    "trace hash",
];

/// The results table; its columns are those of `summary.csv`.
fn results(cmp: &Comparison<'_>) -> String {
    let mut md = String::from("## Results\n\n");
    md += "| ";
    md += &SUMMARY_LABELS.join(" | ");
    md += " |\n|";
    md += &"---|".repeat(SUMMARY_LABELS.len());
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
         is the highest share of a WAN link's capacity (in one direction) that the \
         strategy's own traffic used in any one minute of the run: bytes sent in that \
         minute, times 8, over the line rate times 60 s; background load is not in it. \
         Propagation is the time from a change being made to an affected client \
         applying it, over every (change, client) pair; never-applied pairs had not applied \
         when the run ended. Its percentiles and maximum come from an HDR histogram of the \
         delays in milliseconds with three significant digits: each is the upper edge of \
         its histogram bucket, so it lies at most 0.1% above the exact value that \
         `propagation.csv` gives. Staleness is client-hours spent on an outdated policy. \
         A reduction factor is flat's figure divided by the strategy's.",
    );
    md += "\n";
    md
}

/// The share of WAN bytes each strategy sends in business hours, and why
/// the tiered design's land there when they do.
fn when_wan(cmp: &Comparison<'_>) -> String {
    let sc = cmp.scenario;
    let mut md = String::from("### When the WAN is used\n\n");
    let share = |part: u64, all: u64| if all == 0 { 0.0 } else { part as f64 * 100.0 / all as f64 };
    let each: Vec<String> = cmp
        .runs
        .iter()
        .map(|r| {
            let w = &r.summary.wan;
            format!(
                "{} {:.0}% ({} of {})",
                r.summary.strategy,
                share(w.business_hours_bytes, w.bytes),
                bytes(w.business_hours_bytes),
                bytes(w.bytes)
            )
        })
        .collect();
    let bh = &sc.business_hours;
    let mut text = format!(
        "Share of each strategy's WAN bytes sent in business hours ({} local time, {}, at \
         the site at the far end of each link): {}. ",
        bh.window,
        weekdays(&bh.days),
        each.join("; ")
    );
    if cmp.runs.iter().any(|r| r.summary.strategy.starts_with("flat")) {
        let _ = write!(
            text,
            "Business hours are {:.0}% of the run at these sites. Polling clients ask around \
             the clock, so flat's share, mostly full downloads, stays near that; \
             flat-conditional downloads only after a change, so its share also follows \
             the local hour at which changes are made. ",
            series::business_time_share(sc) * 100.0
        );
    }
    if let Some(t) = cmp.runs.iter().find(|r| r.summary.strategy == "tiered") {
        text += &tiered_business(sc, &series::business_traffic(sc, t));
    }
    md += &wrap(&text);
    md += "\n";
    md
}

/// A percentage for prose: whole numbers, and "under 1%" rather than a
/// misleading 0% for a small share that is not nothing.
struct Share(f64);

impl std::fmt::Display for Share {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0 > 0.0 && self.0 < 0.5 {
            f.write_str("under 1%")
        } else {
            write!(f, "{:.0}%", self.0)
        }
    }
}

/// Days of the week as a reader writes them: "Monday to Friday", or a
/// list.
fn weekdays(days: &std::collections::BTreeSet<tiersync_simnet::scenario::Weekday>) -> String {
    const NAMES: [&str; 7] =
        ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];
    let idx: Vec<usize> = days.iter().map(|d| *d as usize).collect();
    let contiguous = idx.windows(2).all(|w| w[1] == w[0] + 1);
    match (idx.first(), idx.last()) {
        (Some(&a), Some(&b)) if contiguous && b > a + 1 => format!("{} to {}", NAMES[a], NAMES[b]),
        _ => {
            let names: Vec<&str> = idx.iter().map(|&i| NAMES[i]).collect();
            if names.is_empty() { "no day".to_owned() } else { names.join(", ") }
        }
    }
}

/// Why the tiered run's business-hours bytes flow then: checks, the
/// first download, syncs, and the rest.
fn tiered_business(sc: &Scenario, t: &series::BusinessTraffic) -> String {
    if t.business == 0 {
        return format!(
            "The tiered design sends nothing in business hours: local servers move policies \
             in their {} window{}.",
            sc.local.sync_window,
            if sc.local.policy_check.is_some() {
                " and checks find nothing new by day"
            } else {
                ""
            }
        );
    }
    let pct = |part: u64| Share(part as f64 * 100.0 / t.business as f64);
    let mut parts = Vec::new();
    if t.checks > 0 {
        let mut p = match sc.local.policy_check {
            Some(every) => format!(
                "{} are answers to the checks between syncs (every {every}): a change \
                 made outside the sync window reaches a site at its next check, whatever \
                 the local hour",
                pct(t.checks)
            ),
            None => format!(
                "{} are answers to fetches outside the window (there are no scheduled \
                 checks): a server where a change was made fetching the revision the \
                 master gave it, or a wake-up for an urgent change",
                pct(t.checks)
            ),
        };
        let hours: Vec<usize> = (0..24).filter(|h| t.check_hours[*h] > 0).collect();
        if let (Some(first), Some(last), Some(_)) =
            (hours.first(), hours.last(), sc.local.policy_check)
        {
            let peak = (0..24).max_by_key(|h| (t.check_hours[*h], 24 - h)).unwrap_or(0);
            let _ = write!(
                p,
                ", and the checks that brought new policies were answered between \
                 {first:02}:00 and {:02}:00 local time, most bytes at {peak:02}:00",
                last + 1
            );
        }
        parts.push(p);
    }
    if t.initial > 0 {
        let mut sites: Vec<String> =
            t.initial_sites.iter().map(|(s, at)| format!("{at} at `{s}`")).collect();
        sites.dedup();
        let shown = sites.len().min(4);
        let more = if sites.len() > shown {
            format!(" and {} more", sites.len() - shown)
        } else {
            String::new()
        };
        parts.push(format!(
            "{} the first download of the whole policy set when the run starts ({}{more}, \
             local time)",
            pct(t.initial),
            sites[..shown].join(", ")
        ));
    }
    if t.syncs > 0 {
        parts.push(format!("{} syncs that ran into business hours", pct(t.syncs)));
    }
    let rest = t.business.saturating_sub(t.checks + t.initial + t.syncs);
    if rest > 0 {
        parts.push(format!(
            "{} the rest (requests, statistics, acknowledgements, and the clients of \
             sites without a local server)",
            pct(rest)
        ));
    }
    let mut text = format!(
        "Tiered local servers synchronise in their {} window; of the tiered run's {} in \
         business hours, {}.",
        sc.local.sync_window,
        bytes(t.business),
        parts.join("; ")
    );
    if t.checks > 0 && sc.local.policy_check.is_some() {
        text += " Checks off (`--set local.policy_check=off`) keep content to the window, at \
                 the cost of up to a day of delay.";
    }
    text
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
    let check = cmp.scenario.local.policy_check;
    match stem {
        "wan-per-hour" => format!(
            "WAN bytes per hour over every WAN link, one line per strategy ({}); the y axis \
             is logarithmic when the strategies differ by orders of magnitude, and hours \
             without WAN traffic lie on its floor, marked \"none\".",
            each(&|s| format!("{} in all", bytes(s.wan.bytes)))
        ),
        "local-day" => format!(
            "For each site's WAN link, the mean share of its capacity used in each hour of \
             the site's local day: grey is the scenario's background load, each line a \
             strategy's own traffic (busier direction), the amber band business hours, \
             shaded over the background and under the lines; {}. The share of WAN bytes \
             sent in business hours is {}{}.",
            local_day_floor(cmp),
            each(&|s| format!("{:.0}%", share(s))),
            match check {
                Some(every) => format!(
                    "; tiered traffic by day is its checks every {every}, which pull a \
                     change as soon as it exists (see \"When the WAN is used\")"
                ),
                None => String::new(),
            }
        ),
        "sync-timeline" => {
            let tiered = cmp.runs.iter().find(|r| r.summary.strategy == "tiered");
            let syncs: u64 =
                get("tiered").map(|s| s.sites.iter().map(|x| x.syncs).sum()).unwrap_or(0);
            let fetches = || tiered.into_iter().flat_map(|r| &r.detail.fetches);
            let checks =
                fetches().filter(|f| f.kind == tiersync_simnet::output::FetchKind::Check).count();
            let found = fetches()
                .filter(|f| f.kind == tiersync_simnet::output::FetchKind::Check && f.revisions > 0)
                .count();
            let changes = charts::timeline::Timeline::new(cmp).clock_changes();
            let moved = if changes.is_empty() {
                String::new()
            } else {
                format!(
                    " Where a site's clocks change during the run ({}), its window and \
                     business hours after the change are an hour away in UTC: the row then \
                     has two bands, the lower for the days before the change and the upper \
                     for the days after it.",
                    charts::timeline::clock_change_text(&changes)
                )
            };
            format!(
                "One UTC day with a row per site: the blue band is the {} local sync window \
                 placed in UTC with real daylight-saving rules, the amber outline the site's \
                 business hours; each dot is one of the tiered run's {} syncs and each \
                 triangle one of its {} checks between syncs, filled for the {} that brought \
                 new policies and so carried content over the WAN; a square is a server's \
                 first download of the whole policy set. Each day of the run has its own \
                 height in a row, first day at the bottom, and bands are drawn at the heights \
                 of the days they held on.{moved} Syncs spread the master's work over several \
                 points in 24 hours; checks that find content fall wherever a change happens \
                 to be made.",
                cmp.scenario.local.sync_window, syncs, checks, found
            )
        }
        "propagation-cdf" => format!(
            "The share of (change, affected client) pairs applied within a given delay, per \
             strategy (p50 / p99: {}); a curve that stops below 100% has pairs never applied.{}",
            each(&|s| format!(
                "{} / {}",
                dur(s.propagation_seconds.p50),
                dur(s.propagation_seconds.p99)
            )),
            if charts::delay::DelayCdf::new(cmp).flat_coincide() {
                " flat and flat-conditional clients poll on the same schedule and apply a \
                 change at their first poll after it, so their curves all but coincide: the \
                 dashed orange line lies on the red one."
            } else {
                ""
            }
        ),
        "break-even" => match series::break_even(cmp) {
            Some(b) => format!(
                "WAN bytes per day on one link against the clients behind it: polling \
                 (orange, {} per client a day) rises with the clients, replication by one \
                 local server (blue, {} a day) does not; {} Each of the scenario's links \
                 is a dot (its polling cost) and a square (its replication cost) at its \
                 number of clients. The dashed grey line counts content alone ({} per client \
                 a day), as vendor sizing guides do; see the break-even section for why the \
                 measured crossing lies elsewhere.",
                bytes(b.polling_per_client.round() as u64),
                bytes(b.replication.round() as u64),
                if b.crossing.is_finite() && b.crossing >= 1.0 {
                    format!("they cross at {} (circled).", clients_at(b.crossing))
                } else {
                    "even one polling client costs more than replication, so the lines do not \
                     cross on the chart."
                        .to_owned()
                },
                bytes(b.content_per_client.round() as u64),
            ),
            None => "No link has both a polling and a replication cost here.".to_owned(),
        },
        _ => format!(
            "Messages (top) and bytes (bottom) handled by the master per hour, in and out \
             together, one line per strategy ({}); the legend sits beside the plots. flat and \
             flat-conditional exchange the same messages, a poll and its answer whether or \
             not anything changed, so their message lines coincide: the dashed orange line \
             lies on the red one.",
            each(&|s| format!("{} messages", thousands(tables::master_messages(s))))
        ),
    }
}

/// What chart 2's floor stands for, in words.
fn local_day_floor(cmp: &Comparison<'_>) -> String {
    let chart = charts::local_day::LocalDayChart::new(cmp);
    let axis = chart.axis();
    let floor = charts::percent_label(axis.floor);
    if axis.below {
        format!(
            "the log axis ends at {floor} of the line, {} powers of ten below the busiest \
             hour's decade, and hours with less traffic (too little to matter beside the \
             busiest), hours without any included, lie on that floor, marked \"≤{floor}\"",
            charts::local_day::DECADES
        )
    } else {
        "hours without traffic lie on the floor, marked \"none\"".to_owned()
    }
}

/// Per WAN link: how many clients polling would cost what replication
/// costs, from the `sites` part of the JSON; and why that number is not
/// the one content sizes alone give.
fn break_even(cmp: &Comparison<'_>) -> String {
    let Some(b) = series::break_even(cmp) else { return String::new() };
    let mut md = String::from("### Break-even between polling and replication\n\n");
    md += &wrap(
        "Per WAN link: the traffic of `flat-conditional` (clients poll the master and download \
         only after a change) per client behind the link, against the traffic of `tiered` \
         (one local server replicates for them) on the same link over the whole run. Below \
         the break-even number of clients, polling costs less WAN traffic than replication. \
         Chart 6 draws the same numbers per day.",
    );
    md += "\n| link | clients behind it | polling, per client a day | replication, whole link a \
           day | break-even clients | cheaper here |\n|---|---|---|---|---|---|\n";
    for l in &b.links {
        let per_client = l.polling_per_day / l.clients_behind as f64;
        let even =
            if per_client > 0.0 { l.replication_per_day / per_client } else { f64::INFINITY };
        let cheaper = if (l.clients_behind as f64) > even { "replication" } else { "polling" };
        let even_text = if !even.is_finite() {
            "—".to_owned()
        } else if even < 1.0 {
            "under 1".to_owned()
        } else {
            thousands(even.ceil() as u64)
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {even_text} | {cheaper} |",
            l.site,
            thousands(l.clients_behind),
            bytes(per_client.round() as u64),
            bytes(l.replication_per_day.round() as u64),
        );
    }
    md += "\n";
    let [downloads, polls, reports] = b.per_client_parts;
    let vendor = b.content_replicated / b.content_per_client.max(1e-9);
    let client_day = downloads + polls + reports;
    md += &wrap(&format!(
        "Counting content alone, as vendor sizing guides do (content replicated a day over \
         content one client needs a day: {} / {}), the break-even would be {}. \
         Measured over all links it is {}, because a polling client costs more than its \
         content: each day it sends {:.0} polls and {:.0} status reports, each exchange on a \
         new TCP and TLS connection with about {} of TCP/IP and TLS overhead (handshakes \
         included), so of its {} a day on the wire {} are downloads, {} polls and their \
         empty answers and {} reports and their acknowledgements. Replication pays those \
         costs once per link, not once per client.",
        bytes(b.content_replicated.round() as u64),
        bytes(b.content_per_client.round() as u64),
        clients_at(vendor),
        clients_at(b.crossing),
        b.exchanges_per_client[0],
        b.exchanges_per_client[1],
        bytes(b.overhead_per_exchange.round() as u64),
        bytes(client_day.round() as u64),
        bytes(downloads.round() as u64),
        bytes(polls.round() as u64),
        bytes(reports.round() as u64),
    ));
    md += "\n";
    md
}

/// What each file of the report holds.
fn files(cmp: &Comparison<'_>) -> String {
    let precision = match tables::delay_precision(cmp) {
        tables::DelayPrecision::Exact => {
            "exact to the millisecond, as measured (`delay_seconds` has three decimals; \
             `clients` counts the pairs with exactly that delay, usually 1)"
                .to_owned()
        }
        tables::DelayPrecision::Seconds => format!(
            "in one-second bins (`delay_seconds` is the bin's start; `clients` counts the \
             pairs in it), since exact delays would take more than {} rows",
            thousands(tables::EXACT_ROWS_MAX as u64)
        ),
    };
    let mut md = String::from(
        "## Files\n\n\
- `summary.csv`: the results table, exact.\n\
- `sites.csv`: per site and strategy, the `sites` part of `tiersync run --json`: WAN \
bytes up and down its link, business-hours bytes, peak utilisation, syncs and the age of \
the master's view of the site.\n\
- `timeseries.csv`: bytes and messages per one-hour bucket (start in UTC), strategy, \
link (`wan:<site>` is the site's link to its parent, `lan:<site>` its LAN) and direction \
(`down` from the parent, `up` towards it); hours without traffic are left out.\n\
- `kinds.csv`: bytes on the wire and messages per one-hour bucket, strategy and message \
kind, as `by_kind` of `tiersync run --json` counts them (in the hour a message was sent); \
hours in which a kind was not sent are left out.\n\
- `nodes.csv`: bytes and messages in and out per one-hour bucket, strategy and node, as \
`servers` and `client_groups` of the JSON count them (a message is out in the hour it was \
sent, and in, if its receiver was up, in the hour it arrived): `node` is `master` (role \
`master`), a local server's site (role `local`) or a client group `<site>/<platform>` \
(role `clients`), with its `site` and, for a group, `platform`; hours in which a node \
neither sent nor received are left out.\n",
    );
    let _ = writeln!(
        md,
        "- `propagation.csv`: per change (numbered as above), client platform, site and \
         strategy, the delays with which (change, client) pairs applied the change, {precision}."
    );
    md += "- `*.png`, `*.svg`: the charts above; the SVG files take the DejaVu Sans font \
           they are drawn with from `DejaVuSans.ttf` beside them (its licence in \
           `LICENSE-DejaVu.txt`).\n\n";
    md
}

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
            let text = match v {
                // A table of roles (which exchanges open a connection):
                // one `name: value` pair after another, not raw JSON.
                serde_json::Value::Object(inner) => inner
                    .iter()
                    .map(|(name, value)| match value {
                        serde_json::Value::String(s) => format!("`{name}` {s}"),
                        other => format!("`{name}` {other}"),
                    })
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            let _ = writeln!(md, "- `{k}`: {text}");
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

#[cfg(test)]
mod tests {
    use super::clients_at;

    #[test]
    fn a_break_even_below_one_client_says_so() {
        assert_eq!(clients_at(0.19), "under one client");
        assert_eq!(clients_at(1.0), "1 client");
        assert_eq!(clients_at(135.2), "136 clients");
        assert_eq!(clients_at(1234.5), "1,235 clients");
        assert_eq!(clients_at(f64::INFINITY), "no number of clients");
    }
}
