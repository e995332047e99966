//! Diurnal background load on a WAN link: the share of its capacity that
//! other traffic uses in each hour of the site's local day.

use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};

use super::document::nearest;
use super::error::backticked;

/// Background traffic on a link, by hour of local time.
///
/// Written as a profile name or as an array of exactly 24 shares, one per
/// local hour starting at midnight, each in `[0, 1)`: a share of 1 would
/// leave nothing for synchronisation and stall the link forever.
#[derive(Clone, Debug, PartialEq)]
pub enum Background {
    /// One of the named profiles below.
    Profile(BackgroundProfile),
    /// Explicit shares, hour 0 (00:00–01:00 local) first.
    Hourly([f64; 24]),
}

impl Background {
    /// The 24 hourly shares of capacity in use by other traffic.
    pub fn hourly_shares(&self) -> [f64; 24] {
        match self {
            Background::Profile(p) => p.hourly_shares(),
            Background::Hourly(shares) => *shares,
        }
    }

    /// The share in use during local hour `hour` (0 to 23; larger values
    /// wrap around the day).
    pub fn share_at_hour(&self, hour: u32) -> f64 {
        self.hourly_shares()[(hour % 24) as usize]
    }
}

/// Named background profiles. The shares, by local hour:
///
/// | hours        | `none` | `office` | `backup-night` |
/// |--------------|--------|----------|----------------|
/// | 00–05        | 0      | 0.05     | 0.80           |
/// | 06–07        | 0      | 0.10     | 0.20           |
/// | 08           | 0      | 0.40     | 0.20           |
/// | 09–11        | 0      | 0.60     | 0.30           |
/// | 12           | 0      | 0.45     | 0.25           |
/// | 13–16        | 0      | 0.60     | 0.30           |
/// | 17           | 0      | 0.40     | 0.20           |
/// | 18–21        | 0      | 0.15     | 0.10           |
/// | 22–23        | 0      | 0.05     | 0.80           |
///
/// `office` is a branch office whose staff fill the uplink in working hours
/// and leave it quiet at night, which is what makes a night-time sync
/// window attractive. `backup-night` is the counter-case: nightly backups
/// take most of the link exactly when the sync window opens. The figures are
/// illustrative shapes, not measurements; a scenario that needs measured
/// load gives its own 24 numbers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum BackgroundProfile {
    /// No other traffic: the link is the simulation's alone.
    #[default]
    None,
    /// Busy in office hours, quiet at night.
    Office,
    /// Nightly backups fill the link from 22:00 to 06:00.
    BackupNight,
}

const NONE_SHARES: [f64; 24] = [0.0; 24];

#[rustfmt::skip]
const OFFICE_SHARES: [f64; 24] = [
    0.05, 0.05, 0.05, 0.05, 0.05, 0.05, // 00-05
    0.10, 0.10, 0.40,                   // 06-08
    0.60, 0.60, 0.60, 0.45,             // 09-12
    0.60, 0.60, 0.60, 0.60, 0.40,       // 13-17
    0.15, 0.15, 0.15, 0.15,             // 18-21
    0.05, 0.05,                         // 22-23
];

#[rustfmt::skip]
const BACKUP_NIGHT_SHARES: [f64; 24] = [
    0.80, 0.80, 0.80, 0.80, 0.80, 0.80, // 00-05
    0.20, 0.20, 0.20,                   // 06-08
    0.30, 0.30, 0.30, 0.25,             // 09-12
    0.30, 0.30, 0.30, 0.30, 0.20,       // 13-17
    0.10, 0.10, 0.10, 0.10,             // 18-21
    0.80, 0.80,                         // 22-23
];

/// Profile names as written in scenario files.
const PROFILE_NAMES: &[&str] = &["none", "office", "backup-night"];

impl BackgroundProfile {
    /// The profile's 24 hourly shares.
    pub fn hourly_shares(self) -> [f64; 24] {
        match self {
            BackgroundProfile::None => NONE_SHARES,
            BackgroundProfile::Office => OFFICE_SHARES,
            BackgroundProfile::BackupNight => BACKUP_NIGHT_SHARES,
        }
    }

    /// The name as written in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            BackgroundProfile::None => "none",
            BackgroundProfile::Office => "office",
            BackgroundProfile::BackupNight => "backup-night",
        }
    }

    fn from_name(name: &str) -> Option<BackgroundProfile> {
        match name {
            "none" => Some(BackgroundProfile::None),
            "office" => Some(BackgroundProfile::Office),
            "backup-night" => Some(BackgroundProfile::BackupNight),
            _ => None,
        }
    }
}

impl Default for Background {
    fn default() -> Background {
        Background::Profile(BackgroundProfile::None)
    }
}

impl<'de> Deserialize<'de> for Background {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Background, D::Error> {
        deserializer.deserialize_any(BackgroundVisitor)
    }
}

struct BackgroundVisitor;

impl<'de> Visitor<'de> for BackgroundVisitor {
    type Value = Background;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a profile name ({}) or an array of 24 hourly shares", backticked(PROFILE_NAMES))
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Background, E> {
        if let Some(profile) = BackgroundProfile::from_name(name) {
            return Ok(Background::Profile(profile));
        }
        let hint = match nearest(name, PROFILE_NAMES.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? "),
            None => String::new(),
        };
        Err(E::custom(format_args!(
            "unknown background profile `{name}`; {hint}profiles are {}, \
             or give an array of 24 hourly shares",
            backticked(PROFILE_NAMES)
        )))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Background, A::Error> {
        let mut shares = [0.0; 24];
        let mut count = 0;
        while let Some(share) = seq.next_element::<f64>()? {
            if !(0.0..1.0).contains(&share) {
                return Err(de::Error::custom(format_args!(
                    "hour {count} has share {share}; each share must be at least 0 \
                     and below 1"
                )));
            }
            if count < 24 {
                shares[count] = share;
            }
            count += 1;
        }
        if count != 24 {
            return Err(de::Error::custom(format_args!(
                "expected exactly 24 hourly shares (one per local hour), found {count}"
            )));
        }
        Ok(Background::Hourly(shares))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct Link {
        background: Background,
    }

    fn parse(text: &str) -> Result<Background, String> {
        toml::from_str::<Link>(text).map(|l| l.background).map_err(|e| e.message().to_owned())
    }

    #[test]
    fn profiles_by_name() {
        let office = parse("background = \"office\"").unwrap();
        assert_eq!(office.share_at_hour(10), 0.6);
        assert_eq!(office.share_at_hour(3), 0.05);
        let night = parse("background = \"backup-night\"").unwrap();
        assert_eq!(night.share_at_hour(23), 0.8);
        assert_eq!(Background::default().share_at_hour(12), 0.0);
    }

    #[test]
    fn explicit_hours() {
        let text = format!("background = [{}]", ["0.5"; 24].join(", "));
        assert_eq!(parse(&text).unwrap().share_at_hour(5), 0.5);
    }

    #[test]
    fn rejects_bad_backgrounds() {
        let err = parse("background = \"ofice\"").unwrap_err();
        assert!(err.contains("did you mean `office`?"), "{err}");
        let err = parse("background = [0.1, 0.2]").unwrap_err();
        assert!(err.contains("exactly 24 hourly shares"), "{err}");
        let text = format!("background = [1.0{}]", ", 0".repeat(23));
        let err = parse(&text).unwrap_err();
        assert!(err.contains("below 1"), "{err}");
    }
}
