//! How the API renders numbers and times: sizes as Botble's localised text ("1.000,00 KB")
//! and dates as naive `Y-m-d H:i:s` in the site time zone.

use chrono::TimeZone;

/// Botble's `humanFilesize`: base 1024, two decimals, "," as the decimal separator and "."
/// between thousands. 0 -> "0,00 B", 1 MiB -> "1,00 MB", 1,024,000 -> "1.000,00 KB".
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    let hundredths = (value * 100.0).round() as u64;
    let (int, frac) = (hundredths / 100, hundredths % 100);
    format!("{},{frac:02} {}", group_thousands(int), UNITS[unit])
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push('.');
        }
        out.push(c);
    }
    out
}

/// Unix seconds -> "2026-02-04 15:26:17" in `zone`, with no zone suffix.
pub fn naive_date(unix: i64, zone: chrono_tz::Tz) -> String {
    match zone.timestamp_opt(unix, 0).single() {
        Some(t) => t.format("%Y-%m-%d %H:%M:%S").to_string(),
        None => "1970-01-01 00:00:00".to_string(),
    }
}

/// The current time in Unix seconds.
pub fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_botble() {
        assert_eq!(human_size(0), "0,00 B");
        assert_eq!(human_size(1023), "1.023,00 B");
        assert_eq!(human_size(1 << 20), "1,00 MB");
        assert_eq!(human_size(1_024_000), "1.000,00 KB");
        assert_eq!(human_size(534_630), "522,10 KB");
        assert_eq!(human_size(3 << 40), "3,00 TB");
    }

    #[test]
    fn dates_are_naive_in_the_zone() {
        assert_eq!(naive_date(0, chrono_tz::UTC), "1970-01-01 00:00:00");
        assert_eq!(
            naive_date(0, chrono_tz::Europe::Berlin),
            "1970-01-01 01:00:00"
        );
    }
}
