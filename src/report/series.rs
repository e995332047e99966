//! Numbers derived from a run's detail for charts and CSV files: hourly
//! totals, and traffic folded onto each site's local day.
//!
//! Everything here is a sum or a ratio of the simulator's own counts, so a
//! chart never shows a number the run did not measure.

use std::collections::BTreeMap;

use jiff::tz::TimeZone;
use tiersync_engine::{MessageKind, Time};
use tiersync_simnet::output::RunOutput;
use tiersync_simnet::scenario::Scenario;

/// Seconds in the hour that charts and `timeseries.csv` use as their bucket.
pub const HOUR_SECONDS: u64 = 3600;

/// Hours covered by a run: its duration rounded up to whole hours.
pub fn hours(sc: &Scenario) -> usize {
    (sc.duration.as_duration().as_secs().div_ceil(HOUR_SECONDS)).max(1) as usize
}

/// The hour (from the start of the run) of simulator bucket `bucket`.
///
/// The simulator's last bucket also holds anything at the very end of the
/// run, so the hour is clamped to the last one.
fn hour_of(run: &RunOutput, bucket: u32, hours: usize) -> usize {
    let secs = u64::from(bucket) * run.detail.bucket_seconds;
    ((secs / HOUR_SECONDS) as usize).min(hours - 1)
}

/// Bytes and messages per hour over every WAN link and direction.
pub fn wan_per_hour(sc: &Scenario, run: &RunOutput) -> Vec<(u64, u64)> {
    let n = hours(sc);
    let mut out = vec![(0, 0); n];
    for row in &run.detail.timeseries {
        if run.detail.links[row.link as usize].wan {
            let h = hour_of(run, row.bucket, n);
            out[h].0 += row.bytes;
            out[h].1 += row.messages;
        }
    }
    out
}

/// The master's load per hour: (messages in + out, bytes in + out).
pub fn master_per_hour(sc: &Scenario, run: &RunOutput) -> Vec<(u64, u64)> {
    let n = hours(sc);
    let mut out = vec![(0, 0); n];
    for (b, row) in run.detail.master_series.iter().enumerate() {
        let h = hour_of(run, b as u32, n);
        out[h].0 += row.messages_in + row.messages_out;
        out[h].1 += row.bytes_in + row.bytes_out;
    }
    out
}

/// One row of `timeseries.csv`: traffic of one link direction in one hour.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct HourRow {
    /// Hour index from the start of the run.
    pub hour: usize,
    /// Link id, in the simulator's order (stable for a scenario).
    pub link: u16,
    /// 0 down (from the parent), 1 up.
    pub dir: u8,
    /// Bytes on the wire.
    pub bytes: u64,
    /// Messages.
    pub messages: u64,
}

/// Traffic per hour, link and direction; only hours with traffic, sorted
/// by hour, link and direction.
pub fn link_hours(sc: &Scenario, run: &RunOutput) -> Vec<HourRow> {
    let n = hours(sc);
    let mut rows: std::collections::BTreeMap<(usize, u16, u8), (u64, u64)> = Default::default();
    for row in &run.detail.timeseries {
        let key = (hour_of(run, row.bucket, n), row.link, row.dir);
        let e = rows.entry(key).or_default();
        e.0 += row.bytes;
        e.1 += row.messages;
    }
    rows.into_iter()
        .map(|((hour, link, dir), (bytes, messages))| HourRow { hour, link, dir, bytes, messages })
        .collect()
}

/// One row of `kinds.csv`: the traffic of one message kind in one hour.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct KindHourRow {
    /// Hour index from the start of the run (of the messages' sending).
    pub hour: usize,
    /// The message kind.
    pub kind: MessageKind,
    /// Bytes on the wire, counted once per message as the JSON's
    /// `by_kind` counts them.
    pub bytes: u64,
    /// Messages sent.
    pub messages: u64,
}

/// Traffic per hour and message kind; only hours in which the kind was
/// sent, sorted by hour, then kind in `MessageKind::ALL` order.
pub fn kind_hours(sc: &Scenario, run: &RunOutput) -> Vec<KindHourRow> {
    let n = hours(sc);
    let mut rows: BTreeMap<(usize, MessageKind), (u64, u64)> = BTreeMap::new();
    for row in &run.detail.kind_series {
        let e = rows.entry((hour_of(run, row.bucket, n), row.kind)).or_default();
        e.0 += row.bytes;
        e.1 += row.messages;
    }
    rows.into_iter()
        .map(|((hour, kind), (bytes, messages))| KindHourRow { hour, kind, bytes, messages })
        .collect()
}

/// One row of `nodes.csv`: what one server or client group sent and
/// received in one hour, bytes on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct NodeHourRow {
    /// Hour index from the start of the run.
    pub hour: usize,
    /// Index into the run's `detail.nodes`.
    pub node: u32,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Messages received.
    pub messages_in: u64,
    /// Messages sent.
    pub messages_out: u64,
}

/// Traffic per hour and node (servers, then client groups); only hours in
/// which the node sent or received, sorted by hour, then node.
pub fn node_hours(sc: &Scenario, run: &RunOutput) -> Vec<NodeHourRow> {
    let n = hours(sc);
    let mut rows: BTreeMap<(usize, u32), NodeHourRow> = BTreeMap::new();
    for row in &run.detail.node_series {
        let (hour, node) = (hour_of(run, row.bucket, n), row.node);
        let e =
            rows.entry((hour, node)).or_insert(NodeHourRow { hour, node, ..Default::default() });
        e.bytes_in += row.bytes_in;
        e.bytes_out += row.bytes_out;
        e.messages_in += row.messages_in;
        e.messages_out += row.messages_out;
    }
    rows.into_values().collect()
}

/// A site's WAN link through its local day: the mean share of the line's
/// capacity used in each local hour, by background load and by the run.
#[derive(Clone, Debug)]
pub struct LocalDay {
    /// Site index.
    pub site: usize,
    /// Background share by local hour (the scenario's profile).
    pub background: [f64; 24],
    /// The run's own traffic by local hour, as a share of line capacity:
    /// bits sent over bits the line could carry in that hour, for the
    /// busier direction.
    pub policy: [f64; 24],
}

/// The local day of every site with a WAN link.
///
/// Each simulator bucket is placed in the local hour its start falls in,
/// with real daylight-saving rules, so a run across a clock change puts
/// traffic in the hour the site's staff would see on the wall.
pub fn local_days(sc: &Scenario, run: &RunOutput) -> Vec<LocalDay> {
    let d = &run.detail;
    let bucket_s = d.bucket_seconds.max(1);
    let buckets = sc.duration.as_duration().as_secs().div_ceil(bucket_s) as usize;
    let mut out = Vec::new();
    for (link_id, link) in d.links.iter().enumerate() {
        if !link.wan {
            continue;
        }
        let site = &sc.sites[link.site];
        let tz = &site.timezone;
        let hour_of_bucket: Vec<usize> = (0..buckets)
            .map(|b| local_hour(tz, d.start_unix + (b as u64 * bucket_s) as i64))
            .collect();

        // Seconds of the run that fell in each local hour, the denominator.
        let mut seconds = [0f64; 24];
        for &h in &hour_of_bucket {
            seconds[h] += bucket_s as f64;
        }

        // Bytes per local hour and direction.
        let mut bytes = [[0f64; 24]; 2];
        for row in d.timeseries.iter().filter(|r| r.link as usize == link_id) {
            let b = (row.bucket as usize).min(buckets - 1);
            bytes[row.dir as usize][hour_of_bucket[b]] += row.bytes as f64;
        }
        let capacity = link.bandwidth_bps as f64;
        let mut policy = [0f64; 24];
        for h in 0..24 {
            if seconds[h] > 0.0 {
                let busier = bytes[0][h].max(bytes[1][h]);
                policy[h] = busier * 8.0 / (capacity * seconds[h]);
            }
        }
        let background =
            site.wan.as_ref().map(|w| w.background.hourly_shares()).unwrap_or([0.0; 24]);
        out.push(LocalDay { site: link.site, background, policy });
    }
    out
}

/// The local hour at Unix second `unix` in `tz`.
pub fn local_hour(tz: &TimeZone, unix: i64) -> usize {
    tz.to_datetime(Time::from_secs(unix).to_jiff()).hour() as usize
}

/// The sorted propagation delays of a run, in seconds, and the number of
/// (change, client) pairs that never applied.
pub fn delays_seconds(run: &RunOutput) -> Vec<f64> {
    let mut v: Vec<u64> = run.detail.propagation.iter().map(|r| r.delay_ms).collect();
    v.sort_unstable();
    v.into_iter().map(|ms| ms as f64 / 1000.0).collect()
}

/// The WAN cost of one link under polling and under replication.
#[derive(Clone, Debug)]
pub struct LinkCost {
    /// The site at the child end of the link.
    pub site: String,
    /// Clients behind the link: the site's own and every site's below it.
    pub clients_behind: u64,
    /// `flat-conditional`'s bytes on the link per day, both directions.
    pub polling_per_day: f64,
    /// `tiered`'s bytes on the link per day, both directions.
    pub replication_per_day: f64,
}

/// Polling against replication: what each costs on a WAN link per day,
/// and where they cross.
///
/// Polling's cost is `flat-conditional`'s (clients download only after a
/// change, the fair baseline), which grows with the clients behind a
/// link; replication's is `tiered`'s, one local server for them all,
/// which does not. Per-day figures are the run's totals over its length,
/// the initial download of the policy set included.
#[derive(Clone, Debug)]
pub struct BreakEven {
    /// Every WAN link with clients behind it, in site order.
    pub links: Vec<LinkCost>,
    /// Polling bytes per client behind a link per day, over all links:
    /// their polling bytes over their clients.
    pub polling_per_client: f64,
    /// Replication bytes per link per day, the mean over the links.
    pub replication: f64,
    /// Clients behind a link at which the two cost the same.
    pub crossing: f64,
    /// Policy content one client needs per day, on average: the content
    /// sizes of the policies and changes for its platform, as the
    /// scenario gives them, without any protocol around them.
    pub content_per_client: f64,
    /// Policy content a local server replicates per day: every policy
    /// and change, whatever platform it is for.
    pub content_replicated: f64,
    /// Per polling client per day (`flat-conditional`, every client): bytes
    /// on the wire of its downloads (answers to polls), of its polls, and
    /// of its status reports with their acknowledgements.
    pub per_client_parts: [f64; 3],
    /// Polls and status reports per client per day.
    pub exchanges_per_client: [f64; 2],
    /// TCP/IP and TLS bytes per exchange (a poll or a report with its
    /// answer), handshakes included: wire bytes over frame bytes.
    pub overhead_per_exchange: f64,
}

/// The break-even of a comparison with both a `flat-conditional` and a
/// `tiered` run and at least one WAN link with clients behind it.
pub fn break_even(cmp: &crate::report::Comparison<'_>) -> Option<BreakEven> {
    let sc = cmp.scenario;
    let get = |name: &str| cmp.runs.iter().map(|r| &r.summary).find(|s| s.strategy == name);
    let (poll, tiered) = (get("flat-conditional")?, get("tiered")?);
    let days = sc.duration.as_duration().as_secs_f64() / 86_400.0;

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
    let mut links = Vec::new();
    for (i, site) in sc.sites.iter().enumerate() {
        let (Some(p), Some(t)) = (poll.sites.get(i), tiered.sites.get(i)) else { continue };
        if site.wan.is_none() || behind[i] == 0 {
            continue;
        }
        links.push(LinkCost {
            site: site.name.clone(),
            clients_behind: behind[i],
            polling_per_day: (p.wan_bytes_up + p.wan_bytes_down) as f64 / days,
            replication_per_day: (t.wan_bytes_up + t.wan_bytes_down) as f64 / days,
        });
    }
    if links.is_empty() {
        return None;
    }
    let clients: u64 = links.iter().map(|l| l.clients_behind).sum();
    let polling_per_client = links.iter().map(|l| l.polling_per_day).sum::<f64>() / clients as f64;
    let replication = links.iter().map(|l| l.replication_per_day).sum::<f64>() / links.len() as f64;
    let crossing =
        if polling_per_client > 0.0 { replication / polling_per_client } else { f64::INFINITY };

    // What the scenario's content alone would say: a revision carries its
    // policy's whole current content, whatever changed.
    let (replicated, per_client) = content_totals(sc);

    // A polling client's day, from the message kinds of the whole run.
    let total = sc.total_clients().max(1) as f64 * days;
    let kind = |k: &str| poll.by_kind.get(k).cloned().unwrap_or_default();
    let (pl, pu, rp, ra) =
        (kind("poll"), kind("policy_update"), kind("report"), kind("report_ack"));
    let exchanges = (pl.messages + rp.messages).max(1) as f64;
    let wire = (pl.bytes + pu.bytes + rp.bytes + ra.bytes) as f64;
    let frames = (pl.app_bytes + pu.app_bytes + rp.app_bytes + ra.app_bytes) as f64;
    Some(BreakEven {
        links,
        polling_per_client,
        replication,
        crossing,
        content_per_client: per_client / days,
        content_replicated: replicated / days,
        per_client_parts: [
            pu.bytes as f64 / total,
            pl.bytes as f64 / total,
            (rp.bytes + ra.bytes) as f64 / total,
        ],
        exchanges_per_client: [pl.messages as f64 / total, rp.messages as f64 / total],
        overhead_per_exchange: (wire - frames) / exchanges,
    })
}

/// Content bytes over the run: what a local server replicates (every
/// policy at the start and every change), and what one client needs on
/// average (those for its platform).
fn content_totals(sc: &Scenario) -> (f64, f64) {
    use std::collections::BTreeMap;
    let mut size: BTreeMap<&str, u64> = BTreeMap::new();
    let mut platforms: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut replicated = 0u64;
    let mut per_platform: BTreeMap<&str, u64> = BTreeMap::new();
    fn add<'s>(
        bytes: u64,
        on: &[&'s str],
        replicated: &mut u64,
        per_platform: &mut BTreeMap<&'s str, u64>,
    ) {
        *replicated += bytes;
        for p in on {
            *per_platform.entry(p).or_default() += bytes;
        }
    }
    for p in &sc.policies {
        size.insert(&p.id, p.content.bytes());
        platforms.insert(&p.id, p.platforms.iter().map(String::as_str).collect());
        add(p.content.bytes(), &platforms[p.id.as_str()], &mut replicated, &mut per_platform);
    }
    let mut changes: Vec<&tiersync_simnet::scenario::Change> = sc.changes.iter().collect();
    changes.sort_by_key(|c| c.at);
    for c in changes {
        if let Some(bytes) = c.content {
            size.insert(&c.policy, bytes.bytes());
        }
        if let Some(list) = &c.platforms {
            platforms.insert(&c.policy, list.iter().map(String::as_str).collect());
        }
        let on = platforms.get(c.policy.as_str()).cloned().unwrap_or_default();
        let bytes = size.get(c.policy.as_str()).copied().unwrap_or(0);
        add(bytes, &on, &mut replicated, &mut per_platform);
    }
    let mut needed = 0u64;
    for site in &sc.sites {
        for (platform, n) in &site.clients {
            needed += u64::from(*n) * per_platform.get(platform.as_str()).copied().unwrap_or(0);
        }
    }
    (replicated as f64, needed as f64 / sc.total_clients().max(1) as f64)
}

/// Where one run's business-hours WAN bytes came from, for the sentence
/// that says why they flow then.
#[derive(Clone, Debug, Default)]
pub struct BusinessTraffic {
    /// WAN bytes of the run sent in the business hours of the site at the child end.
    pub business: u64,
    /// Business-hours bytes of answers to the first download of servers
    /// that held nothing (the start of the run).
    pub initial: u64,
    /// Business-hours bytes of answers to checks between syncs.
    pub checks: u64,
    /// Business-hours bytes of answers to scheduled syncs.
    pub syncs: u64,
    /// Bytes of business-hours check answers that brought new revisions,
    /// by the local hour of the site they were sent to.
    pub check_hours: [u64; 24],
    /// Sites whose first download fell in their business hours, with the
    /// local time it was answered ("09:00").
    pub initial_sites: Vec<(String, String)>,
}

/// The business-hours breakdown of `run`, from its fetch records.
pub fn business_traffic(sc: &Scenario, run: &RunOutput) -> BusinessTraffic {
    use tiersync_simnet::output::FetchKind;
    let mut out =
        BusinessTraffic { business: run.summary.wan.business_hours_bytes, ..Default::default() };
    for f in run.detail.fetches.iter().filter(|f| f.reply_in_business_hours) {
        let tz = &sc.sites[f.site].timezone;
        let at = f.answered_unix.unwrap_or(f.at_unix).floor() as i64;
        match f.kind {
            FetchKind::Initial => {
                out.initial += f.reply_bytes;
                let local = tz.to_datetime(Time::from_secs(at).to_jiff());
                let when = format!("{:02}:{:02}", local.hour(), local.minute());
                out.initial_sites.push((sc.sites[f.site].name.clone(), when));
            }
            FetchKind::Check => {
                out.checks += f.reply_bytes;
                if f.revisions > 0 {
                    out.check_hours[local_hour(tz, at)] += f.reply_bytes;
                }
            }
            FetchKind::Sync => out.syncs += f.reply_bytes,
        }
    }
    out
}

/// The share of the run that falls in business hours, averaged over the
/// sites at the child end of WAN links (one-minute steps).
pub fn business_time_share(sc: &Scenario) -> f64 {
    let start = sc.start.as_secs();
    let minutes = sc.duration.as_duration().as_secs() / 60;
    let mut shares = Vec::new();
    for (i, site) in sc.sites.iter().enumerate() {
        if site.wan.is_none() {
            continue;
        }
        let hours = tiersync_simnet::build::business_hours(sc, i);
        let inside = (0..minutes)
            .filter(|m| hours.contains(Time::from_secs(start + (*m as i64) * 60)))
            .count();
        shares.push(inside as f64 / minutes.max(1) as f64);
    }
    if shares.is_empty() { 0.0 } else { shares.iter().sum::<f64>() / shares.len() as f64 }
}
