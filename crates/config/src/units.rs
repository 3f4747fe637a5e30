//! Units used in topology files and experiment specs: bandwidth strings, millisecond
//! durations, and duration strings such as `30s`.

use std::time::Duration;

/// The largest latency or jitter a file may give: one hour, in milliseconds.
pub(crate) const MAX_MS: f64 = 3_600_000.0;

/// Converts a validated (finite, `0..=MAX_MS`) number of milliseconds to a `Duration`, rounded to
/// the nearest nanosecond.
pub(crate) fn ms_to_duration(ms: f64) -> Duration {
    debug_assert!(ms.is_finite() && (0.0..=MAX_MS).contains(&ms));
    Duration::from_nanos((ms * 1_000_000.0).round() as u64)
}

/// Parses a duration such as `"60s"`, `"500ms"`, `"2m"` or a bare number of seconds. Errors are
/// reasons, without the field path; a duration too large for [`Duration`] is an error, not a
/// panic.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => (&s[..i], &s[i..]),
        None => (s, "s"),
    };
    let v: f64 = num
        .parse()
        .map_err(|_| format!("invalid duration {s:?} (examples: 60s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1e3,
        "s" => v,
        "m" | "min" => v * 60.0,
        _ => return Err(format!("invalid duration unit in {s:?} (use ms, s or m)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("invalid duration {s:?}"));
    }
    Duration::try_from_secs_f64(secs).map_err(|_| format!("duration {s:?} is too long"))
}

/// Parses a bandwidth such as `"10Mbps"`, `"2500kbps"`, `"1.86 Mbps"` or `"1Gbps"` into bits per
/// second.
///
/// The number is a plain decimal (digits with an optional fractional part; no sign, no
/// exponent). Units are decimal SI and case-insensitive: `bps`, `kbps` (10^3), `Mbps` (10^6),
/// `Gbps` (10^9); the spellings `bit/s`, `kbit/s`, `Mbit/s`, `Gbit/s` are accepted too.
/// Arithmetic is exact; a result with a fractional bit per second is rounded to the nearest
/// integer (halves up). Errors are reasons, without the field path.
pub fn parse_bandwidth(text: &str) -> Result<u64, String> {
    let invalid = || {
        format!(
            "invalid bandwidth {text:?}: expected a number followed by a unit bps, kbps, Mbps \
             or Gbps, for example \"10Mbps\" or \"2500kbps\""
        )
    };
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let multiplier: u128 = match unit.trim_start().to_ascii_lowercase().as_str() {
        "bps" | "bit/s" => 1,
        "kbps" | "kbit/s" => 1_000,
        "mbps" | "mbit/s" => 1_000_000,
        "gbps" | "gbit/s" => 1_000_000_000,
        _ => return Err(invalid()),
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        None => (number, ""),
    };
    if whole.is_empty() && fraction.is_empty() || fraction.contains('.') {
        return Err(invalid());
    }
    let too_large = || format!("bandwidth {text:?} is too large");
    // value = (whole * 10^k + fraction) * multiplier / 10^k, k = fraction digits.
    let mut scaled: u128 = 0;
    for digit in whole.bytes().chain(fraction.bytes()) {
        scaled = scaled
            .checked_mul(10)
            .and_then(|v| v.checked_add(u128::from(digit - b'0')))
            .ok_or_else(too_large)?;
    }
    let scale = u32::try_from(fraction.len())
        .ok()
        .and_then(|k| 10u128.checked_pow(k))
        .ok_or_else(too_large)?;
    let numerator = scaled.checked_mul(multiplier).ok_or_else(too_large)?;
    let bps = numerator / scale + u128::from(numerator % scale >= scale.div_ceil(2) && scale > 1);
    let bps = u64::try_from(bps).map_err(|_| too_large())?;
    if bps == 0 {
        return Err(format!("bandwidth must be > 0, got {text:?}"));
    }
    Ok(bps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("60s").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("x").is_err());
        assert!(parse_duration("5h").is_err());
        assert!(parse_duration("-1s").is_err());
        // Finite but beyond `Duration`: an error, not the panic of `from_secs_f64`.
        assert!(parse_duration("1e30s").is_err());
        assert!(parse_duration("1e300m").is_err());
    }

    #[test]
    fn bandwidths() {
        let ok = [
            ("10Mbps", 10_000_000),
            ("5Mbps", 5_000_000),
            ("2500kbps", 2_500_000),
            ("2.5Mbps", 2_500_000),
            ("1.86Mbps", 1_860_000),
            ("1.86 Mbps", 1_860_000),
            ("405kbps", 405_000),
            ("405Kbps", 405_000),
            ("1.3Mbps", 1_300_000),
            ("1Gbps", 1_000_000_000),
            ("100mbps", 100_000_000),
            ("9.81Mbit/s", 9_810_000),
            ("1bps", 1),
            ("0.5bps", 1),
            ("1.4bps", 1),
            (".5kbps", 500),
            ("7.kbps", 7_000),
            ("  3 Gbps  ", 3_000_000_000),
            ("18446744073709551615bps", u64::MAX),
        ];
        for (text, bps) in ok {
            assert_eq!(parse_bandwidth(text), Ok(bps), "{text}");
        }
        for bad in [
            "",
            "Mbps",
            "10",
            "10 M",
            "10mb",
            "-5Mbps",
            "+5Mbps",
            "1e6bps",
            "1.2.3Mbps",
            ".Mbps",
            "10 Mbps x",
            "ten Mbps",
        ] {
            let e = parse_bandwidth(bad).unwrap_err();
            assert!(e.contains("invalid bandwidth"), "{bad:?}: {e}");
        }
        assert!(parse_bandwidth("0Mbps")
            .unwrap_err()
            .contains("must be > 0"));
        assert!(parse_bandwidth("0.4bps")
            .unwrap_err()
            .contains("must be > 0"));
        assert!(parse_bandwidth("18446744073709551616bps")
            .unwrap_err()
            .contains("too large"));
        assert!(parse_bandwidth(&format!("{}Gbps", "9".repeat(60)))
            .unwrap_err()
            .contains("too large"));
        assert!(parse_bandwidth(&format!("1.{}bps", "0".repeat(60)))
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn milliseconds() {
        assert_eq!(ms_to_duration(0.1), Duration::from_micros(100));
        assert_eq!(ms_to_duration(50.0), Duration::from_millis(50));
        assert_eq!(ms_to_duration(38.8), Duration::from_micros(38_800));
        assert_eq!(ms_to_duration(MAX_MS), Duration::from_secs(3600));
    }
}
