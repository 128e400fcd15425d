//! Sizes ("1G", "512M", "16K", "4096") and durations ("10ms", "5s").

use core::time::Duration;

/// Parses a size: a whole number followed by `K`, `M`, `G` or `T` (binary units, any case,
/// optionally followed by `iB` or `B`), or a plain byte count. Zero is not a size.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let shift = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        "t" | "tb" | "tib" => 40,
        _ => {
            return Err(format!(
                "\"{text}\" is not a size; write a whole number with K, M or G, e.g. \"512M\""
            ));
        }
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    let value: u64 = digits.parse().map_err(|_| {
        format!("\"{text}\" is not a size; write a whole number with K, M or G, e.g. \"512M\"")
    })?;
    if value == 0 {
        return Err(format!("\"{text}\" is zero; a size must be more than 0"));
    }
    value
        .checked_shl(shift)
        .filter(|bytes| bytes >> shift == value)
        .ok_or_else(|| format!("\"{text}\" is too large"))
}

/// Formats a byte count for messages: "1 GiB", "512 MiB", "16 KiB", "4097 bytes".
pub fn format_size(bytes: u64) -> String {
    for (shift, unit) in [(40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB")] {
        if bytes >= 1 << shift && bytes.is_multiple_of(1 << shift) {
            return format!("{} {unit}", bytes >> shift);
        }
    }
    format!("{bytes} bytes")
}

/// Parses a duration: a whole number followed by `ns`, `us`, `ms`, `s` or `min`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let trimmed = text.trim();
    let digits_end = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '_')
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(digits_end);
    let bad = || {
        format!(
            "\"{text}\" is not a duration; write a whole number with ms, s or min, e.g. \"10ms\""
        )
    };
    let digits: String = digits.chars().filter(|&c| c != '_').collect();
    let value: u64 = digits.parse().map_err(|_| bad())?;
    match unit.trim() {
        "ns" => Ok(Duration::from_nanos(value)),
        "us" | "µs" => Ok(Duration::from_micros(value)),
        "ms" => Ok(Duration::from_millis(value)),
        "s" => Ok(Duration::from_secs(value)),
        "min" => value
            .checked_mul(60)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("\"{text}\" is too long")),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("512m"), Ok(512 << 20));
        assert_eq!(parse_size("16KiB"), Ok(16 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1_024K"), Ok(1 << 20));
        assert!(parse_size("1Q").unwrap_err().contains("is not a size"));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("G").is_err());
        assert!(parse_size("-1G").is_err());
        assert!(parse_size("0").unwrap_err().contains("zero"));
        assert!(
            parse_size("99999999999999G")
                .unwrap_err()
                .contains("too large")
        );
    }

    #[test]
    fn formatting() {
        assert_eq!(format_size(1 << 30), "1 GiB");
        assert_eq!(format_size(992 << 20), "992 MiB");
        assert_eq!(format_size(4097), "4097 bytes");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2min"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("250us"), Ok(Duration::from_micros(250)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
