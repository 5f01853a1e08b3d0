//! `ServerConfig`: everything `cloudify-server` is told at start, already parsed and checked,
//! plus the small parsers for the typed values of its command line (sizes such as `64Mi`,
//! rates such as `2Mi` bytes a second, keys with abilities).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// The eleven abilities a Cloudify API key can hold (the product's `ExternalAbility` enum).
pub const ALL_ABILITIES: [&str; 11] = [
    "list_media_folders",
    "create_media_folder",
    "view_media_folder",
    "edit_media_folder",
    "trash_media_folder",
    "delete_media_folder",
    "list_media_files",
    "create_media_file",
    "edit_media_file",
    "trash_media_file",
    "delete_media_file",
];

/// Extensions Cloudify 1.2.8 accepts by default (`CLOUDIFY_MEDIA_ALLOWED_EXTENSIONS`).
pub const DEFAULT_EXTENSIONS: &str = "jpg,jpeg,png,gif,txt,docx,zip,mp3,bmp,csv,xls,xlsx,ppt,\
pptx,pdf,mp4,m4v,doc,mpga,wav,webp,webm,mov,jfif,avif,rar,x-rar";

/// Which release of Cloudify the server imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// The 2026 published reference: `page`/`per_page` and `include_files` on listings.
    V2026,
    /// Release 1.2.8: listings return everything and ignore those parameters.
    V128,
}

impl std::str::FromStr for Flavor {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "2026" => Ok(Flavor::V2026),
            "1.2.8" | "128" => Ok(Flavor::V128),
            _ => Err(format!("unknown flavor {s:?} (expected 2026 or 1.2.8)")),
        }
    }
}

/// One API key and the abilities it holds. The token is kept as given; it is compared
/// case-insensitively, as the product's database collation does.
#[derive(Clone, PartialEq, Eq)]
pub struct KeySpec {
    pub token: String,
    pub abilities: Vec<String>,
}

impl std::fmt::Debug for KeySpec {
    // Never print a key, not even in a debug dump of the configuration.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySpec")
            .field("token", &"<redacted>")
            .field("abilities", &self.abilities)
            .finish()
    }
}

impl std::str::FromStr for KeySpec {
    type Err = String;

    /// `KEY` (all abilities) or `KEY=ability,ability...`.
    fn from_str(s: &str) -> Result<Self, String> {
        let (token, abilities) = match s.split_once('=') {
            Some((t, a)) => (t.trim(), Some(a)),
            None => (s.trim(), None),
        };
        if token.is_empty() {
            return Err("empty API key".to_string());
        }
        let abilities = match abilities {
            None => ALL_ABILITIES.iter().map(|a| a.to_string()).collect(),
            Some(list) => {
                let mut out = Vec::new();
                for a in list.split(',').map(str::trim).filter(|a| !a.is_empty()) {
                    if !ALL_ABILITIES.contains(&a) {
                        return Err(format!("unknown ability {a:?}"));
                    }
                    out.push(a.to_string());
                }
                out
            }
        };
        Ok(KeySpec {
            token: token.to_string(),
            abilities,
        })
    }
}

/// Reads a keys file: one `KEY[=abilities]` a line; blank lines and `#` comments skipped.
pub fn read_keys_file(path: &std::path::Path) -> Result<Vec<KeySpec>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read keys file {}: {e}", path.display()))?;
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .enumerate()
        .map(|(i, l)| {
            l.parse()
                .map_err(|e| format!("{}: entry {}: {e}", path.display(), i + 1))
        })
        .collect()
}

/// Status code of an authentication failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStatus {
    /// What 1.2.8 and the 2026 reference give.
    Forbidden403,
    /// What the 2025 reference documented.
    Unauthorized401,
}

/// Deliberate misbehaviour, all off by default.
#[derive(Debug, Clone, Default)]
pub struct FaultConfig {
    /// Delay before answering each API call and each storage download.
    pub latency: Duration,
    /// Share (0..=1) of API calls answered with 500 or 503.
    pub fail_rate: f64,
    /// Share (0..=1) of uploads and downloads whose connection is cut mid-body.
    pub drop_rate: f64,
    /// Pause in the middle of every download body.
    pub stall: Duration,
    /// Cap on each transfer, bytes a second (0 = none).
    pub bandwidth: u64,
    /// Every upload fails with a storage error (HTTP 200, `error: true`).
    pub fail_uploads: bool,
    /// Seed of the fault dice, so a run can be repeated.
    pub seed: u64,
}

/// The whole configuration of a `cloudify-server` process.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub keys: Vec<KeySpec>,
    pub flavor: Flavor,
    /// A local tree loaded at start into an empty library.
    pub import: Option<PathBuf>,
    /// Origin of `full_url`/`indirect_url`; `http://<listen address>` when `None`.
    pub public_url: Option<String>,
    /// Uploads above this get HTTP 200 "File is too big".
    pub max_upload: u64,
    /// Request bodies above this get 413.
    pub max_body: u64,
    /// Lowercase extensions an upload may have (by name and by content).
    pub allowed_extensions: Vec<String>,
    /// API requests a minute per client address; `None` = unlimited.
    pub rate_limit: Option<u32>,
    pub auth_status: AuthStatus,
    /// Zone the API's naive dates are rendered in.
    pub time_zone: chrono_tz::Tz,
    /// Enables `POST /_server/control`.
    pub test_control: bool,
    /// One `access:` line per request on standard error.
    pub access_log: bool,
    pub faults: FaultConfig,
}

impl ServerConfig {
    /// A configuration with the documented defaults, for `listen` and `data_dir`.
    pub fn new(listen: SocketAddr, data_dir: PathBuf) -> ServerConfig {
        ServerConfig {
            listen,
            data_dir,
            keys: Vec::new(),
            flavor: Flavor::V2026,
            import: None,
            public_url: None,
            max_upload: 2 << 30,
            max_body: 4 << 30,
            allowed_extensions: parse_extensions(DEFAULT_EXTENSIONS),
            rate_limit: None,
            auth_status: AuthStatus::Forbidden403,
            time_zone: chrono_tz::UTC,
            test_control: false,
            access_log: true,
            faults: FaultConfig::default(),
        }
    }
}

/// `"jpg, PNG,.txt"` -> `["jpg", "png", "txt"]`.
pub fn parse_extensions(list: &str) -> Vec<String> {
    list.split(',')
        .map(|e| e.trim().trim_start_matches('.').to_ascii_lowercase())
        .filter(|e| !e.is_empty())
        .collect()
}

/// A byte size: a number with an optional unit, `K`/`M`/`G`/`T` (powers of 1000, also
/// `KB`...) or `Ki`/`Mi`/`Gi`/`Ti` (powers of 1024, also `KiB`...). `1.5Mi` is allowed.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| format!("invalid size {s:?} (examples: 4096, 64Mi, 2G)"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "ki" | "kib" => 1 << 10,
        "mi" | "mib" => 1 << 20,
        "gi" | "gib" => 1 << 30,
        "ti" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "invalid size unit in {s:?} (use K, M, G, Ki, Mi, Gi)"
            ));
        }
    };
    Ok((num * mult as f64) as u64)
}

/// A transfer rate in bytes a second: a size, optionally followed by `/s`.
pub fn parse_rate(s: &str) -> Result<u64, String> {
    parse_size(s.trim().trim_end_matches("/s"))
}

/// A share between 0 and 1 (`0.1`), or a percentage (`10%`).
pub fn parse_probability(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("invalid probability {s:?} (examples: 0.1, 10%)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("probability {s:?} is outside 0..1"));
    }
    Ok(v)
}

/// A duration such as `200ms`, `2s`, `1m`; a bare number is milliseconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(Duration::from_millis(ms));
    }
    humantime::parse_duration(t).map_err(|e| format!("invalid duration {s:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_decimal_and_binary_units() {
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("64Mi").unwrap(), 64 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2_000_000_000);
        assert_eq!(parse_size("1.5KiB").unwrap(), 1536);
        assert!(parse_size("12 parsecs").is_err());
        assert_eq!(parse_rate("1Mi/s").unwrap(), 1 << 20);
    }

    #[test]
    fn keys_carry_all_abilities_unless_listed() {
        let k: KeySpec = "ABC".parse().unwrap();
        assert_eq!(k.abilities.len(), 11);
        let k: KeySpec = "abc=list_media_files,create_media_file".parse().unwrap();
        assert_eq!(k.abilities, vec!["list_media_files", "create_media_file"]);
        assert!("abc=fly".parse::<KeySpec>().is_err());
        assert!(!format!("{k:?}").contains("abc"));
    }

    #[test]
    fn probabilities_accept_percentages() {
        assert_eq!(parse_probability("25%").unwrap(), 0.25);
        assert!(parse_probability("1.5").is_err());
    }
}
