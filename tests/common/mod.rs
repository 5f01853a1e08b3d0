//! Shared helpers of the integration tests: a `cloudify-server` on a free loopback port in a
//! temporary data folder, stopped when the guard drops (also when a test panics), and
//! [`wait_until`] for what happens in the background. The submodules hold real mounts
//! ([`mount`]), local test files ([`files`]), what the server holds ([`library`]) and
//! requests as a scripted HTTP server reads them ([`http`]).
#![allow(dead_code)]

pub mod files;
pub mod http;
pub mod library;
pub mod mount;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
        cmd.arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data")
            .arg(&data_dir);
        // Tests may flip faults at run time (`POST /_server/control`).
        cmd.arg("--test-control");
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

    /// Resets the request counters (`POST /_server/stats/reset`).
    pub fn reset_stats(&self) {
        reqwest::blocking::Client::new()
            .post(format!("{}/_server/stats/reset", self.origin))
            .send()
            .expect("stats reset");
    }

    /// Applies run-time switches (`POST /_server/control`), e.g. `{"fail_uploads": true}`.
    pub fn control(&self, switches: serde_json::Value) {
        let resp = reqwest::blocking::Client::new()
            .post(format!("{}/_server/control", self.origin))
            .json(&switches)
            .send()
            .expect("control");
        assert!(
            resp.status().is_success(),
            "control refused: {}",
            resp.status()
        );
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

/// A small API client for the server tests: every call sends `Accept: application/json` and
/// the key, and returns the status with the JSON body (`Value::Null` when it is not JSON).
pub struct Api {
    pub client: reqwest::blocking::Client,
    /// `http://127.0.0.1:PORT/api/v1/media`
    pub base: String,
    pub key: Option<String>,
}

impl TestServer {
    /// An API client with [`TEST_KEY`].
    pub fn client(&self) -> Api {
        self.client_with_key(Some(TEST_KEY))
    }

    pub fn client_with_key(&self, key: Option<&str>) -> Api {
        Api {
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(120))
                .build()
                .expect("HTTP client"),
            base: format!("{}/media", self.api),
            key: key.map(str::to_string),
        }
    }
}

impl Api {
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
    ) -> reqwest::blocking::RequestBuilder {
        let mut rb = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .header("Accept", "application/json");
        if let Some(k) = &self.key {
            rb = rb.header("X-API-KEY", k);
        }
        rb
    }

    pub fn send(&self, rb: reqwest::blocking::RequestBuilder) -> (u16, serde_json::Value) {
        let resp = rb.send().expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().expect("body");
        (
            status,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        )
    }

    pub fn get(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::GET, path))
    }

    pub fn post_json(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::POST, path).json(&body))
    }

    pub fn patch(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::PATCH, path))
    }

    pub fn delete(&self, path: &str) -> (u16, serde_json::Value) {
        self.send(self.request(reqwest::Method::DELETE, path))
    }

    /// Creates a folder and returns its JSON (`data`), asserting success.
    pub fn mkdir(&self, parent: &str, name: &str) -> serde_json::Value {
        let (status, body) = self.post_json(
            "/folders",
            serde_json::json!({"name": name, "parent_id": parent}),
        );
        assert_eq!(status, 200, "create folder {name:?}: {body}");
        assert_eq!(body["error"], false, "create folder {name:?}: {body}");
        body["data"].clone()
    }

    /// Uploads `bytes` as `filename` into `folder` (root when `None`).
    pub fn upload(
        &self,
        folder: Option<&str>,
        filename: &str,
        bytes: Vec<u8>,
    ) -> (u16, serde_json::Value) {
        let part = reqwest::blocking::multipart::Part::bytes(bytes).file_name(filename.to_string());
        let mut form = reqwest::blocking::multipart::Form::new().part("file", part);
        if let Some(f) = folder {
            form = form.text("folder_id", f.to_string());
        }
        self.send(
            self.request(reqwest::Method::POST, "/files")
                .multipart(form),
        )
    }

    /// Uploads and returns the file's JSON (`data`), asserting success.
    pub fn put_file(
        &self,
        folder: Option<&str>,
        filename: &str,
        bytes: &[u8],
    ) -> serde_json::Value {
        let (status, body) = self.upload(folder, filename, bytes.to_vec());
        assert_eq!(status, 200, "upload {filename:?}: {body}");
        assert_eq!(body["error"], false, "upload {filename:?}: {body}");
        body["data"].clone()
    }
}

/// Polls `cond` every 100 ms until it holds; panics with `what` and `log()` after `limit`.
pub fn wait_until(
    what: &str,
    limit: Duration,
    log: impl Fn() -> String,
    mut cond: impl FnMut() -> bool,
) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}; log:\n{}",
            log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}
