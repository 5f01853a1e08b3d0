//! `cloudify-server`: a local server speaking the Cloudify media API, for the quick start
//! and for tests. This file only turns the command line into a `ServerConfig`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cloudify_fs::server::config::{
    self, AuthStatus, FaultConfig, Flavor, KeySpec, ServerConfig, parse_duration,
    parse_probability, parse_rate, parse_size,
};

/// A local Cloudify-compatible media server: the Cloudify REST API (with the real product's
/// quirks), file bytes at `full_url`/`indirect_url`, metadata in SQLite and bytes in a blob
/// folder under --data. Prints `listening on http://ADDR` on standard output once ready; logs
/// (one `access:` line per request) go to standard error (filter with RUST_LOG).
#[derive(Parser, Debug)]
#[command(name = "cloudify-server", version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// Data folder: cloudify.sqlite3 plus blobs/; everything survives a restart.
    #[arg(long, value_name = "DIR")]
    data: PathBuf,

    /// API key, `KEY` (all eleven abilities) or `KEY=ability,ability...`; repeatable. Keys
    /// match case-insensitively. Prefer --keys-file: command lines are visible to other users.
    #[arg(long = "key", value_name = "KEY[=ABILITIES]", value_parser = parse_key)]
    keys: Vec<KeySpec>,

    /// File with one `KEY[=ABILITIES]` a line (# comments allowed).
    #[arg(long, value_name = "FILE")]
    keys_file: Option<PathBuf>,

    /// Which Cloudify to imitate: 2026 (page/per_page, include_files) or 1.2.8 (no pagination).
    #[arg(long, value_name = "2026|1.2.8", default_value = "2026")]
    flavor: Flavor,

    /// Load this local tree as folders and files at start, through the upload path (skipped
    /// when the library already holds anything).
    #[arg(long, value_name = "DIR")]
    import: Option<PathBuf>,

    /// Origin used in full_url and indirect_url [default: http://<listen address>].
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,

    /// Larger uploads get HTTP 200 `error: true` "File is too big" (sizes like 64Mi, 2G).
    #[arg(long, value_name = "SIZE", default_value = "2Gi", value_parser = parse_size)]
    max_upload: u64,

    /// Request bodies above this get 413 [default: twice --max-upload].
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    max_body: Option<u64>,

    /// Comma-separated extensions an upload may have, by name and by content
    /// [default: Cloudify 1.2.8's list].
    #[arg(long, value_name = "LIST")]
    allowed_extensions: Option<String>,

    /// API requests a minute per client address; 429 beyond it [default: unlimited].
    #[arg(long, value_name = "N")]
    rate_limit: Option<u32>,

    /// Status of a refused key: 403 (the product) or 401 (the 2025 reference).
    #[arg(long, value_name = "403|401", default_value = "403", value_parser = parse_auth_status)]
    auth_status: AuthStatus,

    /// Time zone of the API's naive dates (IANA name).
    #[arg(long, value_name = "ZONE", default_value = "UTC")]
    time_zone: chrono_tz::Tz,

    /// Enable POST /_server/control (run-time fault switches for tests).
    #[arg(long)]
    test_control: bool,

    /// No `access:` line per request.
    #[arg(long)]
    no_access_log: bool,

    /// Fault: delay every API answer and download by this long (200ms, 2s).
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Faults")]
    latency: Option<std::time::Duration>,

    /// Fault: answer 500 or 503 to this share of API calls (0.1 or 10%).
    #[arg(long, value_name = "P", value_parser = parse_probability, help_heading = "Faults")]
    fail_rate: Option<f64>,

    /// Fault: cut the connection in the middle of this share of upload and download bodies.
    #[arg(long, value_name = "P", value_parser = parse_probability, help_heading = "Faults")]
    drop_rate: Option<f64>,

    /// Fault: stop sending every download body halfway for this long.
    #[arg(long, value_name = "DUR", value_parser = parse_duration, help_heading = "Faults")]
    stall: Option<std::time::Duration>,

    /// Fault: cap each upload and download at this many bytes a second (512Ki, 2Mi/s).
    #[arg(long, value_name = "RATE", value_parser = parse_rate, help_heading = "Faults")]
    bandwidth: Option<u64>,

    /// Fault: every upload fails with a storage error (HTTP 200, `error: true`).
    #[arg(long, help_heading = "Faults")]
    fail_uploads: bool,

    /// Seed of the fault dice; the same seed repeats the same faults for the same requests.
    #[arg(long, value_name = "N", default_value_t = 0, help_heading = "Faults")]
    fault_seed: u64,
}

fn parse_key(s: &str) -> Result<KeySpec, String> {
    s.parse()
}

fn parse_auth_status(s: &str) -> Result<AuthStatus, String> {
    match s {
        "403" => Ok(AuthStatus::Forbidden403),
        "401" => Ok(AuthStatus::Unauthorized401),
        _ => Err(format!("expected 403 or 401, not {s:?}")),
    }
}

fn to_config(args: Args) -> Result<ServerConfig, String> {
    let mut cfg = ServerConfig::new(args.listen, args.data);
    cfg.keys = args.keys;
    if let Some(file) = &args.keys_file {
        cfg.keys.extend(config::read_keys_file(file)?);
    }
    cfg.flavor = args.flavor;
    cfg.import = args.import;
    cfg.public_url = args.public_url;
    cfg.max_upload = args.max_upload;
    cfg.max_body = args
        .max_body
        .unwrap_or_else(|| args.max_upload.saturating_mul(2).max(1 << 20));
    if let Some(list) = &args.allowed_extensions {
        cfg.allowed_extensions = config::parse_extensions(list);
    }
    cfg.rate_limit = args.rate_limit;
    cfg.auth_status = args.auth_status;
    cfg.time_zone = args.time_zone;
    cfg.test_control = args.test_control;
    cfg.access_log = !args.no_access_log;
    cfg.faults = FaultConfig {
        latency: args.latency.unwrap_or_default(),
        fail_rate: args.fail_rate.unwrap_or(0.0),
        drop_rate: args.drop_rate.unwrap_or(0.0),
        stall: args.stall.unwrap_or_default(),
        bandwidth: args.bandwidth.unwrap_or(0),
        fail_uploads: args.fail_uploads,
        seed: args.fault_seed,
    };
    Ok(cfg)
}

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cfg = match to_config(Args::parse()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cloudify-server: {e}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cloudify-server: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cloudify_fs::server::run(cfg)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cloudify-server: {e}");
            ExitCode::FAILURE
        }
    }
}
