//! Helpers of the reliability tests (`tests/reliability_*.rs`): a `cloudify-server` that can
//! be stopped and started again on the same port and data folder, a tiny scripted HTTP/1.1
//! server (canned answers, or a forwarding proxy that adds faults of its own), a watchdog for
//! operations that must not hang, and small file helpers.
//!
//! Included with `#[path = "common/reliability.rs"] mod reliability;` next to `mod common;`.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{TEST_KEY, server_bin};

/// A `cloudify-server` on a fixed loopback port, which can be killed, frozen and started
/// again on the same port and data folder. Dropping it kills the process.
pub struct Restartable {
    child: Option<Child>,
    pub port: u16,
    pub origin: String,
    pub data_dir: PathBuf,
    args: Vec<String>,
    log_path: PathBuf,
}

impl Restartable {
    /// Starts a server on a free port with `args` (the test key and `--test-control` are
    /// always given).
    pub fn start(data_dir: &Path, args: &[&str]) -> Restartable {
        let mut server = Restartable {
            child: None,
            port: 0,
            origin: String::new(),
            data_dir: data_dir.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
            log_path: data_dir.with_extension("server.log"),
        };
        server.launch();
        server
    }

    /// Starts the server again (same port, data and arguments) after [`Restartable::kill`].
    /// The port may still be held briefly by the old socket, so binding is retried.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        let start = Instant::now();
        loop {
            match self.try_launch() {
                Ok(()) => return,
                Err(e) if start.elapsed() < Duration::from_secs(30) => {
                    eprintln!("restart on port {}: {e}; retrying", self.port);
                    thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("server did not restart on port {}: {e}", self.port),
            }
        }
    }

    fn launch(&mut self) {
        if let Err(e) = self.try_launch() {
            panic!("cloudify-server did not start: {e}");
        }
    }

    fn try_launch(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.data_dir).expect("data dir");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("server log");
        let mut child = Command::new(server_bin())
            .arg("--listen")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--data")
            .arg(&self.data_dir)
            .arg("--test-control")
            .arg("--key")
            .arg(TEST_KEY)
            .args(&self.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start cloudify-server");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("no address reported; log:\n{}", self.log()));
            }
        };
        let origin = line
            .strip_prefix("listening on ")
            .ok_or_else(|| format!("unexpected first line {line:?}"))?
            .trim()
            .to_string();
        self.port = origin
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| format!("no port in {origin:?}"))?;
        self.origin = origin;
        self.child = Some(child);
        Ok(())
    }

    /// Kills the server (SIGKILL) and waits for it; the port then refuses connections.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Sends `signal` (SIGSTOP freezes the server: connections are accepted by the kernel
    /// but never answered).
    pub fn signal(&self, signal: i32) {
        let pid = self.child.as_ref().expect("running").id() as libc::pid_t;
        // SAFETY: kill takes plain integers; the pid is our own child, not yet reaped.
        assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill {pid}");
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// `GET /_server/stats` as JSON.
    pub fn stats(&self) -> serde_json::Value {
        let body = reqwest::blocking::get(format!("{}/_server/stats", self.origin))
            .and_then(|r| r.text())
            .expect("stats");
        serde_json::from_str(&body).expect("stats JSON")
    }
}

impl Drop for Restartable {
    fn drop(&mut self) {
        if let Some(child) = &self.child {
            // A frozen server must be woken to die promptly.
            // SAFETY: plain integers; our own child.
            unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGCONT) };
        }
        self.kill();
    }
}

pub use crate::common::http::Seen;
use crate::common::http::read_request;

/// What the scripted server sends back.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, body: &serde_json::Value) -> Reply {
        Reply::raw(status, "application/json", body.to_string().as_bytes())
    }

    /// Cloudify's success envelope around `data`.
    pub fn ok(data: serde_json::Value) -> Reply {
        Reply::json(
            200,
            &serde_json::json!({"error": false, "data": data, "message": null}),
        )
    }

    pub fn raw(status: u16, content_type: &str, body: &[u8]) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), content_type.into())],
            body: body.to_vec(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

type Handler = dyn Fn(&Seen) -> Reply + Send + Sync;

/// A loopback HTTP/1.1 server answering from a closure and recording every request. Stops
/// accepting when dropped.
pub struct Scripted {
    pub origin: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    port: u16,
}

impl Scripted {
    pub fn start(handler: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        let (seen2, stop2) = (seen.clone(), stop.clone());
        thread::spawn(move || {
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (handler, seen) = (handler.clone(), seen2.clone());
                thread::spawn(move || serve(stream, &*handler, &seen));
            }
        });
        Scripted {
            origin: format!("http://127.0.0.1:{port}"),
            seen,
            stop,
            port,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(stream: TcpStream, handler: &Handler, seen: &Mutex<Vec<Seen>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(120)));
    let mut writer = stream.try_clone().expect("clone stream");
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader) {
        seen.lock().expect("seen").push(request.clone());
        let reply = handler(&request);
        let mut head = format!("HTTP/1.1 {} Scripted\r\n", reply.status);
        for (name, value) in &reply.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", reply.body.len()));
        let body: &[u8] = if request.method == "HEAD" {
            &[]
        } else {
            &reply.body
        };
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body).is_err() {
            return;
        }
        let _ = writer.flush();
    }
}

/// Sends `request` on to `upstream` (an origin) and returns its answer as a [`Reply`]; a
/// failure to reach it is a 502.
pub fn forward(client: &reqwest::blocking::Client, upstream: &str, request: &Seen) -> Reply {
    let method = reqwest::Method::from_bytes(request.method.as_bytes()).expect("method");
    let mut builder = client.request(method, format!("{upstream}{}", request.target));
    for (name, value) in &request.headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            builder = builder.header(name, value);
        }
    }
    let response = match builder.body(request.body.clone()).send() {
        Ok(r) => r,
        Err(e) => return Reply::raw(502, "text/plain", e.to_string().as_bytes()),
    };
    let status = response.status().as_u16();
    let mut headers = Vec::new();
    for (name, value) in response.headers() {
        if !matches!(
            name.as_str(),
            "content-length" | "connection" | "transfer-encoding" | "keep-alive"
        ) {
            headers.push((
                name.to_string(),
                value.to_str().unwrap_or_default().to_string(),
            ));
        }
    }
    let body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// Runs `op` on its own thread and returns its result, or `None` when it took longer than
/// `limit` (the thread is left to finish by itself; the caller fails the test).
pub fn within<T: Send + 'static>(
    limit: Duration,
    op: impl FnOnce() -> T + Send + 'static,
) -> Option<(T, Duration)> {
    let (tx, rx) = std::sync::mpsc::channel();
    let start = Instant::now();
    thread::spawn(move || {
        let value = op();
        let _ = tx.send((value, start.elapsed()));
    });
    rx.recv_timeout(limit).ok()
}

/// `len` bytes of printable text that differ with `seed` (the server sniffs content, so
/// `.txt` files must look like text).
pub fn text(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 64 == 63 {
                b'\n'
            } else {
                b'a' + (x % 26) as u8
            }
        })
        .collect()
}

/// The errno of an I/O error, for messages and asserts.
pub fn errno(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Resident memory of process `pid` in bytes (`VmRSS` of /proc/PID/status), 0 when gone.
pub fn rss(pid: u32) -> u64 {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return 0;
    };
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// Writes `data` to a new or truncated file and closes it, reporting the close's error as
/// `cp` does: the mount uploads at close, and `std::fs::write` ignores what close returns.
pub fn write_file(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::os::fd::IntoRawFd;
    let mut file = std::fs::File::create(path)?;
    file.write_all(data)?;
    let fd = file.into_raw_fd();
    // SAFETY: `fd` was just taken out of the File, so it is open and closed only here.
    if unsafe { libc::close(fd) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
