//! Metering: what crossed each link and when, per message kind and per node,
//! and how long policy changes took to reach clients.
//!
//! A [`Meter`] covers one simulated period cut into equal time buckets. The
//! driver reports each message it puts on a link ([`Meter::record_link`]),
//! each interval a link's transmitter was busy ([`Meter::record_busy`]) and
//! each message a node sends or receives. Counters live in dense vectors
//! indexed by link, direction and bucket, so recording is a few additions
//! and the output order is fixed by the indices, never by a hash map.
//!
//! Links are numbered `0..n` and nodes `0..m` by the driver; storage grows
//! to the largest number seen, so sparse numbering wastes memory.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Serialize, Serializer};
use thiserror::Error;
use tiersync_engine::Time;

use crate::calendar::{BusinessHours, LocalClock};
use crate::link::Direction;

/// Most buckets a meter accepts: each link direction keeps three `u64`
/// counters per bucket, so this bounds memory at 24 MB per link.
pub const MAX_BUCKETS: u64 = 1_000_000;

/// A meter that cannot be built, usually from a scenario's period settings.
#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum MeterError {
    /// The period must have positive length.
    #[error("metering period from {start} to {end} is empty")]
    EmptyPeriod {
        /// Start of the period as given.
        start: Time,
        /// End of the period as given.
        end: Time,
    },
    /// Buckets must have positive length.
    #[error("metering bucket length must be above zero")]
    ZeroBucket,
    /// The period holds more buckets than [`MAX_BUCKETS`].
    #[error("metering period holds {buckets} buckets, more than {MAX_BUCKETS}")]
    TooManyBuckets {
        /// How many buckets the period and bucket length would need.
        buckets: u64,
    },
    /// Kind ids are one byte: at most 256 named kinds.
    #[error("more than 256 message kinds")]
    TooManyKinds,
}

/// Totals for one link direction over the whole run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct DirectionTotals {
    bytes: u64,
    messages: u64,
    /// Transmitter busy time, including any outside the period, in ns.
    busy_ns: u64,
    business_bytes: u64,
    business_messages: u64,
}

/// Message and byte totals for one message kind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct KindTotals {
    /// Messages of this kind put on any link.
    pub messages: u64,
    /// Their wire bytes.
    pub bytes: u64,
}

/// What one node sent and received, in wire bytes and messages.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct NodeTotals {
    /// Wire bytes the node sent.
    pub bytes_out: u64,
    /// Messages the node sent.
    pub messages_out: u64,
    /// Wire bytes the node received.
    pub bytes_in: u64,
    /// Messages the node received.
    pub messages_in: u64,
}

/// Traffic counters for one simulated period.
///
/// Calling order: [`Meter::new`], optionally [`Meter::intern_kind`] and
/// [`Meter::set_business_hours`] during setup, then the `record_*` methods
/// as the simulation runs, then [`Meter::snapshot`] and [`Meter::rows`].
/// Records outside `[start, end)` count in the totals but in no bucket.
pub struct Meter {
    start: Time,
    end: Time,
    bucket_ns: u64,
    buckets: usize,
    /// Links seen so far: one more than the largest link id recorded.
    links: usize,
    /// Per (link, direction, bucket), at `series_index`: wire bytes.
    bucket_bytes: Vec<u64>,
    /// Per (link, direction, bucket): messages.
    bucket_messages: Vec<u64>,
    /// Per (link, direction, bucket): transmitter busy time, in ns.
    bucket_busy_ns: Vec<u64>,
    /// Per (link, direction), at `2 * link + direction`.
    totals: Vec<DirectionTotals>,
    /// Per link: the site clock and window that define business hours.
    business_hours: Vec<Option<(LocalClock, BusinessHours)>>,
    kinds: [KindTotals; 256],
    kind_names: Vec<&'static str>,
    nodes: Vec<NodeTotals>,
    /// Link records whose time fell outside the period.
    outside_period: u64,
}

impl Meter {
    /// A meter for `[start, end)` in buckets of `bucket`; the last bucket is
    /// shorter when `bucket` does not divide the period.
    pub fn new(start: Time, end: Time, bucket: Duration) -> Result<Meter, MeterError> {
        if start >= end {
            return Err(MeterError::EmptyPeriod { start, end });
        }
        let bucket_ns = u64::try_from(bucket.as_nanos()).unwrap_or(u64::MAX);
        if bucket_ns == 0 {
            return Err(MeterError::ZeroBucket);
        }
        let period_ns = (end.as_nanos() as i128 - start.as_nanos() as i128) as u128;
        let buckets = period_ns.div_ceil(bucket_ns as u128);
        if buckets > MAX_BUCKETS as u128 {
            return Err(MeterError::TooManyBuckets {
                buckets: u64::try_from(buckets).unwrap_or(u64::MAX),
            });
        }
        Ok(Meter {
            start,
            end,
            bucket_ns,
            buckets: buckets as usize,
            links: 0,
            bucket_bytes: Vec::new(),
            bucket_messages: Vec::new(),
            bucket_busy_ns: Vec::new(),
            totals: Vec::new(),
            business_hours: Vec::new(),
            kinds: [KindTotals::default(); 256],
            kind_names: Vec::new(),
            nodes: Vec::new(),
            outside_period: 0,
        })
    }

    /// Number of time buckets.
    pub fn bucket_count(&self) -> usize {
        self.buckets
    }

    /// Start of bucket `index`; the period's end for `index` at or past
    /// [`bucket_count`](Self::bucket_count).
    pub fn bucket_start(&self, index: usize) -> Time {
        let offset_ns = index as i128 * self.bucket_ns as i128;
        let start_ns = self.start.as_nanos() as i128 + offset_ns;
        Time(start_ns.min(self.end.as_nanos() as i128) as i64)
    }

    /// Length of bucket `index`: the bucket length, or less for the last.
    pub fn bucket_length(&self, index: usize) -> Duration {
        let from = self.bucket_start(index);
        let to = self.bucket_start(index + 1).min(self.end);
        to.saturating_since(from)
    }

    /// The id for message kind `name`, assigning the next free id on first
    /// use. Ids are given in call order, so a driver that interns its kinds
    /// in a fixed order gets the same ids every run.
    pub fn intern_kind(&mut self, name: &'static str) -> Result<u8, MeterError> {
        if let Some(id) = self.kind_names.iter().position(|&known| known == name) {
            return Ok(id as u8);
        }
        let id = u8::try_from(self.kind_names.len()).map_err(|_| MeterError::TooManyKinds)?;
        self.kind_names.push(name);
        Ok(id)
    }

    /// Counts bytes on `link` as business-hours traffic when `hours`
    /// contains their time on `clock`, the clock of the site the link
    /// serves.
    pub fn set_business_hours(&mut self, link: u16, clock: LocalClock, hours: BusinessHours) {
        self.ensure_link(link);
        self.business_hours[link as usize] = Some((clock, hours));
    }

    /// Records one message of `wire_bytes` and kind id `kind` put on `link`
    /// in direction `dir` at `at` (when its transmission started).
    pub fn record_link(&mut self, link: u16, dir: Direction, at: Time, wire_bytes: u64, kind: u8) {
        self.ensure_link(link);
        let lane = lane(link, dir);

        // Whole-run totals for the link direction and the kind.
        let business = match &self.business_hours[link as usize] {
            Some((clock, hours)) => hours.contains(clock, at),
            None => false,
        };
        let totals = &mut self.totals[lane];
        totals.bytes += wire_bytes;
        totals.messages += 1;
        if business {
            totals.business_bytes += wire_bytes;
            totals.business_messages += 1;
        }
        let per_kind = &mut self.kinds[kind as usize];
        per_kind.bytes += wire_bytes;
        per_kind.messages += 1;

        // The time series, when inside the period.
        match self.bucket_of(at) {
            Some(bucket) => {
                let index = lane * self.buckets + bucket;
                self.bucket_bytes[index] += wire_bytes;
                self.bucket_messages[index] += 1;
            }
            None => self.outside_period += 1,
        }
    }

    /// Records that the transmitter of `link` in direction `dir` was busy
    /// during `[from, to)`, splitting the interval across buckets.
    pub fn record_busy(&mut self, link: u16, dir: Direction, from: Time, to: Time) {
        debug_assert!(from <= to, "busy interval ends before it starts");
        self.ensure_link(link);
        let lane = lane(link, dir);
        let busy = &mut self.totals[lane].busy_ns;
        *busy = busy.saturating_add(to.saturating_since(from).as_nanos() as u64);

        // Clip to the period, then walk the buckets the interval touches.
        let mut cursor = from.max(self.start);
        let stop = to.min(self.end);
        while cursor < stop {
            let Some(bucket) = self.bucket_of(cursor) else {
                break;
            };
            let piece_end = self.bucket_start(bucket + 1).min(stop);
            let piece_ns = piece_end.saturating_since(cursor).as_nanos() as u64;
            self.bucket_busy_ns[lane * self.buckets + bucket] += piece_ns;
            cursor = piece_end;
        }
    }

    /// Records that `node` sent one message of `wire_bytes`.
    pub fn record_sent(&mut self, node: u32, wire_bytes: u64) {
        let totals = self.node_mut(node);
        totals.bytes_out += wire_bytes;
        totals.messages_out += 1;
    }

    /// Records that `node` received one message of `wire_bytes`.
    pub fn record_received(&mut self, node: u32, wire_bytes: u64) {
        let totals = self.node_mut(node);
        totals.bytes_in += wire_bytes;
        totals.messages_in += 1;
    }

    /// What `node` sent and received so far; zeros for a node never seen.
    pub fn node_totals(&self, node: u32) -> NodeTotals {
        self.nodes.get(node as usize).copied().unwrap_or_default()
    }

    /// Every node id up to the largest seen, with its totals, in id order.
    pub fn nodes(&self) -> impl Iterator<Item = (u32, NodeTotals)> + '_ {
        self.nodes
            .iter()
            .enumerate()
            .map(|(id, &totals)| (id as u32, totals))
    }

    /// Totals for kind id `kind`.
    pub fn kind_totals(&self, kind: u8) -> KindTotals {
        self.kinds[kind as usize]
    }

    /// Highest utilisation of any bucket of `link` in direction `dir`:
    /// busy time over bucket length, 0 to 1.
    pub fn peak_utilisation(&self, link: u16, dir: Direction) -> f64 {
        if link as usize >= self.links {
            return 0.0;
        }
        let lane = lane(link, dir);
        (0..self.buckets)
            .map(|bucket| self.utilisation(lane, bucket))
            .fold(0.0, f64::max)
    }

    /// A serialisable summary of the totals: per link direction, per kind,
    /// and the period. Per-node totals are left out, since a run may have a
    /// million nodes; read them with [`Meter::nodes`].
    pub fn snapshot(&self) -> MeterSnapshot {
        let period = self.end.saturating_since(self.start);
        let links = (0..self.links as u16)
            .flat_map(|link| Direction::ALL.map(|dir| (link, dir)))
            .map(|(link, dir)| {
                let totals = self.totals[lane(link, dir)];
                let busy_in_period_ns: u64 = self.lane_busy(lane(link, dir)).iter().sum();
                LinkSnapshot {
                    link,
                    direction: dir,
                    bytes: totals.bytes,
                    messages: totals.messages,
                    busy_s: totals.busy_ns as f64 / 1e9,
                    mean_utilisation: busy_in_period_ns as f64 / period.as_nanos() as f64,
                    peak_utilisation: self.peak_utilisation(link, dir),
                    business_hours_bytes: totals.business_bytes,
                    business_hours_messages: totals.business_messages,
                }
            })
            .collect();
        let kinds = self
            .kinds
            .iter()
            .enumerate()
            .filter(|(id, totals)| totals.messages > 0 || *id < self.kind_names.len())
            .map(|(id, totals)| KindSnapshot {
                id: id as u8,
                name: self.kind_names.get(id).copied().unwrap_or("unnamed"),
                messages: totals.messages,
                bytes: totals.bytes,
            })
            .collect();
        MeterSnapshot {
            start: self.start,
            end: self.end,
            bucket_s: self.bucket_ns as f64 / 1e9,
            links,
            kinds,
            records_outside_period: self.outside_period,
        }
    }

    /// The time series, one row per bucket, link and direction, ordered by
    /// bucket, then link, then direction; rows with no traffic included, so
    /// every series is complete.
    pub fn rows(&self) -> impl Iterator<Item = SeriesRow> + '_ {
        let lanes = self.links * 2;
        (0..self.buckets).flat_map(move |bucket| {
            (0..lanes).map(move |lane| {
                let index = lane * self.buckets + bucket;
                SeriesRow {
                    bucket_start: self.bucket_start(bucket),
                    link: (lane / 2) as u16,
                    direction: Direction::ALL[lane % 2],
                    bytes: self.bucket_bytes[index],
                    messages: self.bucket_messages[index],
                    busy_s: self.bucket_busy_ns[index] as f64 / 1e9,
                    utilisation: self.utilisation(lane, bucket),
                }
            })
        })
    }

    /// The bucket that holds `at`, if inside the period.
    #[inline]
    fn bucket_of(&self, at: Time) -> Option<usize> {
        if at < self.start || at >= self.end {
            return None;
        }
        let offset_ns = (at.as_nanos() - self.start.as_nanos()) as u64;
        let bucket = (offset_ns / self.bucket_ns) as usize;
        debug_assert!(bucket < self.buckets);
        Some(bucket)
    }

    /// Busy time over bucket length for one lane and bucket.
    fn utilisation(&self, lane: usize, bucket: usize) -> f64 {
        let busy_ns = self.bucket_busy_ns[lane * self.buckets + bucket];
        busy_ns as f64 / self.bucket_length(bucket).as_nanos() as f64
    }

    /// The busy-time buckets of one lane.
    fn lane_busy(&self, lane: usize) -> &[u64] {
        &self.bucket_busy_ns[lane * self.buckets..(lane + 1) * self.buckets]
    }

    /// Grows the per-link storage to hold `link`.
    #[inline]
    fn ensure_link(&mut self, link: u16) {
        let needed = link as usize + 1;
        if needed <= self.links {
            return;
        }
        let lanes = needed * 2;
        self.bucket_bytes.resize(lanes * self.buckets, 0);
        self.bucket_messages.resize(lanes * self.buckets, 0);
        self.bucket_busy_ns.resize(lanes * self.buckets, 0);
        self.totals.resize(lanes, DirectionTotals::default());
        self.business_hours.resize(needed, None);
        self.links = needed;
    }

    /// The totals of `node`, growing storage to hold it.
    #[inline]
    fn node_mut(&mut self, node: u32) -> &mut NodeTotals {
        let index = node as usize;
        if index >= self.nodes.len() {
            self.nodes.resize(index + 1, NodeTotals::default());
        }
        &mut self.nodes[index]
    }
}

/// The per-direction slot of `link`: `Down` then `Up`.
#[inline]
fn lane(link: u16, dir: Direction) -> usize {
    link as usize * 2 + dir.index()
}

/// Writes a [`Time`] as an RFC 3339 UTC string, for readable CSV and JSON.
fn rfc3339<S: Serializer>(t: &Time, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(t)
}

/// Whole-run totals of one link direction.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LinkSnapshot {
    /// The link id.
    pub link: u16,
    /// The direction.
    pub direction: Direction,
    /// Wire bytes put on the link.
    pub bytes: u64,
    /// Messages put on the link.
    pub messages: u64,
    /// Transmitter busy time, in seconds.
    pub busy_s: f64,
    /// Busy time inside the period over the period's length, 0 to 1.
    pub mean_utilisation: f64,
    /// Highest busy share of any bucket, 0 to 1.
    pub peak_utilisation: f64,
    /// Wire bytes sent in the site's business hours (0 if none were set).
    pub business_hours_bytes: u64,
    /// Messages sent in the site's business hours.
    pub business_hours_messages: u64,
}

/// Whole-run totals of one message kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KindSnapshot {
    /// The kind id.
    pub id: u8,
    /// Its interned name, or `"unnamed"`.
    pub name: &'static str,
    /// Messages of this kind.
    pub messages: u64,
    /// Their wire bytes.
    pub bytes: u64,
}

/// The meter's totals, for the JSON result.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct MeterSnapshot {
    /// Start of the metered period.
    #[serde(serialize_with = "rfc3339")]
    pub start: Time,
    /// End of the metered period (exclusive).
    #[serde(serialize_with = "rfc3339")]
    pub end: Time,
    /// Bucket length, in seconds.
    pub bucket_s: f64,
    /// One entry per link and direction, in link order, `down` first.
    pub links: Vec<LinkSnapshot>,
    /// Kinds that were interned or seen, in id order.
    pub kinds: Vec<KindSnapshot>,
    /// Link records whose time was outside the period: in the totals, in no
    /// bucket.
    pub records_outside_period: u64,
}

/// One row of the time series, for CSV output.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SeriesRow {
    /// Start of the bucket.
    #[serde(serialize_with = "rfc3339")]
    pub bucket_start: Time,
    /// The link id.
    pub link: u16,
    /// The direction.
    pub direction: Direction,
    /// Wire bytes whose transmission started in the bucket.
    pub bytes: u64,
    /// Messages whose transmission started in the bucket.
    pub messages: u64,
    /// Transmitter busy time inside the bucket, in seconds.
    pub busy_s: f64,
    /// Busy time over bucket length, 0 to 1.
    pub utilisation: f64,
}

/// Longest delay the propagation histogram resolves, in milliseconds: 30
/// days. A longer delay is recorded as 30 days.
pub const PROPAGATION_MAX_MS: u64 = 30 * 24 * 3600 * 1000;

/// Policy propagation delays: from a change's creation to its application
/// on each client, as an HDR histogram with 1 ms resolution and three
/// significant digits (so a reported percentile is within 0.1%).
#[derive(Clone, Debug)]
pub struct PropagationMeter {
    histogram: Histogram<u64>,
    never_applied: u64,
}

impl PropagationMeter {
    /// An empty meter covering 1 ms to 30 days.
    pub fn new() -> Self {
        let histogram = Histogram::new_with_bounds(1, PROPAGATION_MAX_MS, 3)
            .expect("constant histogram bounds are valid");
        PropagationMeter {
            histogram,
            never_applied: 0,
        }
    }

    /// Records one client applying one change after `delay`. Delays are
    /// rounded to the millisecond; below 1 ms count as 1 ms, above 30 days
    /// as 30 days.
    pub fn record(&mut self, delay: Duration) {
        let ms = (delay.as_nanos() + 500_000) / 1_000_000;
        let ms = u64::try_from(ms)
            .unwrap_or(u64::MAX)
            .clamp(1, PROPAGATION_MAX_MS);
        self.histogram.saturating_record(ms);
    }

    /// Records one (change, client) pair that never applied the change by
    /// the end of the run; it appears in no percentile.
    pub fn record_never_applied(&mut self) {
        self.never_applied += 1;
    }

    /// Adds another meter's records to this one, for combining per-change
    /// meters.
    pub fn merge(&mut self, other: &PropagationMeter) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with equal bounds add");
        self.never_applied += other.never_applied;
    }

    /// How many delays were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// How many pairs never applied.
    pub fn never_applied(&self) -> u64 {
        self.never_applied
    }

    /// The delay at `quantile` (0 to 1), in seconds; `None` when empty.
    pub fn quantile_s(&self, quantile: f64) -> Option<f64> {
        (!self.histogram.is_empty())
            .then(|| self.histogram.value_at_quantile(quantile) as f64 / 1000.0)
    }

    /// The summary the report prints.
    pub fn summary(&self) -> PropagationSummary {
        PropagationSummary {
            count: self.count(),
            never_applied: self.never_applied,
            p50_s: self.quantile_s(0.50),
            p90_s: self.quantile_s(0.90),
            p99_s: self.quantile_s(0.99),
            max_s: (!self.histogram.is_empty()).then(|| self.histogram.max() as f64 / 1000.0),
        }
    }
}

impl Default for PropagationMeter {
    fn default() -> Self {
        Self::new()
    }
}

/// Propagation delay percentiles, in seconds; `None` when nothing was
/// recorded.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PropagationSummary {
    /// Delays recorded.
    pub count: u64,
    /// (change, client) pairs never applied by the end of the run.
    pub never_applied: u64,
    /// Median delay, in seconds.
    pub p50_s: Option<f64>,
    /// 90th percentile delay, in seconds.
    pub p90_s: Option<f64>,
    /// 99th percentile delay, in seconds.
    pub p99_s: Option<f64>,
    /// Longest delay, in seconds.
    pub max_s: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Duration = Duration::from_secs(60);

    fn meter() -> Meter {
        // One hour from 2026-03-02T00:00Z in 10-minute buckets.
        let start = Time::from_secs(1_772_409_600);
        Meter::new(start, start + 60 * MINUTE, 10 * MINUTE).unwrap()
    }

    /// The instant `minutes` after (or, if negative, before) the start.
    fn at(meter: &Meter, minutes: f64) -> Time {
        let offset = Duration::from_secs_f64(minutes.abs() * 60.0);
        if minutes < 0.0 {
            meter.bucket_start(0) - offset
        } else {
            meter.bucket_start(0) + offset
        }
    }

    #[test]
    fn rejects_empty_periods_and_buckets() {
        let t = Time::from_secs(100);
        assert_eq!(
            Meter::new(t, t, MINUTE).err(),
            Some(MeterError::EmptyPeriod { start: t, end: t })
        );
        assert_eq!(
            Meter::new(t, t + MINUTE, Duration::ZERO).err(),
            Some(MeterError::ZeroBucket)
        );
        assert!(matches!(
            Meter::new(t, t + 60 * MINUTE, Duration::from_millis(1)),
            Err(MeterError::TooManyBuckets { buckets: 3_600_000 })
        ));
    }

    #[test]
    fn a_bucket_longer_than_the_period_is_one_short_bucket() {
        let start = Time::from_secs(0);
        let mut meter = Meter::new(start, start + MINUTE, Duration::MAX).unwrap();
        assert_eq!(meter.bucket_count(), 1);
        assert_eq!(meter.bucket_start(1), start + MINUTE);
        meter.record_busy(0, Direction::Down, start, start + 2 * MINUTE);
        assert_eq!(meter.peak_utilisation(0, Direction::Down), 1.0);
    }

    #[test]
    fn last_bucket_is_shorter_when_the_period_does_not_divide() {
        let start = Time::from_secs(0);
        let meter = Meter::new(start, start + 25 * MINUTE, 10 * MINUTE).unwrap();
        assert_eq!(meter.bucket_count(), 3);
        assert_eq!(meter.bucket_length(1), 10 * MINUTE);
        assert_eq!(meter.bucket_length(2), 5 * MINUTE);
    }

    #[test]
    fn records_land_in_their_bucket_and_totals() {
        let mut meter = meter();
        let policy = meter.intern_kind("policy").unwrap();
        let stats = meter.intern_kind("stats").unwrap();
        assert_eq!((policy, stats), (0, 1));
        assert_eq!(meter.intern_kind("policy"), Ok(0));

        meter.record_link(1, Direction::Down, at(&meter, 5.0), 1000, policy);
        meter.record_link(1, Direction::Down, at(&meter, 9.99), 500, policy);
        meter.record_link(1, Direction::Up, at(&meter, 10.0), 300, stats);
        meter.record_link(0, Direction::Up, at(&meter, 70.0), 42, stats);

        let rows: Vec<SeriesRow> = meter.rows().collect();
        // 6 buckets x 2 links x 2 directions, bucket-major.
        assert_eq!(rows.len(), 24);
        let row = |bucket: usize, link: u16, dir: Direction| {
            rows.iter()
                .find(|r| {
                    r.bucket_start == meter.bucket_start(bucket)
                        && r.link == link
                        && r.direction == dir
                })
                .unwrap()
                .clone()
        };
        assert_eq!(row(0, 1, Direction::Down).bytes, 1500);
        assert_eq!(row(0, 1, Direction::Down).messages, 2);
        assert_eq!(row(1, 1, Direction::Up).bytes, 300);
        assert_eq!(row(1, 1, Direction::Down).bytes, 0);
        assert_eq!(rows[0].link, 0);
        assert_eq!(rows[1].direction, Direction::Up);
        assert_eq!(rows[4].bucket_start, meter.bucket_start(1));

        let snapshot = meter.snapshot();
        assert_eq!(snapshot.records_outside_period, 1);
        assert_eq!(snapshot.links.len(), 4);
        assert_eq!(snapshot.links[1].bytes, 42);
        assert_eq!(snapshot.links[2].bytes, 1500);
        assert_eq!(
            meter.kind_totals(policy),
            KindTotals {
                messages: 2,
                bytes: 1500
            }
        );
        assert_eq!(snapshot.kinds[1].name, "stats");
        assert_eq!(snapshot.kinds[1].bytes, 342);
    }

    #[test]
    fn busy_time_splits_across_bucket_boundaries() {
        let mut meter = meter();
        // 08:00 to 23:00 minutes: 2 min in bucket 0, 10 in bucket 1, 3 in 2.
        meter.record_busy(0, Direction::Up, at(&meter, 8.0), at(&meter, 23.0));
        let busy: Vec<f64> = meter
            .rows()
            .filter(|r| r.direction == Direction::Up)
            .map(|r| r.busy_s)
            .collect();
        assert_eq!(busy, vec![120.0, 600.0, 180.0, 0.0, 0.0, 0.0]);
        assert_eq!(meter.peak_utilisation(0, Direction::Up), 1.0);
        assert_eq!(meter.peak_utilisation(0, Direction::Down), 0.0);

        // Busy time before the period counts in the total only.
        meter.record_busy(0, Direction::Up, at(&meter, -5.0), at(&meter, 1.0));
        let snapshot = meter.snapshot();
        assert_eq!(snapshot.links[1].busy_s, 21.0 * 60.0);
        assert!((snapshot.links[1].mean_utilisation - 16.0 / 60.0).abs() < 1e-12);
        // Past the end is clipped, and an exact end adds nothing.
        meter.record_busy(0, Direction::Up, at(&meter, 55.0), at(&meter, 65.0));
        let last = meter
            .rows()
            .filter(|r| r.direction == Direction::Up)
            .last()
            .unwrap();
        assert_eq!(last.busy_s, 300.0);
        assert_eq!(last.utilisation, 0.5);
    }

    #[test]
    fn business_hours_bytes_use_the_site_clock() {
        let mut meter = meter();
        let kolkata = LocalClock::for_zone("Asia/Kolkata").unwrap();
        meter.set_business_hours(2, kolkata, BusinessHours::OFFICE);
        let monday_0859_ist = Time::from_secs(1_772_422_140);
        let monday_0900_ist = Time::from_secs(1_772_422_200);
        meter.record_link(2, Direction::Down, monday_0859_ist, 100, 0);
        meter.record_link(2, Direction::Down, monday_0900_ist, 250, 0);
        meter.record_link(1, Direction::Down, monday_0900_ist, 999, 0);
        let snapshot = meter.snapshot();
        assert_eq!(snapshot.links[4].business_hours_bytes, 250);
        assert_eq!(snapshot.links[4].business_hours_messages, 1);
        assert_eq!(snapshot.links[2].business_hours_bytes, 0);
    }

    #[test]
    fn node_totals_grow_densely() {
        let mut meter = meter();
        meter.record_sent(3, 100);
        meter.record_received(0, 100);
        meter.record_received(0, 50);
        assert_eq!(meter.nodes().count(), 4);
        assert_eq!(
            meter.node_totals(0),
            NodeTotals {
                bytes_out: 0,
                messages_out: 0,
                bytes_in: 150,
                messages_in: 2,
            }
        );
        assert_eq!(meter.node_totals(3).bytes_out, 100);
        assert_eq!(meter.node_totals(99), NodeTotals::default());
    }

    #[test]
    fn snapshot_and_rows_serialise_with_readable_times() {
        let mut meter = meter();
        meter.record_link(0, Direction::Up, at(&meter, 1.0), 10, 0);
        let json = serde_json::to_value(meter.snapshot()).unwrap();
        assert_eq!(json["start"], "2026-03-02T00:00:00Z");
        assert_eq!(json["links"][1]["direction"], "up");
        let row = serde_json::to_value(meter.rows().next().unwrap()).unwrap();
        assert_eq!(row["bucket_start"], "2026-03-02T00:00:00Z");
    }

    #[test]
    fn propagation_percentiles_in_seconds() {
        let mut meter = PropagationMeter::new();
        assert_eq!(meter.summary().p50_s, None);
        // 1..=1000 seconds, one each.
        for s in 1..=1000 {
            meter.record(Duration::from_secs(s));
        }
        meter.record_never_applied();
        let summary = meter.summary();
        assert_eq!(summary.count, 1000);
        assert_eq!(summary.never_applied, 1);
        let close = |got: Option<f64>, want: f64| {
            let got = got.unwrap();
            assert!((got - want).abs() <= want * 0.001, "{got} vs {want}");
        };
        close(summary.p50_s, 500.0);
        close(summary.p90_s, 900.0);
        close(summary.p99_s, 990.0);
        close(summary.max_s, 1000.0);
    }

    #[test]
    fn propagation_clamps_and_merges() {
        let mut short = PropagationMeter::new();
        short.record(Duration::from_micros(10));
        assert_eq!(short.quantile_s(1.0), Some(0.001));
        let mut long = PropagationMeter::new();
        long.record(Duration::from_secs(90 * 24 * 3600));
        long.record_never_applied();
        short.merge(&long);
        assert_eq!(short.count(), 2);
        assert_eq!(short.never_applied(), 1);
        let max = short.summary().max_s.unwrap();
        let thirty_days_s = PROPAGATION_MAX_MS as f64 / 1000.0;
        assert!((max - thirty_days_s).abs() <= thirty_days_s * 0.001);
    }
}
