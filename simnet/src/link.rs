//! A network link between two sites: a WAN line to the parent site, or a LAN.
//!
//! Each direction is a FIFO with one transmitter: a message waits until the
//! transmitter is free, is serialised at the bandwidth left over by other
//! traffic at that local hour, then propagates for the latency plus a random
//! jitter. Loss, duplication and partitions are drawn per message.
//!
//! # What a message is here
//!
//! A message is a number of wire bytes (see [`crate::transport`]) handed to
//! the link at once. Loss and duplication apply to whole messages, not to TCP
//! segments: a lost message stands for a TCP connection that gave up or a
//! request that timed out, and the driver decides what happens next. Flow and
//! congestion control are not modelled; the transmitter sends at the
//! available rate from the first byte.
//!
//! # Randomness
//!
//! Every call to [`Link::transmit`] takes exactly four 64-bit draws from the
//! stream it is given, whatever the outcome, and turns them into numbers
//! with the arithmetic in this file rather than a library distribution. So a
//! change of the loss rate does not shift the jitter of later messages, and an
//! upgrade of `rand` cannot change a result. A link with no jitter, loss or
//! duplication, whose four numbers would change nothing, lets them go by
//! unmade ([`Draws::skip`]): the stream is where four draws would leave it.

use std::cell::Cell;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;
use tiersync_engine::Time;

use crate::calendar::LocalClock;
use crate::draws::Draws;

/// Nanoseconds per second, for converting bit counts to transmit time.
const NANOS_PER_SEC: u128 = 1_000_000_000;

/// Which way a message crosses a link.
///
/// Links are named from the tree of sites: `Down` runs from the parent site
/// (towards the master) to the child site, `Up` from the child to the parent.
/// On a LAN the server side counts as the parent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Parent to child: policies flowing out from the master.
    Down,
    /// Child to parent: statistics and requests flowing towards the master.
    Up,
}

impl Direction {
    /// Both directions, in index order.
    pub const ALL: [Direction; 2] = [Direction::Down, Direction::Up];

    /// 0 for `Down`, 1 for `Up`: an index into per-direction arrays.
    #[inline]
    pub const fn index(self) -> usize {
        match self {
            Direction::Down => 0,
            Direction::Up => 1,
        }
    }

    /// The other direction, where a message's acknowledgements travel.
    pub const fn reverse(self) -> Direction {
        match self {
            Direction::Down => Direction::Up,
            Direction::Up => Direction::Down,
        }
    }

    /// `"down"` or `"up"`, as written in CSV output.
    pub const fn as_str(self) -> &'static str {
        match self {
            Direction::Down => "down",
            Direction::Up => "up",
        }
    }
}

/// The properties of one link, the same in both directions.
#[derive(Clone, Debug)]
pub struct LinkConfig {
    /// Line rate of each direction, in bits per second.
    pub bandwidth_bps: u64,
    /// One-way propagation delay, added to every message after it is
    /// serialised.
    pub latency: Duration,
    /// Largest extra one-way delay; each message gets a uniform draw in
    /// `[0, jitter]`. Because the draw is independent per message, a message
    /// may overtake one sent before it. That is intended: it models separate
    /// connections over different paths. A driver that needs one
    /// connection's in-order delivery must hold early arrivals itself.
    pub jitter: Duration,
    /// Probability, in `[0, 1]`, that a whole message is lost.
    pub loss: f64,
    /// Probability, in `[0, 1]`, that a delivered message arrives twice.
    pub duplicate: f64,
    /// Share of the line rate, in `[0, 1)`, used by other traffic during each
    /// local hour of the child site (index 0 is 00:00–00:59 local).
    pub background: [f64; 24],
    /// The child site's clock, which says which `background` hour applies.
    pub clock: LocalClock,
}

impl LinkConfig {
    /// A link with no jitter, loss, duplication or background traffic, on
    /// UTC; the fields are public for the rest.
    pub fn new(bandwidth_bps: u64, latency: Duration) -> Self {
        LinkConfig {
            bandwidth_bps,
            latency,
            jitter: Duration::ZERO,
            loss: 0.0,
            duplicate: 0.0,
            background: [0.0; 24],
            clock: LocalClock::utc(),
        }
    }

    /// Checks the ranges documented on each field.
    pub fn validate(&self) -> Result<(), LinkError> {
        if self.bandwidth_bps == 0 {
            return Err(LinkError::ZeroBandwidth);
        }
        check_probability("loss", self.loss)?;
        check_probability("duplicate", self.duplicate)?;
        for (hour, &share) in self.background.iter().enumerate() {
            if !(0.0..1.0).contains(&share) {
                return Err(LinkError::BackgroundOutOfRange { hour, share });
            }
        }
        Ok(())
    }
}

/// A link configuration or fault window that cannot be simulated, usually
/// from a scenario file.
#[derive(Debug, Error, PartialEq)]
#[non_exhaustive]
pub enum LinkError {
    /// A link must carry at least one bit per second.
    #[error("link bandwidth must be above 0 bit/s")]
    ZeroBandwidth,
    /// A probability outside `[0, 1]`, or not a number.
    #[error("{what} probability {value} is outside [0, 1]")]
    ProbabilityOutOfRange {
        /// Which probability: `"loss"` or `"duplicate"`.
        what: &'static str,
        /// The value given.
        value: f64,
    },
    /// A background share outside `[0, 1)`: at 1 nothing is left for us.
    #[error("background share {share} at local hour {hour} is outside [0, 1)")]
    BackgroundOutOfRange {
        /// The local hour, 0–23.
        hour: usize,
        /// The value given.
        share: f64,
    },
    /// A fault window that ends before it starts, or is empty.
    #[error("fault window from {from} to {to} is empty")]
    EmptyWindow {
        /// Start of the window as given.
        from: Time,
        /// End of the window as given.
        to: Time,
    },
}

fn check_probability(what: &'static str, value: f64) -> Result<(), LinkError> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(LinkError::ProbabilityOutOfRange { what, value })
    }
}

/// Why a message did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LossReason {
    /// Its transmission would have started inside a partition window.
    Partition,
    /// The loss draw (configured rate or a loss window's rate) took it.
    Dropped,
}

/// What became of one message handed to [`Link::transmit`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transmission {
    /// The message never arrives.
    Lost {
        /// Why.
        reason: LossReason,
        /// When its transmission started or would have started.
        start: Time,
        /// How long it occupied the transmitter: its full serialisation time
        /// when `Dropped` (it was sent and lost further along), zero for a
        /// `Partition` (nothing could be sent).
        serialisation: Duration,
    },
    /// The message arrives, perhaps twice.
    Delivered {
        /// When its first bit left: later than `now` if it queued.
        start: Time,
        /// How long it occupied the transmitter.
        serialisation: Duration,
        /// When its last bit arrives at the far end.
        arrive: Time,
        /// When a duplicate copy arrives, never before `arrive`. The copy
        /// does not occupy the transmitter: it stands for a copy made along
        /// the path.
        duplicate_arrive: Option<Time>,
    },
}

impl Transmission {
    /// The interval during which the message occupied the transmitter, for
    /// utilisation metering; `None` if it never did.
    pub fn busy_span(&self) -> Option<(Time, Time)> {
        let (start, serialisation) = match *self {
            Transmission::Lost { start, serialisation, .. }
            | Transmission::Delivered { start, serialisation, .. } => (start, serialisation),
        };
        (!serialisation.is_zero()).then(|| (start, start + serialisation))
    }
}

/// A time window `[from, to)` with a probability that overrides the
/// configured one.
#[derive(Clone, Copy, Debug, PartialEq)]
struct RateWindow {
    from: Time,
    to: Time,
    rate: f64,
}

/// One link's state: per-direction transmitter occupancy and fault windows.
///
/// Calling order: build with [`Link::new`], add fault windows, then call
/// [`transmit`](Link::transmit) with non-decreasing `now` per direction, as
/// a discrete-event driver does. Messages are sent in call order.
#[derive(Clone, Debug)]
pub struct Link {
    config: LinkConfig,
    /// Per direction: when the transmitter finishes its last message.
    busy_until: [Time; 2],
    /// Per direction: total time spent transmitting, in nanoseconds.
    busy_total_ns: [u64; 2],
    /// Windows `[from, to)` during which nothing can be sent either way.
    partitions: Vec<(Time, Time)>,
    loss_windows: Vec<RateWindow>,
    duplicate_windows: Vec<RateWindow>,
    /// The rate left for us in the quarter hour last asked about:
    /// (quarter-hour index since the epoch, bits per second). Every time
    /// zone's offset and every daylight-saving change falls on a quarter
    /// hour, so the local hour is constant within one; this saves a
    /// time-zone lookup and a float conversion per message.
    rate_memo: Cell<(i64, u64)>,
    /// Serialisation times computed lately, by wire bytes modulo the
    /// number of slots: (wire bytes, rate, nanoseconds). A link carries a
    /// few message sizes over and over at one rate a quarter hour, and a
    /// division costs more than this look-up.
    serialisation_memo: [Cell<(u64, u64, u64)>; SERIALISATION_SLOTS],
    /// Whether the background is zero all day (a LAN): no lookup at all.
    idle: bool,
    /// The rate left when the background is zero, as
    /// [`Link::available_bps`] computes it: the line rate, at least 1.
    idle_bps: u64,
    /// `config.latency` in nanoseconds, clamped to `i64::MAX` as adding a
    /// `Duration` to a [`Time`] clamps it.
    latency_ns: i64,
    /// Width of the jitter draw: the jitter in nanoseconds plus one (see
    /// [`Link::draw_jitter`]); 1 when there is no jitter.
    jitter_span: u64,
    /// Whether a crossing's draws can change its outcome: the link has
    /// jitter, a loss or duplication rate, or a loss or duplication window.
    /// When not, [`Link::transmit`] skips them.
    random: bool,
}

/// Slots of [`Link`]'s serialisation memo.
const SERIALISATION_SLOTS: usize = 8;

/// Nanoseconds in a quarter hour.
const QUARTER_HOUR_NS: i64 = 15 * 60 * 1_000_000_000;

fn config_is_idle(config: &LinkConfig) -> bool {
    config.background.iter().all(|s| *s == 0.0)
}

impl Link {
    /// A link with the given properties, idle in both directions.
    pub fn new(config: LinkConfig) -> Result<Link, LinkError> {
        config.validate()?;
        let idle = config_is_idle(&config);
        let idle_bps = ((config.bandwidth_bps as f64 * (1.0 - 0.0)) as u64).max(1);
        let latency_ns = clamp_ns(config.latency);
        let jitter_ns = config.jitter.as_nanos().min(u64::MAX as u128 - 1) as u64;
        Ok(Link {
            config,
            busy_until: [Time(i64::MIN); 2],
            busy_total_ns: [0; 2],
            partitions: Vec::new(),
            loss_windows: Vec::new(),
            duplicate_windows: Vec::new(),
            rate_memo: Cell::new((i64::MIN, 0)),
            serialisation_memo: std::array::from_fn(|_| Cell::new((u64::MAX, 0, 0))),
            idle,
            idle_bps,
            latency_ns,
            jitter_span: jitter_ns + 1,
            random: false,
        }
        .with_randomness_noted())
    }

    /// Notes whether the link's draws can change an outcome ([`Link::random`]).
    fn with_randomness_noted(mut self) -> Link {
        self.note_randomness();
        self
    }

    /// Sets [`Link::random`] from the configuration and fault windows.
    fn note_randomness(&mut self) {
        let c = &self.config;
        self.random = self.jitter_span > 1
            || c.loss > 0.0
            || c.duplicate > 0.0
            || !self.loss_windows.is_empty()
            || !self.duplicate_windows.is_empty();
    }

    /// The link's configuration.
    pub fn config(&self) -> &LinkConfig {
        &self.config
    }

    /// Cuts the link both ways during `[from, to)`: a message whose
    /// transmission would start in that window is lost.
    pub fn add_partition(&mut self, from: Time, to: Time) -> Result<(), LinkError> {
        check_window(from, to)?;
        self.partitions.push((from, to));
        Ok(())
    }

    /// Replaces the configured loss probability by `rate` for messages whose
    /// transmission starts in `[from, to)`. Where windows overlap, the one
    /// added last applies.
    pub fn add_loss_window(&mut self, from: Time, to: Time, rate: f64) -> Result<(), LinkError> {
        check_window(from, to)?;
        check_probability("loss", rate)?;
        self.loss_windows.push(RateWindow { from, to, rate });
        self.note_randomness();
        Ok(())
    }

    /// Replaces the configured duplication probability by `rate` for
    /// messages whose transmission starts in `[from, to)`; the window added
    /// last wins.
    pub fn add_duplicate_window(
        &mut self,
        from: Time,
        to: Time,
        rate: f64,
    ) -> Result<(), LinkError> {
        check_window(from, to)?;
        check_probability("duplicate", rate)?;
        self.duplicate_windows.push(RateWindow { from, to, rate });
        self.note_randomness();
        Ok(())
    }

    /// Whether `t` is inside a partition window.
    pub fn is_partitioned(&self, t: Time) -> bool {
        self.partitions.iter().any(|&(from, to)| from <= t && t < to)
    }

    /// The loss probability for a transmission starting at `t`.
    #[inline]
    pub fn loss_rate_at(&self, t: Time) -> f64 {
        if self.loss_windows.is_empty() {
            return self.config.loss;
        }
        rate_at(&self.loss_windows, t).unwrap_or(self.config.loss)
    }

    /// The duplication probability for a transmission starting at `t`.
    #[inline]
    pub fn duplicate_rate_at(&self, t: Time) -> f64 {
        if self.duplicate_windows.is_empty() {
            return self.config.duplicate;
        }
        rate_at(&self.duplicate_windows, t).unwrap_or(self.config.duplicate)
    }

    /// The rate left for our traffic at `t`, in bits per second: the line
    /// rate less the background share of the child site's local hour, and
    /// at least 1.
    #[inline]
    pub fn available_bps(&self, t: Time) -> u64 {
        if self.idle {
            return self.idle_bps;
        }
        let quarter = t.0.div_euclid(QUARTER_HOUR_NS);
        let (memo_quarter, memo_bps) = self.rate_memo.get();
        if memo_quarter == quarter {
            return memo_bps;
        }
        let share = self.config.background[self.config.clock.local_hour(t) as usize];
        debug_assert!((0.0..1.0).contains(&share));
        let available = self.config.bandwidth_bps as f64 * (1.0 - share);
        let bps = (available as u64).max(1);
        self.rate_memo.set((quarter, bps));
        bps
    }

    /// When the transmitter in direction `dir` is next free.
    pub fn busy_until(&self, dir: Direction) -> Time {
        self.busy_until[dir.index()]
    }

    /// Total time the transmitter in direction `dir` has spent sending.
    pub fn busy_time(&self, dir: Direction) -> Duration {
        Duration::from_nanos(self.busy_total_ns[dir.index()])
    }

    /// Sends one message of `wire_bytes` in direction `dir`, handed over at
    /// `now`, and says whether and when it arrives.
    ///
    /// The message starts when the direction is free (FIFO). Its rate is
    /// fixed when it starts, from the local hour then: a message that
    /// straddles an hour boundary keeps its starting rate.
    #[inline(always)]
    pub fn transmit(
        &mut self,
        dir: Direction,
        now: Time,
        wire_bytes: u64,
        draws: &mut Draws,
    ) -> Transmission {
        // Draw everything first, so the count never depends on the outcome.
        // Without jitter, loss or duplication the four draws decide nothing:
        // they go by unmade, and the numbers below are what they would give
        // (no draw in [0, 1) is below a rate of 0).
        let (loss_draw, duplicate_draw, jitter, duplicate_jitter) = if self.random {
            (
                unit_interval(draws.next_u64()),
                unit_interval(draws.next_u64()),
                self.draw_jitter_ns(draws.next_u64()),
                self.draw_jitter_ns(draws.next_u64()),
            )
        } else {
            draws.skip(4);
            (1.0, 1.0, 0, 0)
        };

        // Queue behind earlier messages; a partition takes the message
        // before it touches the line.
        let d = dir.index();
        let start = now.max(self.busy_until[d]);
        if !self.partitions.is_empty() && self.is_partitioned(start) {
            return Transmission::Lost {
                reason: LossReason::Partition,
                start,
                serialisation: Duration::ZERO,
            };
        }

        // Occupy the transmitter for the serialisation time. Times are
        // added in nanoseconds, clamped as `Time + Duration` clamps.
        let serialisation_ns = self.serialisation_ns(start, wire_bytes);
        let serialisation = Duration::from_nanos(serialisation_ns);
        let end = Time(start.0.saturating_add(serialisation_ns.min(i64::MAX as u64) as i64));
        self.busy_until[d] = end;
        self.busy_total_ns[d] = self.busy_total_ns[d].saturating_add(serialisation_ns);

        // Lost along the way, or arrives after latency and jitter.
        if loss_draw < self.loss_rate_at(start) {
            return Transmission::Lost { reason: LossReason::Dropped, start, serialisation };
        }
        let arrive = Time(end.0.saturating_add(self.latency_ns).saturating_add(jitter));
        let duplicate_arrive = (duplicate_draw < self.duplicate_rate_at(start))
            .then(|| Time(arrive.0.saturating_add(duplicate_jitter)));
        Transmission::Delivered { start, serialisation, arrive, duplicate_arrive }
    }

    /// Time to clock `wire_bytes` onto the line at the rate available at
    /// `start`, rounded up to the nanosecond.
    /// In nanoseconds, saturating at `u64::MAX`.
    #[inline]
    fn serialisation_ns(&self, start: Time, wire_bytes: u64) -> u64 {
        let bps = self.available_bps(start);
        let slot = &self.serialisation_memo[wire_bytes as usize % SERIALISATION_SLOTS];
        let (memo_bytes, memo_bps, memo_ns) = slot.get();
        if memo_bytes == wire_bytes && memo_bps == bps {
            return memo_ns;
        }
        let ns = Self::serialisation_at(bps, wire_bytes);
        slot.set((wire_bytes, bps, ns));
        ns
    }

    /// Nanoseconds to clock `wire_bytes` at `bps`, rounded up, saturating.
    fn serialisation_at(bps: u64, wire_bytes: u64) -> u64 {
        // Below 2 GB the product fits 64 bits, and a 64-bit division is
        // several times cheaper than a 128-bit one; same result.
        if wire_bytes < 1 << 31 {
            return (wire_bytes * 8 * NANOS_PER_SEC as u64).div_ceil(bps);
        }
        let bits = wire_bytes as u128 * 8;
        let nanos = (bits * NANOS_PER_SEC).div_ceil(bps as u128);
        u64::try_from(nanos).unwrap_or(u64::MAX)
    }

    /// A uniform delay in `[0, jitter]`, in nanoseconds (clamped to
    /// `i64::MAX`), from one 64-bit draw, by multiply-and-shift: the bias
    /// is below 2^-64 per value. With no jitter it is 0 whatever the draw.
    #[inline]
    fn draw_jitter_ns(&self, draw: u64) -> i64 {
        if self.jitter_span == 1 {
            return 0;
        }
        let ns = ((draw as u128 * self.jitter_span as u128) >> 64) as u64;
        ns.min(i64::MAX as u64) as i64
    }
}

/// A uniform number in `[0, 1)` from the top 53 bits of one 64-bit draw, so
/// every value is an exact `f64`.
#[inline]
fn unit_interval(draw: u64) -> f64 {
    (draw >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A duration in nanoseconds, clamped to `i64::MAX` as `Time + Duration`
/// clamps it.
fn clamp_ns(d: Duration) -> i64 {
    i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)
}

fn check_window(from: Time, to: Time) -> Result<(), LinkError> {
    if from < to { Ok(()) } else { Err(LinkError::EmptyWindow { from, to }) }
}

/// The rate of the last-added window containing `t`, if any.
fn rate_at(windows: &[RateWindow], t: Time) -> Option<f64> {
    windows.iter().rev().find(|w| w.from <= t && t < w.to).map(|w| w.rate)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_pcg::Pcg64Mcg;

    /// The link's draws from a generator seeded with `seed`.
    fn draws(seed: u64) -> Draws {
        Draws::new(Pcg64Mcg::seed_from_u64(seed))
    }

    const MBPS: u64 = 1_000_000;

    fn secs(s: f64) -> Time {
        Time((s * 1e9).round() as i64)
    }

    fn delivered(t: Transmission) -> (Time, Duration, Time) {
        match t {
            Transmission::Delivered { start, serialisation, arrive, .. } => {
                (start, serialisation, arrive)
            }
            lost => panic!("expected delivery, got {lost:?}"),
        }
    }

    #[test]
    fn two_big_messages_at_once_queue_fifo() {
        let mut link = Link::new(LinkConfig::new(MBPS, Duration::from_millis(50))).unwrap();
        let mut rng = draws(7);
        // 125 000 bytes = 1 000 000 bits = 1 s at 1 Mbit/s.
        let first = delivered(link.transmit(Direction::Up, secs(0.0), 125_000, &mut rng));
        let second = delivered(link.transmit(Direction::Up, secs(0.0), 125_000, &mut rng));
        assert_eq!(first, (secs(0.0), Duration::from_secs(1), secs(1.05)));
        assert_eq!(second, (secs(1.0), Duration::from_secs(1), secs(2.05)));
        // The other direction is a separate queue.
        let down = delivered(link.transmit(Direction::Down, secs(0.5), 125_000, &mut rng));
        assert_eq!(down.0, secs(0.5));
        assert_eq!(link.busy_time(Direction::Up), Duration::from_secs(2));
        assert_eq!(link.busy_until(Direction::Up), secs(2.0));
    }

    #[test]
    fn background_share_by_local_hour_halves_throughput() {
        let mut config = LinkConfig::new(MBPS, Duration::ZERO);
        config.clock = LocalClock::for_zone("Asia/Kolkata").unwrap();
        config.background[14] = 0.5;
        let mut link = Link::new(config).unwrap();
        let mut rng = draws(7);
        // 2026-03-02 03:30Z is 09:00 in Kolkata; 08:30Z is 14:00.
        let nine_local = Time::from_secs(1_772_422_200);
        let two_pm_local = nine_local + Duration::from_secs(5 * 3600);
        assert_eq!(link.available_bps(two_pm_local), MBPS / 2);
        let quiet = delivered(link.transmit(Direction::Down, nine_local, 125_000, &mut rng));
        let busy = delivered(link.transmit(Direction::Down, two_pm_local, 125_000, &mut rng));
        assert_eq!(quiet.1, Duration::from_secs(1));
        assert_eq!(busy.1, Duration::from_secs(2));
    }

    #[test]
    fn partition_loses_messages_that_would_start_inside_it() {
        let mut link = Link::new(LinkConfig::new(MBPS, Duration::ZERO)).unwrap();
        link.add_partition(secs(10.0), secs(20.0)).unwrap();
        let mut rng = draws(7);

        // Sent inside: lost, and the line stays free.
        let inside = link.transmit(Direction::Up, secs(15.0), 1000, &mut rng);
        assert_eq!(
            inside,
            Transmission::Lost {
                reason: LossReason::Partition,
                start: secs(15.0),
                serialisation: Duration::ZERO,
            }
        );
        assert_eq!(inside.busy_span(), None);

        // Queued from before the window into it: lost too.
        let long = delivered(link.transmit(Direction::Up, secs(9.5), 62_500, &mut rng));
        assert_eq!(long.2, secs(10.0));
        let queued = link.transmit(Direction::Up, secs(9.6), 1000, &mut rng);
        assert!(matches!(queued, Transmission::Lost { reason: LossReason::Partition, .. }));

        // The window's end is open: at 20 s the link works again.
        let after = delivered(link.transmit(Direction::Up, secs(20.0), 1000, &mut rng));
        assert_eq!(after.0, secs(20.0));
    }

    /// A crossing of a link without jitter, loss or duplication makes none
    /// of its four draws, yet leaves the stream where they would: the next
    /// lossy link draws what it would have drawn after four made draws.
    #[test]
    fn a_link_without_randomness_skips_its_draws_exactly() {
        let mut quiet = Link::new(LinkConfig::new(MBPS, Duration::ZERO)).unwrap();
        let mut lossy_config = LinkConfig::new(MBPS, Duration::from_millis(5));
        lossy_config.jitter = Duration::from_millis(3);
        lossy_config.loss = 0.3;
        let mut lossy = Link::new(lossy_config).unwrap();
        let mut twin = lossy.clone();

        let (mut lazy, mut eager) = (draws(5), draws(5));
        for i in 0..500 {
            let now = secs(f64::from(i));
            quiet.transmit(Direction::Up, now, 100, &mut lazy);
            for _ in 0..4 {
                eager.next_u64();
            }
            let got = lossy.transmit(Direction::Down, now, 100, &mut lazy);
            let want = twin.transmit(Direction::Down, now, 100, &mut eager);
            assert_eq!(got, want, "crossing {i}");
        }
        assert_eq!(lazy.next_u64(), eager.next_u64());
    }

    #[test]
    fn loss_rate_is_near_the_configured_rate() {
        let mut config = LinkConfig::new(10_000 * MBPS, Duration::ZERO);
        config.loss = 0.1;
        let mut link = Link::new(config).unwrap();
        let mut rng = draws(2026);
        let draws = 100_000;
        let lost = (0..draws)
            .filter(|&i| {
                let t = link.transmit(Direction::Down, Time(i * 1_000), 100, &mut rng);
                matches!(t, Transmission::Lost { .. })
            })
            .count();
        // Three standard deviations of a binomial(100 000, 0.1) is 0.28%.
        let rate = lost as f64 / draws as f64;
        assert!((rate - 0.1).abs() < 0.003, "loss rate {rate}");
    }

    #[test]
    fn loss_window_overrides_the_configured_rate() {
        let mut link = Link::new(LinkConfig::new(MBPS, Duration::ZERO)).unwrap();
        link.add_loss_window(secs(1.0), secs(2.0), 1.0).unwrap();
        link.add_loss_window(secs(1.5), secs(2.0), 0.0).unwrap();
        assert_eq!(link.loss_rate_at(secs(0.5)), 0.0);
        assert_eq!(link.loss_rate_at(secs(1.2)), 1.0);
        assert_eq!(link.loss_rate_at(secs(1.7)), 0.0);
        let mut rng = draws(1);
        let dropped = link.transmit(Direction::Up, secs(1.2), 125, &mut rng);
        assert!(matches!(dropped, Transmission::Lost { reason: LossReason::Dropped, .. }));
        // A dropped message was still sent: it used the line for 1 ms.
        assert_eq!(dropped.busy_span(), Some((secs(1.2), secs(1.201))));
    }

    #[test]
    fn duplicates_arrive_no_earlier_than_the_original() {
        let mut config = LinkConfig::new(MBPS, Duration::from_millis(20));
        config.jitter = Duration::from_millis(5);
        config.duplicate = 0.5;
        let mut link = Link::new(config).unwrap();
        let mut rng = draws(3);
        let mut duplicates = 0;
        for i in 0..1000 {
            let t = link.transmit(Direction::Down, secs(i as f64), 100, &mut rng);
            if let Transmission::Delivered { arrive, duplicate_arrive: Some(copy), .. } = t {
                assert!(copy >= arrive);
                assert!(copy <= arrive + Duration::from_millis(5));
                duplicates += 1;
            }
        }
        assert!((450..550).contains(&duplicates), "{duplicates} duplicates");
    }

    #[test]
    fn jitter_stays_in_bounds_and_can_reorder() {
        let mut config = LinkConfig::new(1000 * MBPS, Duration::from_millis(30));
        config.jitter = Duration::from_millis(10);
        let mut link = Link::new(config).unwrap();
        let mut rng = draws(4);
        let mut previous_arrival = Time::EPOCH;
        let mut overtaken = 0;
        for i in 0..1000 {
            let now = secs(i as f64 * 0.001);
            let (_, serialisation, arrive) =
                delivered(link.transmit(Direction::Up, now, 125, &mut rng));
            let base = now + serialisation + Duration::from_millis(30);
            assert!(arrive >= base && arrive <= base + Duration::from_millis(10));
            if arrive < previous_arrival {
                overtaken += 1;
            }
            previous_arrival = arrive;
        }
        assert!(overtaken > 0, "1 ms apart with 10 ms of jitter should reorder");
    }

    #[test]
    fn same_seed_same_outcomes() {
        let run = |seed: u64| {
            let mut config = LinkConfig::new(2 * MBPS, Duration::from_millis(40));
            config.jitter = Duration::from_millis(15);
            config.loss = 0.05;
            config.duplicate = 0.02;
            let mut link = Link::new(config).unwrap();
            let mut rng = draws(seed);
            (0..2000)
                .map(|i| {
                    let dir = Direction::ALL[i % 2];
                    let bytes = 100 + (i as u64 * 7919) % 30_000;
                    link.transmit(dir, secs(i as f64 * 0.05), bytes, &mut rng)
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(run(11), run(11));
        assert_ne!(run(11), run(12));
    }

    #[test]
    fn invalid_configurations_and_windows_are_rejected() {
        let mut config = LinkConfig::new(0, Duration::ZERO);
        assert_eq!(Link::new(config.clone()).unwrap_err(), LinkError::ZeroBandwidth);
        config.bandwidth_bps = MBPS;
        config.loss = f64::NAN;
        assert!(matches!(
            config.validate(),
            Err(LinkError::ProbabilityOutOfRange { what: "loss", .. })
        ));
        config.loss = 0.0;
        config.background[3] = 1.0;
        assert!(matches!(config.validate(), Err(LinkError::BackgroundOutOfRange { hour: 3, .. })));
        config.background[3] = 0.0;
        let mut link = Link::new(config).unwrap();
        assert!(link.add_partition(secs(2.0), secs(2.0)).is_err());
        assert!(link.add_loss_window(secs(1.0), secs(2.0), 1.5).is_err());
        assert!(link.add_duplicate_window(secs(3.0), secs(2.0), 0.5).is_err());
    }

    #[test]
    fn direction_indices_and_names() {
        assert_eq!(Direction::Down.index(), 0);
        assert_eq!(Direction::Up.index(), 1);
        assert_eq!(Direction::Up.reverse(), Direction::Down);
        assert_eq!(serde_json::to_string(&Direction::Up).unwrap(), "\"up\"");
        assert_eq!(Direction::Down.as_str(), "down");
    }
}
