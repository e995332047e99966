//! Quantities as people write them in scenario files.
//!
//! The types live in [`tiersync_engine::units`], the one parser the
//! scenario files and the daemons' configuration files share (the engine
//! is the crate both depend on); they are re-exported here under the path
//! scenario code has always used.

pub use tiersync_engine::units::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Sample {
        span: Span,
        size: ByteSize,
        rate: Bandwidth,
        window: TimeOfDayWindow,
        share: Probability,
    }

    #[test]
    fn deserialises_from_toml() {
        let text = "span = \"1h30m\"\nsize = 4096\nrate = \"10Mbps\"\n\
                    window = \"22:00-02:00\"\nshare = 1\n";
        let s: Sample = toml::from_str(text).unwrap();
        assert_eq!(s.span, Span::from_mins(90));
        assert_eq!(s.size.bytes(), 4096);
        assert_eq!(s.rate.bits_per_second(), 10_000_000);
        assert_eq!(s.window.length_minutes(), 240);
        assert_eq!(s.share, Probability::ONE);
    }

    #[test]
    fn unitless_integer_duration_is_rejected_in_toml() {
        let text = "span = 30\nsize = 1\nrate = \"1bps\"\nwindow = \"01:00-02:00\"\nshare = 0\n";
        let err = toml::from_str::<Sample>(text).err().unwrap();
        assert!(err.message().contains("missing unit: write e.g. 30s"));
        let text = "span = \"1s\"\nsize = 1\nrate = \"1bps\"\nwindow = \"01:00-02:00\"\n\
                    share = \"0.5\"\n";
        let err = toml::from_str::<Sample>(text).err().unwrap();
        assert!(err.message().contains("expected a number from 0 to 1"));
    }
}
