//! Real FUSE mounts of `cloudify-fs` in temporary folders, for integration tests.
//!
//! [`MountGuard::mount`] runs the built binary in the foreground as a child process and waits
//! until the kernel shows the mount; [`MountCommand`] builds other invocations (no key, a
//! closed port, extra environment) and can start them without waiting, for tests of the
//! checks that run before mounting. Dropping a guard always leaves the machine clean:
//! `fusermount3 -u`, then `fusermount3 -uz` if the mount is still there, then the process is
//! killed, so a failing test never leaves a mount or a process behind.
#![allow(dead_code)]

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{TEST_KEY, TestServer};

/// How long a mount may take to appear, and a process to exit; generous for a loaded
/// 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub fn fs_bin() -> &'static str {
    env!("CARGO_BIN_EXE_cloudify-fs")
}

/// One invocation of `cloudify-fs mount URL <temp dir> ARGS...`.
#[derive(Clone, Debug)]
pub struct MountCommand {
    url: String,
    args: Vec<String>,
    key: Option<String>,
    envs: Vec<(String, String)>,
    mountpoint: Option<PathBuf>,
}

impl MountCommand {
    /// Mounts `url` with `CLOUDIFY_API_KEY` set to [`TEST_KEY`].
    pub fn new(url: impl Into<String>) -> MountCommand {
        MountCommand {
            url: url.into(),
            args: Vec::new(),
            key: Some(TEST_KEY.to_string()),
            envs: Vec::new(),
            mountpoint: None,
        }
    }

    pub fn args<S: AsRef<str>>(mut self, args: &[S]) -> Self {
        self.args
            .extend(args.iter().map(|a| a.as_ref().to_string()));
        self
    }

    /// Sets `CLOUDIFY_API_KEY` to `key`, or leaves it unset with `None`.
    pub fn key(mut self, key: Option<&str>) -> Self {
        self.key = key.map(str::to_string);
        self
    }

    /// Mounts on `path` (an existing empty folder) instead of a new temporary one, so a tool
    /// that remembers paths (restic's parent snapshot) sees the same path after a remount.
    pub fn at(mut self, path: &Path) -> Self {
        self.mountpoint = Some(path.to_path_buf());
        self
    }

    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_string(), value.to_string()));
        self
    }

    /// Starts the process and waits until the mount is live; panics with the process's log
    /// when it exits first or the deadline passes.
    pub fn mount(self) -> MountGuard {
        let mut guard = self.start();
        guard.wait_mounted();
        guard
    }

    /// Starts the process without waiting for anything.
    pub fn start(self) -> MountGuard {
        let dir = tempfile::tempdir().expect("temp dir");
        let mountpoint = self.mountpoint.clone().unwrap_or_else(|| {
            let mountpoint = dir.path().join("mnt");
            std::fs::create_dir(&mountpoint).expect("mountpoint");
            mountpoint
        });
        // mountinfo shows canonical paths; compare like with like.
        let mountpoint = std::fs::canonicalize(&mountpoint).expect("mountpoint path");
        let log_path = dir.path().join("cloudify-fs.log");
        let log = File::create(&log_path).expect("log file");

        let mut cmd = Command::new(fs_bin());
        cmd.arg("mount")
            .arg(&self.url)
            .arg(&mountpoint)
            .args(&self.args);
        if !self.args.iter().any(|a| a.starts_with("--cache-dir")) {
            cmd.arg("--cache-dir").arg(dir.path().join("cache"));
        }
        cmd.env_remove("CLOUDIFY_API_KEY").env_remove("RUST_LOG");
        if let Some(key) = &self.key {
            cmd.env("CLOUDIFY_API_KEY", key);
        }
        cmd.envs(self.envs.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log.try_clone().expect("log file")))
            .stderr(Stdio::from(log));
        let child = cmd.spawn().expect("start cloudify-fs");
        MountGuard {
            child: Some(child),
            mountpoint,
            log_path,
            dir,
        }
    }
}

/// A `cloudify-fs mount` process and its mountpoint; see the module documentation.
pub struct MountGuard {
    child: Option<Child>,
    mountpoint: PathBuf,
    log_path: PathBuf,
    /// Holds the mountpoint, the cache folder and the log; removed last.
    dir: tempfile::TempDir,
}

impl MountGuard {
    /// Mounts `server` with `args` added to the command line and waits until it is live.
    pub fn mount(server: &TestServer, args: &[&str]) -> MountGuard {
        MountCommand::new(&server.origin).args(args).mount()
    }

    /// Starts a mount of `server` without waiting, for tests of failures before mounting.
    pub fn start(server: &TestServer, args: &[&str]) -> MountGuard {
        MountCommand::new(&server.origin).args(args).start()
    }

    /// The mountpoint.
    pub fn path(&self) -> &Path {
        &self.mountpoint
    }

    /// The temporary folder that holds the mountpoint, the cache and the log.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// What the process wrote to stdout and stderr so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    pub fn is_mounted(&self) -> bool {
        is_fuse_mount(&self.mountpoint)
    }

    /// Waits until the mountpoint is a FUSE mount; panics with the log when the process
    /// exits first or the deadline passes.
    pub fn wait_mounted(&mut self) {
        let start = Instant::now();
        while !self.is_mounted() {
            if let Some(status) = self.try_wait() {
                panic!(
                    "cloudify-fs exited with {status} before mounting; log:\n{}",
                    self.log()
                );
            }
            if start.elapsed() > DEADLINE {
                panic!("no mount after {DEADLINE:?}; log:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits for the process to exit (panics after the deadline) and returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            if start.elapsed() > DEADLINE {
                panic!(
                    "cloudify-fs still running after {DEADLINE:?}; log:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the process.
    pub fn signal(&self, signal: i32) {
        let pid = self.pid() as libc::pid_t;
        // SAFETY: kill takes plain integers; the pid is our own child, not yet reaped.
        if pid > 0 && unsafe { libc::kill(pid, signal) } != 0 {
            panic!("kill {pid}: {}", std::io::Error::last_os_error());
        }
    }

    /// Unmounts with `fusermount3 -u`, waits for the process to exit and returns its status.
    pub fn unmount(&mut self) -> ExitStatus {
        let output = Command::new("fusermount3")
            .arg("-u")
            .arg(&self.mountpoint)
            .output()
            .expect("run fusermount3");
        assert!(
            output.status.success(),
            "fusermount3 -u failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        self.wait_exit()
    }

    fn try_wait(&mut self) -> Option<ExitStatus> {
        self.child
            .as_mut()?
            .try_wait()
            .expect("wait for cloudify-fs")
    }
}

impl Drop for MountGuard {
    fn drop(&mut self) {
        if self.is_mounted() {
            let _ = fusermount(&["-u"], &self.mountpoint);
        }
        if self.is_mounted() {
            let _ = fusermount(&["-uz"], &self.mountpoint);
        }
        if let Some(mut child) = self.child.take() {
            // A clean unmount ends the process by itself; give it a moment before killing.
            let start = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn fusermount(flags: &[&str], path: &Path) -> std::io::Result<ExitStatus> {
    Command::new("fusermount3")
        .args(flags)
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}

/// Whether `path` is the mount point of a FUSE filesystem, per /proc/self/mountinfo.
pub fn is_fuse_mount(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    info.lines().any(|line| {
        let fields: Vec<&str> = line.split(' ').collect();
        let fs_type = line
            .split(" - ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next());
        fields
            .get(4)
            .is_some_and(|mp| Path::new(&unescape_mountinfo(mp)) == path)
            && fs_type.is_some_and(|t| t == "fuse" || t.starts_with("fuse."))
    })
}

/// mountinfo writes space, tab, newline and backslash as `\040`-style octal escapes.
fn unescape_mountinfo(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes.get(i + 1..i + 4).and_then(|d| {
            std::str::from_utf8(d)
                .ok()
                .and_then(|s| u8::from_str_radix(s, 8).ok())
        });
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}
