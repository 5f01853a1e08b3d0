//! Shared helpers of the integration tests: a `cloudify-server` on a free loopback port in a
//! temporary data folder, stopped when the guard drops (also when a test panics).
#![allow(dead_code)]

pub mod mount;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The key every test server accepts with all abilities.
pub const TEST_KEY: &str = "TESTKEY0123456789ABCDEF0123456789ABCDEF01";

/// A running `cloudify-server`. Dropping it kills the process.
pub struct TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub origin: String,
    /// `http://127.0.0.1:PORT/api/v1`
    pub api: String,
    pub data_dir: PathBuf,
    pub stderr_log: PathBuf,
    _tmp: Option<tempfile::TempDir>,
}

/// Options for [`TestServer::start`]; `args` are passed to the server as they are.
#[derive(Default, Clone)]
pub struct ServerOptions {
    /// Data folder to use; a fresh temporary one when `None`.
    pub data_dir: Option<PathBuf>,
    pub args: Vec<String>,
    /// Do not add `--key TEST_KEY` (the test passes its own `--key` options).
    pub no_default_key: bool,
}

impl ServerOptions {
    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I, S>(mut self, a: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(a.into_iter().map(Into::into));
        self
    }

    pub fn data_dir(mut self, dir: &Path) -> Self {
        self.data_dir = Some(dir.to_path_buf());
        self
    }
}

pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloudify-server")
}

impl TestServer {
    pub fn start(opts: ServerOptions) -> TestServer {
        let (tmp, data_dir) = match &opts.data_dir {
            Some(d) => (None, d.clone()),
            None => {
                let t = tempfile::tempdir().expect("temp dir");
                let d = t.path().join("data");
                (Some(t), d)
            }
        };
        std::fs::create_dir_all(&data_dir).expect("data dir");
        let stderr_log = data_dir
            .parent()
            .unwrap_or(&data_dir)
            .join(format!("server-{}.log", std::process::id()));
        let log = std::fs::File::create(&stderr_log).expect("log file");

        let mut cmd = Command::new(server_bin());
        cmd.arg("--listen").arg("127.0.0.1:0").arg("--data").arg(&data_dir);
        if !opts.no_default_key {
            cmd.arg("--key").arg(TEST_KEY);
        }
        cmd.args(&opts.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log));
        let mut child = cmd.spawn().expect("start cloudify-server");

        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            // Keep draining so the server never blocks on a full pipe.
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let log = std::fs::read_to_string(&stderr_log).unwrap_or_default();
                panic!("cloudify-server did not report its address; stderr:\n{log}");
            }
        };
        let origin = line
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line from server: {line:?}"))
            .trim()
            .to_string();
        TestServer {
            child,
            api: format!("{origin}/api/v1"),
            origin,
            data_dir,
            stderr_log,
            _tmp: tmp,
        }
    }

    /// A default server (flavour 2026) with an empty library.
    pub fn default_server() -> TestServer {
        TestServer::start(ServerOptions::default())
    }

    /// The server's own request counters (`GET /_server/stats`), as JSON.
    pub fn stats(&self) -> serde_json::Value {
        let body = reqwest::blocking::get(format!("{}/_server/stats", self.origin))
            .and_then(|r| r.text())
            .expect("stats");
        serde_json::from_str(&body).expect("stats JSON")
    }

    /// The server's standard error so far (its request log).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.stderr_log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
    }
}
