//! The command line of `cloudify-fs`: clap definitions and their conversion into the config
//! structs of the other layers ([`FsConfig`], [`MountConfig`], the client's settings). This is
//! the only module that sees clap types.
//!
//! Two calling conventions are accepted:
//! - `cloudify-fs mount URL MOUNTPOINT [options]`, the documented one;
//! - mount(8)'s helper convention, `mount.cloudify-fs URL MOUNTPOINT [-sfnv] [-o opts]`, used
//!   when the program is called as `mount.cloudify-fs` or without a subcommand (as
//!   `mount.fuse3` runs it for an fstab line of type `fuse.cloudify-fs`). mount(8) waits for
//!   its helper to return, so that convention runs in the background by default.
//!
//! `-o opt,opt=val` maps fstab-style options onto the same settings as the long options; the
//! `-o` options are applied after the long options, in the order given.
//!
//! The API key is never an argument: it comes from `CLOUDIFY_API_KEY` or `--api-key-file`
//! (see [`read_api_key`]), because argv is visible to every user in `ps` and /proc.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

use crate::api::ClientConfig;
use crate::fs::{DeleteMode, FsConfig, MountConfig};

/// Environment variable that holds the API key.
pub const API_KEY_ENV: &str = "CLOUDIFY_API_KEY";

/// The program name mount(8) runs for a filesystem type `cloudify-fs`.
const MOUNT_HELPER_NAME: &str = "mount.cloudify-fs";

#[derive(Parser, Debug)]
#[command(
    name = "cloudify-fs",
    version,
    about = "Mount a Cloudify media library as a local directory (FUSE)",
    args_override_self = true
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Mount the library at URL on MOUNTPOINT; runs until SIGINT, SIGTERM or `fusermount3 -u`.
    #[command(
        after_help = "The API key is read from the CLOUDIFY_API_KEY environment variable or from \
                      --api-key-file, never from the command line.\nDurations are written like \
                      30s, 5m, 1h 30m."
    )]
    Mount(Box<MountArgs>),
}

#[derive(Args, Debug, Clone)]
struct MountArgs {
    /// The Cloudify site (https://media.example.com) or its API base (.../api/v1).
    url: String,

    /// An existing, empty directory to mount on (see --allow-non-empty).
    mountpoint: PathBuf,

    /// Mount even if MOUNTPOINT holds files: they are hidden, not removed, until unmount.
    #[arg(long)]
    allow_non_empty: bool,

    /// Refuse every change (writes, deletes, mkdir, rename) with EROFS.
    #[arg(long, help_heading = "Access")]
    read_only: bool,

    /// Let other users enter the mount (non-root needs user_allow_other in /etc/fuse.conf).
    #[arg(long, help_heading = "Access")]
    allow_other: bool,

    /// Owner shown for every entry [default: the mounting user].
    #[arg(long, value_name = "UID", help_heading = "Access")]
    uid: Option<u32>,

    /// Group shown for every entry [default: the mounting user's group].
    #[arg(long, value_name = "GID", help_heading = "Access")]
    gid: Option<u32>,

    /// Permission bits removed from 0666 (files) and 0777 (directories), in octal.
    #[arg(long, value_name = "OCTAL", default_value = "022", value_parser = parse_umask,
          help_heading = "Access")]
    umask: u32,

    /// How long a folder listing is trusted before it is fetched again.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "60s",
        help_heading = "Caching"
    )]
    dir_cache_time: humantime::Duration,

    /// How long the kernel caches names and attributes [default: as long as the folder's
    /// listing stays fresh, 1s for files being written]
    #[arg(long, value_name = "DURATION", help_heading = "Caching")]
    attr_timeout: Option<humantime::Duration>,

    /// Folder for the size cache and staged writes [default:
    /// $XDG_CACHE_HOME/cloudify-fs/<hash of URL>, else ~/.cache/cloudify-fs/<hash>, or
    /// /var/cache/cloudify-fs/<hash> for root].
    #[arg(long, value_name = "DIR", help_heading = "Caching")]
    cache_dir: Option<PathBuf>,

    /// How many inodes the kernel no longer references are remembered.
    #[arg(
        long,
        value_name = "ENTRIES",
        default_value = "100000",
        help_heading = "Caching"
    )]
    inode_cache: usize,

    /// Timeout of each request to the server.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "30s",
        help_heading = "Network"
    )]
    timeout: humantime::Duration,

    /// Retries of a failed request (network errors, 5xx, 429), with backoff.
    #[arg(long, value_name = "N", default_value = "5", help_heading = "Network")]
    retries: u32,

    /// API calls per minute the mount allows itself (Cloudify throttles at 300 by default).
    #[arg(long, value_name = "CALLS", default_value = "240",
          value_parser = clap::value_parser!(u32).range(1..), help_heading = "Network")]
    rate_limit: u32,

    /// Time zone of the server's dates, an IANA name such as Europe/Berlin.
    #[arg(long, value_name = "ZONE", default_value = "UTC", value_parser = parse_timezone,
          help_heading = "Network")]
    server_timezone: chrono_tz::Tz,

    /// FUSE worker threads serving requests in parallel.
    #[arg(long, value_name = "N", default_value = "16", value_parser = parse_threads,
          help_heading = "Network")]
    max_threads: usize,

    /// What deleting a file or folder does on the server: `trash` keeps it recoverable in
    /// Cloudify's admin (its name stays taken), `permanent` removes it for good.
    #[arg(long, value_name = "MODE", value_enum, default_value_t = DeleteModeArg::Trash,
          help_heading = "Writing")]
    delete_mode: DeleteModeArg,

    /// Delay the upload of a written file until this long after its last close (0: upload
    /// at close, and close reports the result).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "0s",
        help_heading = "Writing"
    )]
    write_back: humantime::Duration,

    /// File name extensions the library accepts (the default is Cloudify 1.2.8's list),
    /// separated by ',' or ':'. With --write-back 0, creating a file with another extension
    /// or renaming a file to one fails at once with EPERM; with a delay, only its upload
    /// does. `*` or `any`: no check, the server decides.
    #[arg(long, value_name = "LIST", default_value = DEFAULT_EXTENSIONS,
          value_parser = parse_extensions, help_heading = "Writing")]
    allowed_extensions: ExtensionList,

    /// Read the API key from the first line of this file instead of CLOUDIFY_API_KEY.
    #[arg(long, value_name = "PATH", help_heading = "Authentication")]
    api_key_file: Option<PathBuf>,

    /// Return once the mount is ready and keep serving it in the background.
    #[arg(long, help_heading = "Process")]
    daemon: bool,

    /// Stay in the foreground even in the mount(8) helper convention.
    #[arg(long, hide = true)]
    foreground: bool,

    /// More log output: -v debug, -vv trace (RUST_LOG is respected too).
    #[arg(short = 'v', long = "debug", action = ArgAction::Count, help_heading = "Logging")]
    verbose: u8,

    /// Write the log to this file instead of standard error.
    #[arg(long, value_name = "PATH", help_heading = "Logging")]
    log_file: Option<PathBuf>,

    /// Mount options, comma separated, as in /etc/fstab: ro, allow_other, uid=N, gid=N,
    /// umask=OCTAL, dir_cache_time=DUR, attr_timeout=DUR, cache_dir=DIR, inode_cache=N,
    /// timeout=DUR, retries=N, rate_limit=N, server_timezone=ZONE, max_threads=N,
    /// delete_mode=trash|permanent, write_back=DUR, allowed_extensions=EXT:EXT:...,
    /// api_key_file=PATH, log_file=PATH, debug, allow_non_empty (or nonempty),
    /// daemon, foreground. Generic ones (rw, defaults, _netdev, nofail, noauto, auto, user,
    /// users, x-systemd.*, ...) are ignored.
    #[arg(short = 'o', value_name = "OPTIONS", action = ArgAction::Append,
          help_heading = "Mount options")]
    options: Vec<String>,

    /// mount(8) helper flag: sloppy, ignore unknown -o options with a warning.
    #[arg(short = 's', hide = true)]
    sloppy: bool,

    /// mount(8) helper flag: fake, check everything but do not mount.
    #[arg(short = 'f', hide = true)]
    fake: bool,

    /// mount(8) helper flag: do not write /etc/mtab (there is none to write).
    #[arg(short = 'n', hide = true)]
    no_mtab: bool,

    /// mount(8) helper flag: the filesystem type.
    #[arg(short = 't', hide = true)]
    fs_type: Option<String>,
}

/// [`crate::fs::config::CLOUDIFY_EXTENSIONS`] as `--help` shows it.
const DEFAULT_EXTENSIONS: &str = "jpg,jpeg,png,gif,txt,docx,zip,mp3,bmp,csv,xls,xlsx,ppt,pptx,\
pdf,mp4,m4v,doc,mpga,wav,webp,webm,mov,jfif,avif,rar,x-rar";

/// `--allowed-extensions`: `None` accepts any extension.
#[derive(Clone, Debug, PartialEq, Eq)]
struct ExtensionList(Option<Vec<String>>);

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum DeleteModeArg {
    Trash,
    Permanent,
}

impl From<DeleteModeArg> for DeleteMode {
    fn from(mode: DeleteModeArg) -> DeleteMode {
        match mode {
            DeleteModeArg::Trash => DeleteMode::Trash,
            DeleteModeArg::Permanent => DeleteMode::Permanent,
        }
    }
}

/// A command line that could not be used. [`CliError::exit`] prints it the way clap does
/// (help and version to stdout with status 0, usage errors to stderr with status 2).
#[derive(Debug)]
pub struct CliError(ErrorKind);

#[derive(Debug)]
enum ErrorKind {
    Clap(clap::Error),
    Usage(String),
}

impl CliError {
    fn usage(message: impl Into<String>) -> CliError {
        CliError(ErrorKind::Usage(message.into()))
    }

    /// Prints the error (or the help text it carries) and exits the process.
    pub fn exit(&self) -> ! {
        match &self.0 {
            ErrorKind::Clap(e) => e.exit(),
            ErrorKind::Usage(message) => {
                eprintln!("error: {message}\n\nFor more information, try '--help'.");
                std::process::exit(2)
            }
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            ErrorKind::Clap(e) => write!(f, "{e}"),
            ErrorKind::Usage(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for CliError {}

/// Settings of the HTTP client, before the key is known.
#[derive(Clone, Debug, PartialEq)]
pub struct NetworkSettings {
    pub timeout: Duration,
    pub retries: u32,
    pub rate_per_minute: u32,
}

/// Where the log goes and how much of it.
#[derive(Clone, Debug, PartialEq)]
pub struct LogSettings {
    /// 0: info, 1: debug for this crate, 2 or more: trace for this crate.
    pub verbosity: u8,
    pub file: Option<PathBuf>,
}

/// Everything `cloudify-fs mount` was asked to do.
#[derive(Clone, Debug)]
pub struct MountRequest {
    /// The URL as given, without any userinfo, for messages and the client.
    pub url: String,
    pub fs: FsConfig,
    pub mount: MountConfig,
    pub network: NetworkSettings,
    pub log: LogSettings,
    /// `--api-key-file`; `None` reads `CLOUDIFY_API_KEY`.
    pub api_key_file: Option<PathBuf>,
    /// Mount over a folder that holds files (hiding them until unmount).
    pub allow_non_empty: bool,
    /// Return once the mount is ready and serve it in the background.
    pub daemon: bool,
    /// mount(8)'s `-f`: check everything, mount nothing.
    pub fake: bool,
    /// Things worth a warning that were found before logging was set up.
    pub warnings: Vec<String>,
}

impl MountRequest {
    /// The client's settings for this mount, with `key`.
    pub fn client_config(&self, key: &ApiKey) -> ClientConfig {
        let mut config = ClientConfig::new(&self.url, key.expose());
        config.timeout = self.network.timeout;
        config.retries = self.network.retries;
        config.rate_per_minute = Some(self.network.rate_per_minute);
        config
    }
}

/// Parses a command line (`args` includes the program name).
pub fn parse<I, T>(args: I) -> Result<MountRequest, CliError>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut args: Vec<OsString> = args.into_iter().map(Into::into).collect();
    let helper = is_helper_call(&args);
    if helper {
        args.insert(1.min(args.len()), OsString::from("mount"));
    }
    let cli = Cli::try_parse_from(args).map_err(|e| CliError(ErrorKind::Clap(e)))?;
    let Command::Mount(mut mount_args) = cli.command;

    let mut warnings = Vec::new();
    for group in mount_args.options.clone() {
        for option in group.split(',').filter(|o| !o.trim().is_empty()) {
            match apply_option(&mut mount_args, option.trim()) {
                Ok(()) => {}
                Err(OptionError::Unknown(name)) if mount_args.sloppy => {
                    warnings.push(format!("ignoring unknown mount option {name:?}"));
                }
                Err(e) => return Err(CliError::usage(e.to_string())),
            }
        }
    }
    build_request(*mount_args, helper, warnings)
}

/// Whether argv follows mount(8)'s helper convention: called as `mount.cloudify-fs`, or
/// with a URL where the subcommand belongs.
fn is_helper_call(args: &[OsString]) -> bool {
    let called_as_helper = args
        .first()
        .and_then(|a| Path::new(a).file_name())
        .is_some_and(|name| name.to_string_lossy().ends_with(MOUNT_HELPER_NAME));
    let first = args.get(1).map(|a| a.to_string_lossy());
    let subcommand_missing = first.is_some_and(|a| {
        !a.starts_with('-') && !matches!(a.as_ref(), "mount" | "help") && a.contains(':')
    });
    called_as_helper || subcommand_missing
}

fn build_request(
    args: MountArgs,
    helper: bool,
    mut warnings: Vec<String>,
) -> Result<MountRequest, CliError> {
    let url = clean_url(&args.url, &mut warnings)?;
    let cache_dir = match &args.cache_dir {
        Some(dir) => dir.clone(),
        None => default_cache_dir(&url)?,
    };

    let mut fs = FsConfig::new(cache_dir);
    fs.read_only = args.read_only;
    fs.uid = args.uid.unwrap_or(fs.uid);
    fs.gid = args.gid.unwrap_or(fs.gid);
    fs.umask = args.umask;
    fs.dir_cache_time = *args.dir_cache_time;
    fs.attr_timeout = args.attr_timeout.map(Into::into);
    fs.server_timezone = args.server_timezone;
    fs.inode_cache_capacity = args.inode_cache;
    fs.delete_mode = args.delete_mode.into();
    fs.write_back = *args.write_back;
    fs.allowed_extensions = args.allowed_extensions.0;

    let mount = MountConfig {
        mountpoint: args.mountpoint,
        allow_other: args.allow_other,
        max_threads: args.max_threads,
        fs_name: url.clone(),
    };
    Ok(MountRequest {
        url,
        fs,
        mount,
        network: NetworkSettings {
            timeout: *args.timeout,
            retries: args.retries,
            rate_per_minute: args.rate_limit,
        },
        log: LogSettings {
            verbosity: args.verbose,
            file: args.log_file,
        },
        api_key_file: args.api_key_file,
        allow_non_empty: args.allow_non_empty,
        daemon: if helper {
            !args.foreground
        } else {
            args.daemon && !args.foreground
        },
        fake: args.fake,
        warnings,
    })
}

/// Checks the URL and removes any userinfo: credentials in a URL would be shown in
/// /proc/mounts and in the log, and Cloudify does not use them.
fn clean_url(raw: &str, warnings: &mut Vec<String>) -> Result<String, CliError> {
    let mut url = reqwest::Url::parse(raw.trim()).map_err(|e| {
        CliError::usage(format!(
            "invalid URL {:?}: {e} (expected e.g. https://media.example.com)",
            strip_userinfo_text(raw)
        ))
    })?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(CliError::usage(format!(
            "unsupported URL scheme {:?}: use http:// or https://",
            url.scheme()
        )));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(CliError::usage("the URL has no host"));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.username().is_empty() || url.password().is_some() {
        warnings.push("ignoring the user name and password in the URL".to_string());
        // Setting these cannot fail on an http(s) URL with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
    }
    let text = url.as_str();
    Ok(text.strip_suffix('/').unwrap_or(text).to_string())
}

/// `scheme://user:pass@host/...` -> `scheme://host/...` on text that did not parse as a URL,
/// so that an error message never repeats a password.
fn strip_userinfo_text(raw: &str) -> String {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return raw.to_string();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => raw.to_string(),
    }
}

/// `$XDG_CACHE_HOME/cloudify-fs/<hash>`, else `~/.cache/cloudify-fs/<hash>`, and
/// `/var/cache/cloudify-fs/<hash>` for root without XDG_CACHE_HOME (mounts from fstab run
/// as root with no meaningful home). The hash keeps libraries apart.
fn default_cache_dir(url: &str) -> Result<PathBuf, CliError> {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(url.as_bytes());
    let name = hex::encode(&digest[..8]);

    let absolute = |var: &str| {
        std::env::var_os(var)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    // SAFETY: geteuid cannot fail and touches no memory.
    let is_root = unsafe { libc::geteuid() } == 0;
    let base = if let Some(xdg) = absolute("XDG_CACHE_HOME") {
        xdg
    } else if is_root {
        PathBuf::from("/var/cache")
    } else if let Some(home) = absolute("HOME") {
        home.join(".cache")
    } else {
        return Err(CliError::usage(
            "no cache folder: HOME and XDG_CACHE_HOME are unset; pass --cache-dir",
        ));
    };
    Ok(base.join("cloudify-fs").join(name))
}

/// Why one `-o` option could not be applied. Messages name the option, never its value
/// (a misplaced key must not be echoed).
#[derive(Debug, PartialEq, Eq)]
enum OptionError {
    Unknown(String),
    MissingValue(String),
    UnexpectedValue(String),
    BadValue { name: String, reason: String },
    KeyOnCommandLine,
}

impl fmt::Display for OptionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionError::Unknown(name) => write!(f, "unknown mount option {name:?} in -o"),
            OptionError::MissingValue(name) => {
                write!(f, "mount option {name:?} needs a value ({name}=...)")
            }
            OptionError::UnexpectedValue(name) => {
                write!(f, "mount option {name:?} takes no value")
            }
            OptionError::BadValue { name, reason } => {
                write!(f, "invalid value for mount option {name:?}: {reason}")
            }
            OptionError::KeyOnCommandLine => write!(
                f,
                "the API key is not accepted as a mount option (it would be visible to every \
                 user); set {API_KEY_ENV} or use api_key_file=PATH"
            ),
        }
    }
}

/// Options that mount(8), systemd or FUSE's own tools handle, or that mean nothing here.
fn is_generic_option(name: &str) -> bool {
    #[rustfmt::skip]
    const GENERIC: &[&str] = &[
        "rw", "defaults", "_netdev", "nofail", "noauto", "auto", "user", "users", "nouser",
        "owner", "group", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "async", "atime",
        "noatime", "relatime", "strictatime", "diratime", "nodiratime", "lazytime",
        "nolazytime", "loud", "silent", "subtype", "fsname",
    ];
    GENERIC.contains(&name) || name.starts_with("x-") || name == "comment"
}

/// Applies one fstab-style option (`name` or `name=value`) to the parsed arguments.
fn apply_option(args: &mut MountArgs, option: &str) -> Result<(), OptionError> {
    let (raw_name, value) = match option.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (option, None),
    };
    let name = raw_name.replace('-', "_");
    if is_generic_option(raw_name) || is_generic_option(&name) {
        return Ok(());
    }
    let flag = |target: &mut bool| match value {
        None => {
            *target = true;
            Ok(())
        }
        Some(_) => Err(OptionError::UnexpectedValue(name.clone())),
    };
    let required = || value.ok_or_else(|| OptionError::MissingValue(name.clone()));
    let bad = |reason: String| OptionError::BadValue {
        name: name.clone(),
        reason,
    };

    match name.as_str() {
        "ro" | "read_only" => flag(&mut args.read_only)?,
        "allow_other" => flag(&mut args.allow_other)?,
        // `nonempty` is the name fuse2's mount option had in fstab lines.
        "allow_non_empty" | "nonempty" => flag(&mut args.allow_non_empty)?,
        "daemon" => flag(&mut args.daemon)?,
        "foreground" => flag(&mut args.foreground)?,
        "debug" => match value {
            None => args.verbose = args.verbose.saturating_add(1),
            Some(_) => return Err(OptionError::UnexpectedValue(name)),
        },
        "uid" => args.uid = Some(required()?.parse().map_err(|e| bad(format!("{e}")))?),
        "gid" => args.gid = Some(required()?.parse().map_err(|e| bad(format!("{e}")))?),
        "umask" => args.umask = parse_umask(required()?).map_err(bad)?,
        "dir_cache_time" => args.dir_cache_time = parse_duration(required()?).map_err(bad)?,
        "attr_timeout" => {
            args.attr_timeout = Some(parse_duration(required()?).map_err(bad)?);
        }
        "timeout" => args.timeout = parse_duration(required()?).map_err(bad)?,
        "write_back" => args.write_back = parse_duration(required()?).map_err(bad)?,
        "allowed_extensions" => {
            args.allowed_extensions = parse_extensions(required()?).map_err(bad)?
        }
        "cache_dir" => args.cache_dir = Some(parse_path(required()?).map_err(bad)?),
        "api_key_file" => args.api_key_file = Some(parse_path(required()?).map_err(bad)?),
        "log_file" => args.log_file = Some(parse_path(required()?).map_err(bad)?),
        "inode_cache" => args.inode_cache = required()?.parse().map_err(|e| bad(format!("{e}")))?,
        "retries" => args.retries = required()?.parse().map_err(|e| bad(format!("{e}")))?,
        "rate_limit" => args.rate_limit = parse_rate(required()?).map_err(bad)?,
        "max_threads" => args.max_threads = parse_threads(required()?).map_err(bad)?,
        "server_timezone" => args.server_timezone = parse_timezone(required()?).map_err(bad)?,
        "delete_mode" => {
            args.delete_mode = DeleteModeArg::from_str(required()?, true)
                .map_err(|_| bad("expected trash or permanent".to_string()))?
        }
        "api_key" | "key" | "apikey" | "x_api_key" => return Err(OptionError::KeyOnCommandLine),
        _ => return Err(OptionError::Unknown(raw_name.to_string())),
    }
    Ok(())
}

fn parse_umask(s: &str) -> Result<u32, String> {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    match u32::from_str_radix(digits, 8) {
        Ok(mask) if mask <= 0o777 => Ok(mask),
        _ => Err(format!("{s:?} is not an octal mask between 000 and 777")),
    }
}

fn parse_duration(s: &str) -> Result<humantime::Duration, String> {
    s.parse::<humantime::Duration>()
        .map_err(|e| format!("{s:?}: {e} (write e.g. 30s, 5m, 1h)"))
}

/// `jpg,png`, `jpg:png` (the form for -o, where ',' separates options), `.JPG` alike;
/// `*` or `any` turns the check off.
fn parse_extensions(s: &str) -> Result<ExtensionList, String> {
    if matches!(s.trim(), "*" | "any") {
        return Ok(ExtensionList(None));
    }
    let list: Vec<String> = s
        .split([',', ':', ' '])
        .map(|e| e.trim().trim_start_matches('.').to_lowercase())
        .filter(|e| !e.is_empty())
        .collect();
    if list.is_empty() {
        return Err("an empty list of extensions; use * to accept any".to_string());
    }
    Ok(ExtensionList(Some(list)))
}

fn parse_path(s: &str) -> Result<PathBuf, String> {
    if s.is_empty() {
        Err("empty path".to_string())
    } else {
        Ok(PathBuf::from(s))
    }
}

fn parse_rate(s: &str) -> Result<u32, String> {
    match s.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "{s:?} is not a number of calls per minute (at least 1)"
        )),
    }
}

fn parse_threads(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=1024).contains(&n) => Ok(n),
        _ => Err(format!("{s:?} is not a thread count between 1 and 1024")),
    }
}

fn parse_timezone(s: &str) -> Result<chrono_tz::Tz, String> {
    s.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("unknown time zone {s:?} (use an IANA name such as Europe/Berlin)"))
}

/// The API key, kept out of `Debug` output so that it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// The key itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(<redacted>)")
    }
}

/// Takes `CLOUDIFY_API_KEY` out of the process environment and returns its value, so that
/// no child process (fusermount3, which mounts for a user without root, or anything a helper
/// runs) inherits the key. `main` calls it first, before any thread exists.
///
/// # Safety
///
/// No other thread may read or change the environment meanwhile (see
/// [`std::env::remove_var`]).
pub unsafe fn take_api_key_env() -> Option<OsString> {
    let value = std::env::var_os(API_KEY_ENV);
    // Removing the variable only drops its pointer: the text stays in the environment block
    // the process started with, which /proc/PID/environ (`ps e`) shows. Blank it there first.
    // SAFETY: the caller guarantees that no other thread uses the environment; getenv gives
    // the variable's own NUL-terminated value (the value was copied above), which is
    // overwritten within its length.
    unsafe {
        let text = libc::getenv(c"CLOUDIFY_API_KEY".as_ptr());
        if !text.is_null() {
            std::ptr::write_bytes(text, 0, libc::strlen(text));
        }
        std::env::remove_var(API_KEY_ENV);
    }
    value
}

/// Reads the key from `file` (first line, trimmed) or, without one, from `env_key`, the
/// value `CLOUDIFY_API_KEY` had (see [`take_api_key_env`]). Warns when the file is readable
/// by group or others. Errors never contain the key.
pub fn read_api_key(file: Option<&Path>, env_key: Option<OsString>) -> Result<ApiKey, String> {
    let key = match file {
        Some(path) => read_key_file(path)?,
        None => match env_key.map(OsString::into_string) {
            Some(Ok(key)) => key.trim().to_string(),
            None => {
                return Err(format!(
                    "no API key: set {API_KEY_ENV} or pass --api-key-file PATH \
                     (the key is never taken from the command line)"
                ));
            }
            Some(Err(_)) => {
                return Err(format!("{API_KEY_ENV} is not valid text"));
            }
        },
    };
    let source = match file {
        Some(path) => format!("the key file {}", path.display()),
        None => API_KEY_ENV.to_string(),
    };
    if key.is_empty() {
        return Err(format!("no API key: {source} is empty"));
    }
    // The key travels in an HTTP header: visible ASCII only.
    if !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "the API key in {source} contains spaces or characters that cannot be sent in \
             an HTTP header"
        ));
    }
    Ok(ApiKey(key))
}

fn read_key_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the API key file {shown}: {e}"))?;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode();
        if mode & 0o044 != 0 {
            log::warn!(
                "the API key file {shown} is readable by other users (mode {:03o}); \
                 `chmod 600 {shown}` keeps the key private",
                mode & 0o777
            );
        }
    }
    Ok(text.lines().next().unwrap_or("").trim().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok<S: AsRef<str> + fmt::Debug>(args: &[S]) -> MountRequest {
        match parse(args.iter().map(AsRef::as_ref)) {
            Ok(request) => request,
            Err(e) => panic!("{args:?} did not parse: {e}"),
        }
    }

    fn parse_err<S: AsRef<str> + fmt::Debug>(args: &[S]) -> String {
        match parse(args.iter().map(AsRef::as_ref)) {
            Ok(request) => panic!("{args:?} parsed to {request:?}"),
            Err(e) => e.to_string(),
        }
    }

    const BASE: &[&str] = &[
        "cloudify-fs",
        "mount",
        "https://media.example.com",
        "/mnt/m",
    ];

    fn with(extra: &[&str]) -> Vec<String> {
        BASE.iter().chain(extra).map(|s| s.to_string()).collect()
    }

    #[test]
    fn defaults_match_the_documented_values() {
        let r = parse_ok(BASE);
        assert_eq!(r.url, "https://media.example.com");
        assert!(!r.fs.read_only);
        assert_eq!(r.fs.umask, 0o022);
        assert_eq!(r.fs.dir_cache_time, Duration::from_secs(60));
        assert_eq!(
            r.fs.attr_timeout, None,
            "kept as long as the listing stays fresh"
        );
        assert_eq!(r.fs.server_timezone, chrono_tz::UTC);
        assert_eq!(r.fs.delete_mode, DeleteMode::Trash);
        assert_eq!(r.fs.write_back, Duration::ZERO);
        let cloudify: Vec<String> = crate::fs::config::CLOUDIFY_EXTENSIONS
            .iter()
            .map(|e| e.to_string())
            .collect();
        assert_eq!(r.fs.allowed_extensions, Some(cloudify));
        assert_eq!(r.network.timeout, Duration::from_secs(30));
        assert_eq!(r.network.retries, 5);
        assert_eq!(r.network.rate_per_minute, 240);
        assert_eq!(r.mount.max_threads, 16);
        assert_eq!(r.mount.mountpoint, PathBuf::from("/mnt/m"));
        assert_eq!(r.mount.fs_name, "https://media.example.com");
        assert!(!r.daemon);
        assert!(!r.allow_non_empty);
        assert!(
            r.fs.cache_dir
                .ends_with(Path::new("cloudify-fs").join(hex::encode(
                    &<sha2::Sha256 as sha2::Digest>::digest(b"https://media.example.com")[..8]
                )))
        );
    }

    #[test]
    fn long_options_reach_the_configs() {
        let r = parse_ok(&with(&[
            "--read-only",
            "--allow-other",
            "--uid=1000",
            "--gid",
            "100",
            "--umask",
            "027",
            "--dir-cache-time",
            "5m",
            "--attr-timeout=10s",
            "--cache-dir=/tmp/c",
            "--timeout",
            "1m 30s",
            "--retries=0",
            "--rate-limit=60",
            "--server-timezone=Europe/Berlin",
            "--max-threads=4",
            "--inode-cache=10",
            "--delete-mode=permanent",
            "--write-back=2s",
            "--api-key-file=/etc/key",
            "--daemon",
            "-vv",
            "--log-file=/tmp/log",
        ]));
        assert!(r.fs.read_only && r.mount.allow_other && r.daemon);
        assert_eq!((r.fs.uid, r.fs.gid, r.fs.umask), (1000, 100, 0o027));
        assert_eq!(r.fs.dir_cache_time, Duration::from_secs(300));
        assert_eq!(r.fs.attr_timeout, Some(Duration::from_secs(10)));
        assert_eq!(r.fs.cache_dir, PathBuf::from("/tmp/c"));
        assert_eq!(r.fs.inode_cache_capacity, 10);
        assert_eq!(r.fs.delete_mode, DeleteMode::Permanent);
        assert_eq!(r.fs.write_back, Duration::from_secs(2));
        assert_eq!(r.fs.server_timezone, chrono_tz::Europe::Berlin);
        assert_eq!(r.network.timeout, Duration::from_secs(90));
        assert_eq!((r.network.retries, r.network.rate_per_minute), (0, 60));
        assert_eq!(r.mount.max_threads, 4);
        assert_eq!(r.api_key_file, Some(PathBuf::from("/etc/key")));
        assert_eq!(r.log.verbosity, 2);
        assert_eq!(r.log.file, Some(PathBuf::from("/tmp/log")));
    }

    #[test]
    fn o_options_map_onto_the_same_settings() {
        let r = parse_ok(&with(&[
            "-o",
            "ro,allow_other,uid=1000,gid=100,umask=077,dir_cache_time=2m,attr-timeout=3s",
            "-o",
            "cache_dir=/tmp/c,timeout=5s,retries=2,rate_limit=30,server_timezone=Asia/Tokyo",
            "-omax_threads=2,inode_cache=7,delete_mode=permanent,write_back=1s,debug,debug",
            "-o",
            "api_key_file=/k,log_file=/l,daemon",
        ]));
        assert!(r.fs.read_only && r.mount.allow_other && r.daemon);
        assert_eq!((r.fs.uid, r.fs.gid, r.fs.umask), (1000, 100, 0o077));
        assert_eq!(r.fs.dir_cache_time, Duration::from_secs(120));
        assert_eq!(r.fs.attr_timeout, Some(Duration::from_secs(3)));
        assert_eq!(r.fs.cache_dir, PathBuf::from("/tmp/c"));
        assert_eq!(r.network.timeout, Duration::from_secs(5));
        assert_eq!((r.network.retries, r.network.rate_per_minute), (2, 30));
        assert_eq!(r.fs.server_timezone, chrono_tz::Asia::Tokyo);
        assert_eq!(r.mount.max_threads, 2);
        assert_eq!(r.fs.inode_cache_capacity, 7);
        assert_eq!(r.fs.delete_mode, DeleteMode::Permanent);
        assert_eq!(r.fs.write_back, Duration::from_secs(1));
        assert_eq!(r.log.verbosity, 2);
        assert_eq!(r.api_key_file, Some(PathBuf::from("/k")));
        assert_eq!(r.log.file, Some(PathBuf::from("/l")));
    }

    #[test]
    fn allowed_extensions_take_commas_colons_and_a_wildcard() {
        let list = |v: &[&str]| Some(v.iter().map(|e| e.to_string()).collect::<Vec<_>>());
        let r = parse_ok(&with(&["--allowed-extensions", "JPG, .png,json"]));
        assert_eq!(r.fs.allowed_extensions, list(&["jpg", "png", "json"]));
        let r = parse_ok(&with(&["-o", "ro,allowed_extensions=txt:json,debug"]));
        assert_eq!(r.fs.allowed_extensions, list(&["txt", "json"]));
        assert!(r.fs.read_only);
        for any in ["*", "any"] {
            let r = parse_ok(&with(&["--allowed-extensions", any]));
            assert_eq!(r.fs.allowed_extensions, None);
            let r = parse_ok(&with(&["-o", &format!("allowed_extensions={any}")]));
            assert_eq!(r.fs.allowed_extensions, None);
        }
        assert!(parse_err(&with(&["--allowed-extensions", " , "])).contains("empty"));
        assert!(parse_err(&with(&["-o", "allowed_extensions="])).contains("empty"));
    }

    #[test]
    fn generic_fstab_options_are_ignored() {
        let r = parse_ok(&with(&[
            "-o",
            "rw,defaults,_netdev,nofail,noauto,auto,user,users,nosuid,nodev,noatime",
            "-o",
            "x-systemd.automount,x-systemd.mount-timeout=30,comment=x-gvfs-show",
        ]));
        assert!(!r.fs.read_only);
        assert!(r.warnings.is_empty());
    }

    #[test]
    fn a_non_empty_mountpoint_is_allowed_by_flag_or_either_o_name() {
        assert!(parse_ok(&with(&["--allow-non-empty"])).allow_non_empty);
        for name in ["nonempty", "allow_non_empty", "allow-non-empty"] {
            assert!(parse_ok(&with(&["-o", name])).allow_non_empty, "{name}");
        }
        assert!(parse_err(&with(&["-o", "nonempty=1"])).contains("takes no value"));
    }

    #[test]
    fn o_options_are_applied_after_long_options() {
        let r = parse_ok(&with(&["--uid=5", "-o", "uid=6"]));
        assert_eq!(r.fs.uid, 6);
    }

    #[test]
    fn unknown_or_malformed_o_options_are_clear_errors() {
        assert!(parse_err(&with(&["-o", "bogus"])).contains("unknown mount option \"bogus\""));
        assert!(parse_err(&with(&["-o", "uid"])).contains("needs a value"));
        assert!(parse_err(&with(&["-o", "ro=1"])).contains("takes no value"));
        assert!(parse_err(&with(&["-o", "umask=999"])).contains("umask"));
        assert!(parse_err(&with(&["-o", "dir_cache_time=soon"])).contains("dir_cache_time"));
        assert!(parse_err(&with(&["-o", "delete_mode=shred"])).contains("trash or permanent"));
        assert!(parse_err(&with(&["-o", "server_timezone=Mars/Base"])).contains("time zone"));
        assert!(parse_err(&with(&["-o", "max_threads=0"])).contains("max_threads"));
    }

    #[test]
    fn a_key_given_as_option_is_refused_without_echoing_it() {
        let message = parse_err(&with(&["-o", "api_key=SECRETVALUE42"]));
        assert!(message.contains(API_KEY_ENV), "{message}");
        assert!(!message.contains("SECRETVALUE42"), "{message}");
        let message = parse_err(&with(&["-o", "apikeyx=SECRETVALUE42"]));
        assert!(!message.contains("SECRETVALUE42"), "{message}");
    }

    #[test]
    fn sloppy_flag_turns_unknown_options_into_warnings() {
        let r = parse_ok(&with(&["-s", "-o", "bogus,ro"]));
        assert!(r.fs.read_only);
        assert_eq!(r.warnings.len(), 1);
    }

    #[test]
    fn bad_long_option_values_are_refused() {
        parse_err(&with(&["--umask=8"]));
        parse_err(&with(&["--rate-limit=0"]));
        parse_err(&with(&["--dir-cache-time=forever"]));
        parse_err(&with(&["--server-timezone=Nowhere"]));
        parse_err(&with(&["--delete-mode=maybe"]));
        parse_err(&with(&["--api-key=abc"]));
    }

    #[test]
    fn mount_helper_convention_is_accepted_and_runs_in_background() {
        let r = parse_ok(&[
            "/sbin/mount.cloudify-fs",
            "https://media.example.com/api/v1",
            "/mnt/m",
            "-n",
            "-o",
            "rw,_netdev,ro",
            "-t",
            "fuse.cloudify-fs",
        ]);
        assert!(r.daemon && r.fs.read_only);
        assert_eq!(r.url, "https://media.example.com/api/v1");

        let r = parse_ok(&[
            "cloudify-fs",
            "http://127.0.0.1:8080",
            "/mnt/m",
            "-o",
            "foreground",
        ]);
        assert!(!r.daemon);
        let r = parse_ok(&["cloudify-fs", "http://127.0.0.1:8080", "/mnt/m", "-f"]);
        assert!(r.fake && r.daemon);
    }

    #[test]
    fn url_credentials_are_stripped_and_bad_urls_refused() {
        let r = parse_ok(&[
            "cloudify-fs",
            "mount",
            "https://bob:pw@media.example.com/",
            "/m",
        ]);
        assert_eq!(r.url, "https://media.example.com");
        assert_eq!(r.mount.fs_name, "https://media.example.com");
        assert_eq!(r.warnings.len(), 1);

        let message = parse_err(&["cloudify-fs", "mount", "ftp://x.example", "/m"]);
        assert!(message.contains("scheme"), "{message}");
        let message = parse_err(&["cloudify-fs", "mount", "https://bob:pw@", "/m"]);
        assert!(!message.contains("pw"), "{message}");
        parse_err(&["cloudify-fs", "mount", "media.example.com", "/m"]);
    }

    #[test]
    fn key_comes_from_the_file_first_line_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        std::fs::write(&path, "  ABCDEF0123  \nsecond line\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(
            read_api_key(Some(&path), None).unwrap().expose(),
            "ABCDEF0123"
        );

        std::fs::write(&path, "\n").unwrap();
        assert!(
            read_api_key(Some(&path), None)
                .unwrap_err()
                .contains("empty")
        );
        std::fs::write(&path, "has space\n").unwrap();
        let message = read_api_key(Some(&path), None).unwrap_err();
        assert!(!message.contains("has space"), "{message}");
        let missing = dir.path().join("missing");
        assert!(
            read_api_key(Some(&missing), None)
                .unwrap_err()
                .contains("cannot read")
        );
    }

    #[test]
    fn api_key_debug_output_is_redacted() {
        let key = ApiKey("SECRET".to_string());
        assert!(!format!("{key:?}").contains("SECRET"));
    }

    #[test]
    fn umask_accepts_common_octal_spellings() {
        assert_eq!(parse_umask("022"), Ok(0o022));
        assert_eq!(parse_umask("0022"), Ok(0o022));
        assert_eq!(parse_umask("0o77"), Ok(0o077));
        assert!(parse_umask("1000").is_err());
        assert!(parse_umask("abc").is_err());
    }
}
