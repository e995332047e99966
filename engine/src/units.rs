//! Quantities as people write them in scenario and configuration files.
//!
//! One parser for every file format of the workspace: the simulator's
//! scenario files and the daemons' configuration files both read their
//! durations, sizes, rates and windows through these types, so `1h30m` or
//! `2.5h` means the same everywhere. Parsing only: no I/O, no clock.
//!
//! A scenario says `poll = "1h"`, `content = "200KiB"` or
//! `bandwidth = "50Mbit/s"`; these newtypes turn such strings into exact
//! integers (nanoseconds, bytes, bits per second) so that the simulator never
//! rounds a unit twice. Each type parses with [`FromStr`], deserialises with
//! serde from the same string, and prints with [`Display`] in a form that
//! parses back to the same value.
//!
//! Numbers may carry a decimal fraction (`2.5h`, `1.5MiB`) as long as the
//! result is a whole number of the base unit; a value that would need
//! rounding is rejected rather than silently truncated.

use std::fmt::{self, Display};
use std::marker::PhantomData;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// Why a unit string was rejected, with the accepted forms for that kind of
/// quantity so that the message alone tells the reader how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{input}`: {problem}; {accepted}")]
pub struct UnitError {
    /// The kind of quantity, such as "duration" or "byte size".
    kind: &'static str,
    /// The text as written.
    input: String,
    /// What is wrong with it.
    problem: UnitProblem,
    /// A sentence listing the accepted forms.
    accepted: &'static str,
}

impl UnitError {
    fn new(kind: Kind, input: &str, problem: UnitProblem) -> UnitError {
        UnitError { kind: kind.name, input: input.to_owned(), problem, accepted: kind.accepted }
    }

    /// What is wrong with the input.
    pub fn problem(&self) -> &UnitProblem {
        &self.problem
    }

    /// The text that was rejected.
    pub fn input(&self) -> &str {
        &self.input
    }
}

/// The specific fault found in a unit string.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UnitProblem {
    /// Nothing but whitespace was given.
    #[error("it is empty")]
    Empty,
    /// A number without a unit, where the unit cannot be guessed.
    #[error("missing unit: write e.g. {example}")]
    MissingUnit {
        /// A correct way to write a value of this kind.
        example: &'static str,
    },
    /// A unit suffix that this kind of quantity does not know.
    #[error("unknown unit `{0}`")]
    UnknownUnit(String),
    /// Text where a number was expected.
    #[error("expected a number at `{0}`")]
    BadNumber(String),
    /// A minus sign on a quantity that cannot be negative.
    #[error("it must not be negative")]
    Negative,
    /// The value does not fit the integer that stores it.
    #[error("it is too large")]
    TooLarge,
    /// The value is not a whole number of the base unit.
    #[error("it is not a whole number of {0}")]
    Fractional(&'static str),
    /// Zero where zero makes no sense (a link that carries nothing).
    #[error("it must be greater than zero")]
    Zero,
    /// A number outside the range allowed for it.
    #[error("{0}")]
    OutOfRange(&'static str),
    /// A time of day that is not `HH:MM` with valid hours and minutes.
    #[error("`{0}` is not a time of day HH:MM between 00:00 and 24:00")]
    BadTimeOfDay(String),
}

/// Names a kind of quantity and the sentence listing its accepted forms.
#[derive(Clone, Copy)]
struct Kind {
    name: &'static str,
    accepted: &'static str,
}

const SPAN: Kind = Kind {
    name: "duration",
    accepted: "write a number and a unit (ns, us, ms, s, m or min, h, d, w), \
               parts may be combined and decimals are allowed: 90ms, 30s, 1h30m, 2.5h",
};

const SIGNED_SPAN: Kind = Kind {
    name: "signed duration",
    accepted: "write a duration with an optional sign: -90s, +2m, 1h30m",
};

const BYTE_SIZE: Kind = Kind {
    name: "byte size",
    accepted: "write a whole number of bytes or a number and a unit \
               (B; SI kB, MB, GB, TB of 1000; IEC KiB, MiB, GiB, TiB of 1024): \
               512, 512B, 4KiB, 1.5MiB, 70MB",
};

const BANDWIDTH: Kind = Kind {
    name: "bandwidth",
    accepted: "write a number and a rate unit in bits (bit/s, kbit/s, Mbit/s, Gbit/s, \
               also kbps, Mbps, Mb/s) or bytes (B/s, kB/s, MB/s, KiB/s, MiB/s): \
               50Mbit/s, 10Mbps, 2MB/s",
};

const WINDOW: Kind = Kind {
    name: "time-of-day window",
    accepted: "write START-END as HH:MM-HH:MM in 24-hour time, END before START wraps \
               past midnight: 02:00-04:00, 22:00-02:00",
};

const PROBABILITY: Kind =
    Kind { name: "probability", accepted: "write a number from 0 to 1: 0, 0.001, 1" };

/// A non-negative decimal number as written, kept exact.
#[derive(Clone, Copy, Debug)]
struct Decimal {
    /// Digits before the point.
    whole: u128,
    /// Digits after the point, as an integer.
    fraction: u128,
    /// How many digits follow the point.
    fraction_digits: u32,
}

/// The most digits after a decimal point that are kept; 10^30 still fits a
/// `u128` multiplied by the largest unit factor used here (a week in ns).
const MAX_FRACTION_DIGITS: u32 = 18;

impl Decimal {
    /// Reads `digits[.digits]` from the start of `text`, returning the number
    /// and the rest, or `None` if `text` does not start with a digit.
    fn take(text: &str) -> Option<(Decimal, &str)> {
        let whole_len = text.bytes().take_while(u8::is_ascii_digit).count();
        if whole_len == 0 {
            return None;
        }
        let whole = parse_digits(&text[..whole_len])?;
        let rest = &text[whole_len..];
        let Some(after_point) = rest.strip_prefix('.') else {
            let number = Decimal { whole, fraction: 0, fraction_digits: 0 };
            return Some((number, rest));
        };
        let frac_len = after_point.bytes().take_while(u8::is_ascii_digit).count();
        if frac_len == 0 {
            return None;
        }

        // Trailing zeros carry no value, so drop them before the digit limit.
        let frac_text = after_point[..frac_len].trim_end_matches('0');
        let fraction_digits = u32::try_from(frac_text.len()).ok()?;
        if fraction_digits > MAX_FRACTION_DIGITS {
            return None;
        }
        let fraction = if frac_text.is_empty() { 0 } else { parse_digits(frac_text)? };
        let number = Decimal { whole, fraction, fraction_digits };
        Some((number, &after_point[frac_len..]))
    }

    /// Multiplies by `factor`, failing with the right problem when the
    /// product overflows or is not a whole number.
    fn times(self, factor: u128, base_unit: &'static str) -> Result<u128, UnitProblem> {
        let whole = self.whole.checked_mul(factor).ok_or(UnitProblem::TooLarge)?;
        let scale = 10u128.pow(self.fraction_digits);
        let scaled = self.fraction.checked_mul(factor).ok_or(UnitProblem::TooLarge)?;
        if scaled % scale != 0 {
            return Err(UnitProblem::Fractional(base_unit));
        }
        whole.checked_add(scaled / scale).ok_or(UnitProblem::TooLarge)
    }

    fn is_integer(self) -> bool {
        self.fraction_digits == 0
    }
}

/// Parses a run of ASCII digits, `None` on overflow.
fn parse_digits(digits: &str) -> Option<u128> {
    digits.parse().ok()
}

/// Splits the unit (everything up to the next digit or space) off `text`.
fn take_unit(text: &str) -> (&str, &str) {
    let end = text.find(|c: char| c.is_ascii_digit() || c.is_whitespace()).unwrap_or(text.len());
    text.split_at(end)
}

/// Reads the number at the start of `text`, or explains what is there.
fn take_number(kind: Kind, input: &str, text: &str) -> Result<(Decimal, String), UnitError> {
    if text.starts_with('-') {
        return Err(UnitError::new(kind, input, UnitProblem::Negative));
    }
    match Decimal::take(text) {
        Some((number, rest)) => Ok((number, rest.trim_start().to_owned())),
        None => Err(UnitError::new(kind, input, UnitProblem::BadNumber(text.to_owned()))),
    }
}

/// Looks `unit` up in a table of (suffix, factor) pairs.
fn unit_factor(table: &[(&str, u128)], unit: &str) -> Option<u128> {
    table.iter().find(|(name, _)| *name == unit).map(|(_, factor)| *factor)
}

/// Shared serde visitor: strings parse with `FromStr`; numbers are turned
/// into their decimal text and parsed the same way, so that `0` and bare
/// byte counts work and a unitless duration gets the "missing unit" message.
struct UnitVisitor<T> {
    expecting: &'static str,
    marker: PhantomData<T>,
}

impl<T> UnitVisitor<T> {
    const fn new(expecting: &'static str) -> UnitVisitor<T> {
        UnitVisitor { expecting, marker: PhantomData }
    }
}

impl<T> Visitor<'_> for UnitVisitor<T>
where
    T: FromStr<Err = UnitError>,
{
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        v.parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        self.visit_str(&v.to_string())
    }
}

/// Implements `Deserialize` through [`UnitVisitor`] and `Serialize` through
/// `Display`, which is what every unit type here wants.
macro_rules! serde_via_str {
    ($ty:ty, $expecting:literal) => {
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserializer.deserialize_any(UnitVisitor::<$ty>::new($expecting))
            }
        }

        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Span

const NANOS_PER_US: u128 = 1_000;
const NANOS_PER_MS: u128 = 1_000_000;
const NANOS_PER_S: u128 = 1_000_000_000;
const NANOS_PER_MIN: u128 = 60 * NANOS_PER_S;
const NANOS_PER_H: u128 = 60 * NANOS_PER_MIN;
const NANOS_PER_D: u128 = 24 * NANOS_PER_H;
const NANOS_PER_W: u128 = 7 * NANOS_PER_D;

/// Duration suffixes and their length in nanoseconds. Days and weeks are
/// fixed 24-hour multiples: a scenario's `7d` means 168 hours of simulated
/// time whatever daylight saving does to wall clocks meanwhile.
const SPAN_UNITS: &[(&str, u128)] = &[
    ("ns", 1),
    ("us", NANOS_PER_US),
    ("µs", NANOS_PER_US),
    ("ms", NANOS_PER_MS),
    ("s", NANOS_PER_S),
    ("m", NANOS_PER_MIN),
    ("min", NANOS_PER_MIN),
    ("h", NANOS_PER_H),
    ("d", NANOS_PER_D),
    ("w", NANOS_PER_W),
];

/// Units used by `Display`, largest first. Weeks are left out so that `14d`
/// prints as written most often.
const SPAN_DISPLAY_UNITS: &[(&str, u128)] = &[
    ("d", NANOS_PER_D),
    ("h", NANOS_PER_H),
    ("m", NANOS_PER_MIN),
    ("s", NANOS_PER_S),
    ("ms", NANOS_PER_MS),
    ("us", NANOS_PER_US),
    ("ns", 1),
];

/// A non-negative length of time, such as a poll interval or a link latency.
///
/// Written `90ms`, `30s`, `15m`, `1h30m`, `2.5h`, `7d`. A bare number is
/// rejected because `30` could mean seconds or minutes; the one exception is
/// `0`, which means the same in every unit. The largest span is `i64::MAX`
/// nanoseconds (about 292 years) so that adding it to a
/// [`Time`](crate::Time) never leaves the clock's range.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span(Duration);

impl Span {
    /// No time at all.
    pub const ZERO: Span = Span(Duration::ZERO);

    /// A span of whole seconds.
    pub const fn from_secs(secs: u64) -> Span {
        Span(Duration::from_secs(secs))
    }

    /// A span of whole minutes.
    pub const fn from_mins(mins: u64) -> Span {
        Span(Duration::from_secs(mins * 60))
    }

    /// A span of whole milliseconds.
    pub const fn from_millis(millis: u64) -> Span {
        Span(Duration::from_millis(millis))
    }

    /// The span as a std duration.
    pub const fn as_duration(self) -> Duration {
        self.0
    }

    /// The span in nanoseconds; exact, since parsing caps it at `i64::MAX`.
    pub fn as_nanos(self) -> u64 {
        u64::try_from(self.0.as_nanos()).unwrap_or(u64::MAX)
    }

    /// True for the zero span.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Span> for Duration {
    fn from(span: Span) -> Duration {
        span.0
    }
}

impl FromStr for Span {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Span, UnitError> {
        parse_span(SPAN, input, input.trim())
    }
}

/// Parses the unsigned duration `text`, reporting errors against `input`.
fn parse_span(kind: Kind, input: &str, text: &str) -> Result<Span, UnitError> {
    let fail = |problem| UnitError::new(kind, input, problem);
    if text.is_empty() {
        return Err(fail(UnitProblem::Empty));
    }
    if text == "0" {
        return Ok(Span::ZERO);
    }

    // Sum each number-and-unit part, so `1h30m` is 90 minutes.
    let mut total: u128 = 0;
    let mut rest = text.to_owned();
    while !rest.is_empty() {
        let (number, after) = take_number(kind, input, &rest)?;
        let (unit, after_unit) = take_unit(&after);
        if unit.is_empty() {
            let example = "30s";
            return Err(fail(UnitProblem::MissingUnit { example }));
        }
        let factor = unit_factor(SPAN_UNITS, unit)
            .ok_or_else(|| fail(UnitProblem::UnknownUnit(unit.to_owned())))?;
        let nanos = number.times(factor, "nanoseconds").map_err(fail)?;
        total = total.checked_add(nanos).ok_or_else(|| fail(UnitProblem::TooLarge))?;
        rest = after_unit.trim_start().to_owned();
    }

    // Cap at the engine clock's range, so `start + span` cannot overflow.
    if total > i64::MAX as u128 {
        return Err(fail(UnitProblem::TooLarge));
    }
    let nanos = u64::try_from(total).map_err(|_| fail(UnitProblem::TooLarge))?;
    Ok(Span(Duration::from_nanos(nanos)))
}

impl Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut left = self.0.as_nanos();
        if left == 0 {
            return f.write_str("0s");
        }
        for (unit, factor) in SPAN_DISPLAY_UNITS {
            let count = left / factor;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                left %= factor;
            }
        }
        Ok(())
    }
}

serde_via_str!(Span, "a duration such as \"30s\" or \"1h30m\"");

// ---------------------------------------------------------------------------
// SignedSpan

/// A length of time that may be negative, such as a clock skew (`-90s`
/// means the node's clock runs 90 seconds behind).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SignedSpan {
    /// Nanoseconds; the same range as [`Span`] on either side of zero.
    nanos: i64,
}

impl SignedSpan {
    /// The offset in nanoseconds.
    pub const fn as_nanos(self) -> i64 {
        self.nanos
    }

    /// True when the offset is below zero.
    pub const fn is_negative(self) -> bool {
        self.nanos < 0
    }

    /// The size of the offset without its sign.
    pub fn magnitude(self) -> Span {
        Span(Duration::from_nanos(self.nanos.unsigned_abs()))
    }
}

impl FromStr for SignedSpan {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<SignedSpan, UnitError> {
        let text = input.trim();
        let (negative, body) = match text.strip_prefix('-') {
            Some(body) => (true, body),
            None => (false, text.strip_prefix('+').unwrap_or(text)),
        };
        let magnitude = parse_span(SIGNED_SPAN, input, body.trim_start())?;

        // The magnitude is capped at i64::MAX, so negating cannot overflow.
        let nanos = i64::try_from(magnitude.as_nanos())
            .map_err(|_| UnitError::new(SIGNED_SPAN, input, UnitProblem::TooLarge))?;
        let nanos = if negative { -nanos } else { nanos };
        Ok(SignedSpan { nanos })
    }
}

impl Display for SignedSpan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_negative() {
            f.write_str("-")?;
        }
        write!(f, "{}", self.magnitude())
    }
}

serde_via_str!(SignedSpan, "a signed duration such as \"-90s\"");

// ---------------------------------------------------------------------------
// ByteSize

const KB: u128 = 1000;
const KIB: u128 = 1024;

/// Byte-size suffixes. Both `kB` and `KB` mean 1000 because both spellings
/// are common for the SI kilobyte; the binary units always carry the `i`.
const BYTE_UNITS: &[(&str, u128)] = &[
    ("B", 1),
    ("kB", KB),
    ("KB", KB),
    ("MB", KB * KB),
    ("GB", KB * KB * KB),
    ("TB", KB * KB * KB * KB),
    ("KiB", KIB),
    ("MiB", KIB * KIB),
    ("GiB", KIB * KIB * KIB),
    ("TiB", KIB * KIB * KIB * KIB),
];

/// Units used by `Display`: binary first, since policy content sizes are
/// usually powers of two, then SI, largest first in each family.
const BYTE_DISPLAY_UNITS: &[(&str, u128)] = &[
    ("TiB", KIB * KIB * KIB * KIB),
    ("GiB", KIB * KIB * KIB),
    ("MiB", KIB * KIB),
    ("KiB", KIB),
    ("TB", KB * KB * KB * KB),
    ("GB", KB * KB * KB),
    ("MB", KB * KB),
    ("kB", KB),
];

/// An amount of data in bytes, such as a policy's content or a client's
/// inventory. Written `512`, `512B`, `4KiB`, `1.5MiB`, `70MB`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ByteSize(u64);

impl ByteSize {
    /// No bytes.
    pub const ZERO: ByteSize = ByteSize(0);

    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> ByteSize {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }
}

impl FromStr for ByteSize {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<ByteSize, UnitError> {
        let fail = |problem| UnitError::new(BYTE_SIZE, input, problem);
        let text = input.trim();
        if text.is_empty() {
            return Err(fail(UnitProblem::Empty));
        }
        let (number, after) = take_number(BYTE_SIZE, input, text)?;

        // A bare whole number is a count of bytes; a bare fraction is not.
        let factor = if after.is_empty() {
            if !number.is_integer() {
                return Err(fail(UnitProblem::Fractional("bytes")));
            }
            1
        } else {
            unit_factor(BYTE_UNITS, &after)
                .ok_or_else(|| fail(UnitProblem::UnknownUnit(after.clone())))?
        };
        let bytes = number.times(factor, "bytes").map_err(fail)?;
        let bytes = u64::try_from(bytes).map_err(|_| fail(UnitProblem::TooLarge))?;
        Ok(ByteSize(bytes))
    }
}

impl Display for ByteSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = u128::from(self.0);
        if bytes > 0 {
            for (unit, factor) in BYTE_DISPLAY_UNITS {
                if bytes % factor == 0 {
                    return write!(f, "{}{unit}", bytes / factor);
                }
            }
        }
        write!(f, "{bytes}B")
    }
}

serde_via_str!(ByteSize, "a byte size such as \"4KiB\" or a number of bytes");

// ---------------------------------------------------------------------------
// Bandwidth

/// Rate suffixes in bits per second. `Mb/s` and `Mbps` are megabits, as
/// network vendors use them; a capital `B` means bytes and multiplies by 8.
const RATE_UNITS: &[(&str, u128)] = &[
    ("bit/s", 1),
    ("bps", 1),
    ("b/s", 1),
    ("kbit/s", KB),
    ("Kbit/s", KB),
    ("kbps", KB),
    ("Kbps", KB),
    ("kb/s", KB),
    ("Kb/s", KB),
    ("Mbit/s", KB * KB),
    ("Mbps", KB * KB),
    ("Mb/s", KB * KB),
    ("Gbit/s", KB * KB * KB),
    ("Gbps", KB * KB * KB),
    ("Gb/s", KB * KB * KB),
    ("Tbit/s", KB * KB * KB * KB),
    ("Tbps", KB * KB * KB * KB),
    ("Tb/s", KB * KB * KB * KB),
    ("B/s", 8),
    ("kB/s", 8 * KB),
    ("KB/s", 8 * KB),
    ("MB/s", 8 * KB * KB),
    ("GB/s", 8 * KB * KB * KB),
    ("KiB/s", 8 * KIB),
    ("MiB/s", 8 * KIB * KIB),
    ("GiB/s", 8 * KIB * KIB * KIB),
];

/// Units used by `Display`, largest first.
const RATE_DISPLAY_UNITS: &[(&str, u128)] = &[
    ("Tbit/s", KB * KB * KB * KB),
    ("Gbit/s", KB * KB * KB),
    ("Mbit/s", KB * KB),
    ("kbit/s", KB),
    ("bit/s", 1),
];

/// A link's capacity in bits per second, such as a WAN uplink. Written
/// `50Mbit/s`, `10Mbps`, `100Mb/s`, `2MB/s`. Never zero: a link that carries
/// nothing would hold every message forever.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bandwidth(u64);

impl Bandwidth {
    /// A rate of `bits_per_second`, or `None` for zero.
    pub const fn new(bits_per_second: u64) -> Option<Bandwidth> {
        if bits_per_second == 0 { None } else { Some(Bandwidth(bits_per_second)) }
    }

    /// The rate in bits per second.
    pub const fn bits_per_second(self) -> u64 {
        self.0
    }

    /// How long `bytes` take to serialise onto the link, rounded up to a
    /// whole nanosecond so that back-to-back messages never overlap.
    pub fn transmit_time(self, bytes: u64) -> Duration {
        let bits = u128::from(bytes) * 8;
        let nanos = (bits * NANOS_PER_S).div_ceil(u128::from(self.0));
        Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

impl FromStr for Bandwidth {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Bandwidth, UnitError> {
        let fail = |problem| UnitError::new(BANDWIDTH, input, problem);
        let text = input.trim();
        if text.is_empty() {
            return Err(fail(UnitProblem::Empty));
        }
        let (number, unit) = take_number(BANDWIDTH, input, text)?;
        if unit.is_empty() {
            let example = "50Mbit/s";
            return Err(fail(UnitProblem::MissingUnit { example }));
        }
        let factor = unit_factor(RATE_UNITS, &unit)
            .ok_or_else(|| fail(UnitProblem::UnknownUnit(unit.clone())))?;
        let bits = number.times(factor, "bits per second").map_err(fail)?;
        let bits = u64::try_from(bits).map_err(|_| fail(UnitProblem::TooLarge))?;
        Bandwidth::new(bits).ok_or_else(|| fail(UnitProblem::Zero))
    }
}

impl Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bits = u128::from(self.0);
        for (unit, factor) in RATE_DISPLAY_UNITS {
            if bits % factor == 0 {
                return write!(f, "{}{unit}", bits / factor);
            }
        }
        write!(f, "{bits}bit/s")
    }
}

serde_via_str!(Bandwidth, "a bandwidth such as \"50Mbit/s\"");

// ---------------------------------------------------------------------------
// TimeOfDayWindow

/// Minutes in a day; also the largest end of a window (`24:00`).
const MINUTES_PER_DAY: u16 = 24 * 60;

/// A daily window of local time, such as the off-peak synchronisation slot
/// `02:00-04:00`. An end before the start wraps past midnight
/// (`22:00-02:00` is four hours); `24:00` may be written as an end.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeOfDayWindow {
    /// Minutes after local midnight, 0 to 1439.
    start: u16,
    /// Minutes after local midnight, 1 to 1440; never equal to `start`.
    end: u16,
}

impl TimeOfDayWindow {
    /// Builds a window from minutes after midnight, or `None` when either is
    /// out of range or they are equal (an empty or ambiguous window).
    pub const fn new(start_minute: u16, end_minute: u16) -> Option<TimeOfDayWindow> {
        let in_range = start_minute < MINUTES_PER_DAY && end_minute <= MINUTES_PER_DAY;
        let same = start_minute == end_minute || (start_minute == 0 && end_minute == 1440);
        if in_range && !same {
            Some(TimeOfDayWindow { start: start_minute, end: end_minute })
        } else {
            None
        }
    }

    /// Start, in minutes after local midnight.
    pub const fn start_minute(self) -> u16 {
        self.start
    }

    /// End, in minutes after local midnight (1440 for `24:00`).
    pub const fn end_minute(self) -> u16 {
        self.end
    }

    /// True when the window runs past midnight into the next day.
    pub const fn wraps_midnight(self) -> bool {
        self.end < self.start
    }

    /// Length of the window in minutes.
    pub const fn length_minutes(self) -> u16 {
        if self.wraps_midnight() {
            MINUTES_PER_DAY - self.start + self.end
        } else {
            self.end - self.start
        }
    }

    /// Whether `minute` after midnight (0 to 1439) falls inside the window;
    /// the start is inside, the end is not.
    pub const fn contains(self, minute: u16) -> bool {
        if self.wraps_midnight() {
            minute >= self.start || minute < self.end
        } else {
            minute >= self.start && minute < self.end
        }
    }
}

/// Parses `HH:MM` into minutes after midnight, allowing `24:00` when
/// `allow_24` is set (only for a window's end).
fn parse_time_of_day(text: &str, allow_24: bool) -> Option<u16> {
    let (hours, minutes) = text.trim().split_once(':')?;
    let valid_digits =
        |s: &str| (1..=2).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit());
    if !valid_digits(hours) || minutes.len() != 2 || !valid_digits(minutes) {
        return None;
    }
    let hours: u16 = hours.parse().ok()?;
    let minutes: u16 = minutes.parse().ok()?;
    match (hours, minutes) {
        (0..=23, 0..=59) => Some(hours * 60 + minutes),
        (24, 0) if allow_24 => Some(MINUTES_PER_DAY),
        _ => None,
    }
}

impl FromStr for TimeOfDayWindow {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<TimeOfDayWindow, UnitError> {
        let fail = |problem| UnitError::new(WINDOW, input, problem);
        let text = input.trim();
        if text.is_empty() {
            return Err(fail(UnitProblem::Empty));
        }
        let Some((start_text, end_text)) = text.split_once('-') else {
            let why = "expected START-END, such as 02:00-04:00";
            return Err(fail(UnitProblem::OutOfRange(why)));
        };
        let start = parse_time_of_day(start_text, false)
            .ok_or_else(|| fail(UnitProblem::BadTimeOfDay(start_text.trim().to_owned())))?;
        let end = parse_time_of_day(end_text, true)
            .ok_or_else(|| fail(UnitProblem::BadTimeOfDay(end_text.trim().to_owned())))?;
        TimeOfDayWindow::new(start, end).ok_or_else(|| {
            let why = "start and end are the same time, so the window is empty";
            fail(UnitProblem::OutOfRange(why))
        })
    }
}

impl Display for TimeOfDayWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (sh, sm) = (self.start / 60, self.start % 60);
        let (eh, em) = (self.end / 60, self.end % 60);
        write!(f, "{sh:02}:{sm:02}-{eh:02}:{em:02}")
    }
}

serde_via_str!(TimeOfDayWindow, "a time-of-day window such as \"02:00-04:00\"");

// ---------------------------------------------------------------------------
// Probability

/// A probability or share in `[0, 1]`, such as a link's loss rate or the
/// share of clients that are laptops. Written as a TOML number: `0.001`.
#[derive(Clone, Copy, Debug, Default, PartialEq, PartialOrd)]
pub struct Probability(f64);

impl Probability {
    /// Never.
    pub const ZERO: Probability = Probability(0.0);
    /// Always.
    pub const ONE: Probability = Probability(1.0);

    /// `p` as a probability, or `None` outside `[0, 1]` or for NaN.
    pub fn new(p: f64) -> Option<Probability> {
        (0.0..=1.0).contains(&p).then_some(Probability(p))
    }

    /// The probability as a number in `[0, 1]`.
    pub const fn value(self) -> f64 {
        self.0
    }
}

impl FromStr for Probability {
    type Err = UnitError;

    fn from_str(input: &str) -> Result<Probability, UnitError> {
        let fail = |problem| UnitError::new(PROBABILITY, input, problem);
        let text = input.trim();
        if text.is_empty() {
            return Err(fail(UnitProblem::Empty));
        }
        let p: f64 = text.parse().map_err(|_| fail(UnitProblem::BadNumber(text.to_owned())))?;
        let why = "it must be between 0 and 1";
        Probability::new(p).ok_or_else(|| fail(UnitProblem::OutOfRange(why)))
    }
}

impl Display for Probability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // f64's Display is the shortest text that parses back to the same
        // value, which is what a round trip needs.
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Probability {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(ProbabilityVisitor)
    }
}

impl Serialize for Probability {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_f64(self.0)
    }
}

/// Accepts numbers only: a probability written as a string is more likely a
/// mistake (`"1%"`) than a value worth guessing at.
struct ProbabilityVisitor;

impl Visitor<'_> for ProbabilityVisitor {
    type Value = Probability;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number from 0 to 1")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Probability, E> {
        v.to_string().parse().map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Probability, E> {
        v.to_string().parse().map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Probability, E> {
        v.to_string().parse().map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn span(text: &str) -> Span {
        text.parse().unwrap()
    }

    fn error<T: FromStr<Err = UnitError>>(text: &str) -> String {
        match text.parse::<T>() {
            Ok(_) => panic!("`{text}` should be rejected"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn span_accepts_common_forms() {
        assert_eq!(span("90ms"), Span::from_millis(90));
        assert_eq!(span("30s"), Span::from_secs(30));
        assert_eq!(span("15m"), Span::from_mins(15));
        assert_eq!(span("15min"), Span::from_mins(15));
        assert_eq!(span("1h"), Span::from_secs(3600));
        assert_eq!(span("7d"), Span::from_secs(7 * 86_400));
        assert_eq!(span("2w"), Span::from_secs(14 * 86_400));
        assert_eq!(span("1h30m"), Span::from_mins(90));
        assert_eq!(span("1h 30m"), Span::from_mins(90));
        assert_eq!(span("2.5h"), Span::from_mins(150));
        assert_eq!(span("1.5us").as_nanos(), 1500);
        assert_eq!(span("250ns").as_nanos(), 250);
        assert_eq!(span("0"), Span::ZERO);
        assert_eq!(span(" 30s "), Span::from_secs(30));
    }

    #[test]
    fn span_rejects_bare_numbers_negatives_and_unknown_units() {
        assert_eq!(
            error::<Span>("30"),
            "invalid duration `30`: missing unit: write e.g. 30s; write a number and a unit \
             (ns, us, ms, s, m or min, h, d, w), parts may be combined and decimals are \
             allowed: 90ms, 30s, 1h30m, 2.5h"
        );
        assert!(error::<Span>("-5s").contains("it must not be negative"));
        assert!(error::<Span>("5 parsecs").contains("unknown unit `parsecs`"));
        assert!(error::<Span>("h").contains("expected a number at `h`"));
        assert!(error::<Span>("").contains("it is empty"));
        assert!(error::<Span>("0.5ns").contains("not a whole number of nanoseconds"));
        assert!(error::<Span>("1h30").contains("missing unit"));
        assert!(error::<Span>("99999999999w").contains("too large"));
    }

    #[test]
    fn span_display_uses_largest_units() {
        assert_eq!(span("90m").to_string(), "1h30m");
        assert_eq!(span("2.5h").to_string(), "2h30m");
        assert_eq!(span("7d").to_string(), "7d");
        assert_eq!(span("1500ms").to_string(), "1s500ms");
        assert_eq!(Span::ZERO.to_string(), "0s");
    }

    #[test]
    fn signed_span_keeps_sign() {
        let skew: SignedSpan = "-90s".parse().unwrap();
        assert_eq!(skew.as_nanos(), -90_000_000_000);
        assert_eq!(skew.to_string(), "-1m30s");
        let ahead: SignedSpan = "+2m".parse().unwrap();
        assert_eq!(ahead.as_nanos(), 120_000_000_000);
        assert!(error::<SignedSpan>("-").contains("it is empty"));
        assert!(error::<SignedSpan>("--1s").contains("must not be negative"));
    }

    #[test]
    fn byte_size_accepts_si_iec_and_bare_bytes() {
        let bytes = |t: &str| t.parse::<ByteSize>().unwrap().bytes();
        assert_eq!(bytes("4KiB"), 4096);
        assert_eq!(bytes("200KiB"), 204_800);
        assert_eq!(bytes("70MB"), 70_000_000);
        assert_eq!(bytes("1.5MiB"), 1_572_864);
        assert_eq!(bytes("512B"), 512);
        assert_eq!(bytes("512"), 512);
        assert_eq!(bytes("0"), 0);
        assert_eq!(bytes("2kB"), 2000);
        assert_eq!(bytes("2KB"), 2000);
        assert_eq!(bytes("1GiB"), 1 << 30);
    }

    #[test]
    fn byte_size_rejects_bad_input() {
        assert!(error::<ByteSize>("4 kibibytes").contains("unknown unit `kibibytes`"));
        assert!(error::<ByteSize>("1.5").contains("not a whole number of bytes"));
        assert!(error::<ByteSize>("1.0001KiB").contains("not a whole number of bytes"));
        assert!(error::<ByteSize>("-1KiB").contains("must not be negative"));
        assert!(error::<ByteSize>("KiB").contains("expected a number"));
        assert!(error::<ByteSize>("4kb").contains("unknown unit `kb`"));
        assert!(error::<ByteSize>("99999999TiB").contains("too large"));
    }

    #[test]
    fn byte_size_display() {
        let show = |t: &str| t.parse::<ByteSize>().unwrap().to_string();
        assert_eq!(show("4096"), "4KiB");
        assert_eq!(show("70MB"), "70MB");
        assert_eq!(show("1000"), "1kB");
        assert_eq!(show("513"), "513B");
        assert_eq!(show("0"), "0B");
    }

    #[test]
    fn bandwidth_accepts_bits_and_bytes() {
        let bps = |t: &str| t.parse::<Bandwidth>().unwrap().bits_per_second();
        assert_eq!(bps("50Mbit/s"), 50_000_000);
        assert_eq!(bps("1Gbit/s"), 1_000_000_000);
        assert_eq!(bps("512kbit/s"), 512_000);
        assert_eq!(bps("10Mbps"), 10_000_000);
        assert_eq!(bps("100Mb/s"), 100_000_000);
        assert_eq!(bps("2MB/s"), 16_000_000);
        assert_eq!(bps("1.5Gbit/s"), 1_500_000_000);
        assert_eq!(bps("1KiB/s"), 8192);
    }

    #[test]
    fn bandwidth_rejects_zero_and_bare_numbers() {
        assert!(error::<Bandwidth>("0Mbit/s").contains("must be greater than zero"));
        assert!(error::<Bandwidth>("50").contains("missing unit: write e.g. 50Mbit/s"));
        assert!(error::<Bandwidth>("50MiBit/s").contains("unknown unit `MiBit/s`"));
        assert!(error::<Bandwidth>("0.1bit/s").contains("not a whole number of bits"));
    }

    #[test]
    fn bandwidth_display_and_transmit_time() {
        let bw: Bandwidth = "2MB/s".parse().unwrap();
        assert_eq!(bw.to_string(), "16Mbit/s");
        let slow: Bandwidth = "1bit/s".parse().unwrap();
        assert_eq!(slow.to_string(), "1bit/s");
        let link: Bandwidth = "8Mbit/s".parse().unwrap();
        assert_eq!(link.transmit_time(1000), Duration::from_millis(1));
        let odd = Bandwidth::new(3).unwrap();
        assert_eq!(odd.transmit_time(1), Duration::from_nanos(2_666_666_667));
    }

    #[test]
    fn window_parses_and_wraps() {
        let w: TimeOfDayWindow = "02:00-04:00".parse().unwrap();
        assert_eq!((w.start_minute(), w.end_minute()), (120, 240));
        assert!(!w.wraps_midnight());
        assert!(w.contains(120) && w.contains(239) && !w.contains(240));
        assert_eq!(w.to_string(), "02:00-04:00");

        let night: TimeOfDayWindow = "22:30-02:00".parse().unwrap();
        assert!(night.wraps_midnight());
        assert_eq!(night.length_minutes(), 210);
        assert!(night.contains(23 * 60) && night.contains(60) && !night.contains(12 * 60));

        let evening: TimeOfDayWindow = "18:00-24:00".parse().unwrap();
        assert_eq!(evening.length_minutes(), 360);
        assert_eq!(evening.to_string(), "18:00-24:00");
    }

    #[test]
    fn window_rejects_bad_input() {
        assert!(error::<TimeOfDayWindow>("02:00-02:00").contains("window is empty"));
        assert!(error::<TimeOfDayWindow>("00:00-24:00").contains("window is empty"));
        assert!(error::<TimeOfDayWindow>("25:00-02:00").contains("`25:00` is not a time"));
        assert!(error::<TimeOfDayWindow>("02:00").contains("expected START-END"));
        assert!(error::<TimeOfDayWindow>("2-4").contains("`2` is not a time of day"));
        assert!(error::<TimeOfDayWindow>("24:00-02:00").contains("`24:00` is not"));
    }

    #[test]
    fn probability_range() {
        let p: Probability = "0.001".parse().unwrap();
        assert_eq!(p.value(), 0.001);
        assert_eq!(p.to_string(), "0.001");
        assert!(error::<Probability>("1.5").contains("between 0 and 1"));
        assert!(error::<Probability>("-0.1").contains("between 0 and 1"));
        assert!(error::<Probability>("NaN").contains("between 0 and 1"));
        assert!(error::<Probability>("often").contains("expected a number"));
    }

    proptest! {
        #[test]
        fn span_round_trips(nanos in 0u64..=i64::MAX as u64) {
            let s = Span(Duration::from_nanos(nanos));
            prop_assert_eq!(s.to_string().parse::<Span>().unwrap(), s);
        }

        #[test]
        fn signed_span_round_trips(nanos in i64::MIN + 1..=i64::MAX) {
            let s = SignedSpan { nanos };
            prop_assert_eq!(s.to_string().parse::<SignedSpan>().unwrap(), s);
        }

        #[test]
        fn byte_size_round_trips(bytes in any::<u64>()) {
            let b = ByteSize(bytes);
            prop_assert_eq!(b.to_string().parse::<ByteSize>().unwrap(), b);
        }

        #[test]
        fn byte_size_round_trips_round_numbers(n in 0u64..1_000_000, shift in 0u32..30) {
            let b = ByteSize(n << shift);
            prop_assert_eq!(b.to_string().parse::<ByteSize>().unwrap(), b);
        }

        #[test]
        fn bandwidth_round_trips(bits in 1u64..) {
            let bw = Bandwidth(bits);
            prop_assert_eq!(bw.to_string().parse::<Bandwidth>().unwrap(), bw);
        }

        #[test]
        fn bandwidth_round_trips_round_numbers(n in 1u64..100_000, power in 0u32..5) {
            let bw = Bandwidth(n * 1000u64.pow(power));
            prop_assert_eq!(bw.to_string().parse::<Bandwidth>().unwrap(), bw);
        }
    }
}
