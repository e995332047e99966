//! Numbers derived from a run's detail for charts and CSV files: hourly
//! totals, and traffic folded onto each site's local day.
//!
//! Everything here is a sum or a ratio of the simulator's own counts, so a
//! chart never shows a number the run did not measure.

use jiff::tz::TimeZone;
use tiersync_engine::Time;
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
