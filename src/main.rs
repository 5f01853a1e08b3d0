//! `cloudify-fs`: parses the command line, sets up logging, checks the server and the key
//! with one listing, mounts, and serves until SIGINT, SIGTERM, SIGHUP or an outside
//! `fusermount3 -u`.
//!
//! With `--daemon` (and in mount(8)'s helper convention) the process forks before doing any
//! work that starts threads: the parent waits on a pipe until the child reports that the
//! mount is live (exit 0) or why it failed (exit 1), so whoever ran the command learns the
//! outcome, and the child serves the mount detached from the terminal.

use std::fs::OpenOptions;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use cloudify_fs::api::{ApiError, Client, Id, Remote};
use cloudify_fs::cli::{self, ApiKey, LogSettings, MountRequest};
use cloudify_fs::fuse;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

/// The mount's buffers (read-ahead chunks, kernel replies, upload pieces) are allocated and
/// freed by whichever FUSE or worker thread handles a request. glibc gives threads arenas of
/// their own and keeps what is freed in each: streaming 1 GiB left the mount at 107 MiB
/// resident with the default arenas, 79-87 MiB with two and 49 MiB with one. Its threads
/// mostly wait for the network and the kernel, so one allocator lock costs little.
fn limit_malloc_arenas() {
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets an allocator parameter; called before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

fn main() -> ExitCode {
    // SAFETY: the first statement of `main`: no other thread exists yet (none is started
    // before `main`, and nothing here has started one), so nothing reads the environment
    // while the key is taken out of it.
    let env_key = unsafe { cli::take_api_key_env() };
    limit_malloc_arenas();
    let mut request = cli::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    if let Err(e) = init_logging(&request.log) {
        eprintln!("error: cannot open the log file: {e}");
        return ExitCode::FAILURE;
    }
    for warning in &request.warnings {
        log::warn!("{warning}");
    }

    let key = match prepare(&mut request, env_key) {
        Ok(key) => key,
        Err(message) => return failure(&request, &message, true),
    };
    let mut starter = if request.daemon {
        // Only the child returns; the parent exits with the child's verdict.
        match daemon::fork() {
            Ok(pipe) => Starter::Daemon(Some(pipe)),
            Err(e) => {
                let message = format!("cannot start in the background: {e}");
                return failure(&request, &message, true);
            }
        }
    } else {
        Starter::Foreground
    };
    match serve(&request, key, &mut starter) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            // A daemon child hands the message to the parent, which prints it.
            let on_terminal = matches!(starter, Starter::Foreground);
            starter.fail(&message);
            failure(&request, &message, on_terminal)
        }
    }
}

/// Reports a failure on the terminal and in the log file, once each.
fn failure(request: &MountRequest, message: &str, on_terminal: bool) -> ExitCode {
    if on_terminal {
        eprintln!("error: {message}");
    }
    if request.log.file.is_some() {
        log::error!("{message}");
    }
    ExitCode::FAILURE
}

/// Sends the log to stderr or `--log-file`: info by default, `-v` debug and `-vv` trace for
/// this crate; `RUST_LOG` directives are applied on top.
fn init_logging(settings: &LogSettings) -> io::Result<()> {
    let crate_level = match settings.verbosity {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(&format!("info,cloudify_fs={crate_level}"));
    if let Ok(spec) = std::env::var("RUST_LOG") {
        builder.parse_filters(&spec);
    }
    if let Some(path) = &settings.file {
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        builder
            .target(env_logger::Target::Pipe(Box::new(file)))
            .write_style(env_logger::WriteStyle::Never);
    }
    builder.init();
    Ok(())
}

/// The checks that need no server and no thread: the key, the mountpoint, and absolute paths
/// (a daemon changes its working folder to /).
fn prepare(
    request: &mut MountRequest,
    env_key: Option<std::ffi::OsString>,
) -> Result<ApiKey, String> {
    let key = cli::read_api_key(request.api_key_file.as_deref(), env_key)?;
    request.mount.mountpoint = check_mountpoint(&request.mount.mountpoint)?;
    if !request.allow_non_empty {
        check_empty(&request.mount.mountpoint)?;
    }
    request.fs.cache_dir = std::path::absolute(&request.fs.cache_dir)
        .map_err(|e| format!("cache folder {}: {e}", request.fs.cache_dir.display()))?;
    Ok(key)
}

/// The mountpoint must be an existing directory that is not already mounted; returns its
/// canonical path (the one /proc/mounts will show).
fn check_mountpoint(path: &Path) -> Result<PathBuf, String> {
    let shown = path.display();
    match std::fs::metadata(path) {
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => return Err(dead_mount(path, &e)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(format!(
                "mountpoint {shown} does not exist (create it with mkdir)"
            ));
        }
        Err(e) => return Err(format!("cannot use mountpoint {shown}: {e}")),
        Ok(meta) if !meta.is_dir() => {
            return Err(format!("mountpoint {shown} is not a directory"));
        }
        Ok(_) => {}
    }
    let canonical = std::fs::canonicalize(path).map_err(|e| format!("mountpoint {shown}: {e}"))?;
    if is_mount_point(&canonical) {
        // A dead FUSE mount can still answer `stat` from the kernel's attribute cache;
        // opening it needs its (gone) process, and says so.
        if let Err(e) = std::fs::read_dir(&canonical)
            && e.raw_os_error() == Some(libc::ENOTCONN)
        {
            return Err(dead_mount(path, &e));
        }
        return Err(format!(
            "{} is already a mount point; unmount it first (`fusermount3 -u {}`)",
            canonical.display(),
            canonical.display()
        ));
    }
    Ok(canonical)
}

/// The message for a mountpoint whose FUSE process has died (ENOTCONN).
fn dead_mount(path: &Path, e: &io::Error) -> String {
    let shown = path.display();
    format!(
        "{shown}: {e}: a previous mount there has died; clear it with \
         `fusermount3 -uz {shown}` and mount again"
    )
}

/// A mount hides what its mountpoint holds until it ends, which looks like lost files: an
/// occupied folder needs `--allow-non-empty`, as with sshfs and rclone.
fn check_empty(path: &Path) -> Result<(), String> {
    let shown = path.display();
    let mut entries =
        std::fs::read_dir(path).map_err(|e| format!("cannot read mountpoint {shown}: {e}"))?;
    let Some(entry) = entries.next() else {
        return Ok(());
    };
    let example = match entry {
        Ok(entry) => format!(" (it holds {:?})", entry.file_name()),
        Err(_) => String::new(),
    };
    Err(format!(
        "mountpoint {shown} is not empty{example}: the mount would hide its files until \
         unmount. Use an empty folder, or pass --allow-non-empty (-o nonempty) to mount over it"
    ))
}

/// Whether something is mounted at `path`, per /proc/self/mountinfo (field 5, with octal
/// escapes for spaces and the like).
fn is_mount_point(path: &Path) -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return false;
    };
    let wanted = path.as_os_str().as_encoded_bytes();
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .any(|field| unescape_mountinfo(field) == wanted)
}

fn unescape_mountinfo(field: &str) -> Vec<u8> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|d| u8::from_str_radix(d, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    out
}

/// Connects, checks, mounts, reports ready, and serves until the mount ends.
fn serve(request: &MountRequest, key: ApiKey, starter: &mut Starter) -> Result<(), String> {
    let client = Client::new(request.client_config(&key))
        .map_err(|e| format!("cannot set up the connection to {}: {e}", request.url))?;
    drop(key);
    preflight(&client, &request.url)?;
    if request.fake {
        log::info!("{} and the key work; not mounting (-f)", request.url);
        starter.ready();
        return Ok(());
    }

    // Registered before mounting so that a signal during the mount is not lost; handled
    // once the mount exists.
    let signals = Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| format!("cannot install signal handlers: {e}"))?;
    let mountpoint = request.mount.mountpoint.clone();
    let remote: Arc<dyn Remote> = Arc::new(client);
    let mounted = fuse::mount(request.fs.clone(), request.mount.clone(), remote)
        .map_err(|e| format!("cannot mount at {}: {e}", mountpoint.display()))?;

    log::info!("mounted {} at {}", request.url, mountpoint.display());
    starter.ready();
    spawn_signal_thread(signals, mountpoint.clone())?;
    mounted.wait();
    log::info!("unmounted {}", mountpoint.display());
    Ok(())
}

/// One root listing proves the URL points at a Cloudify API and the key may list folders.
fn preflight(client: &Client, url: &str) -> Result<(), String> {
    let error = match client.list_folder(&Id::root()) {
        Ok(_) => return Ok(()),
        Err(error) => error,
    };
    Err(match &error {
        ApiError::Network { .. } => format!("{url} is unreachable: {error}"),
        ApiError::NotFound { .. } | ApiError::Protocol { .. } => format!(
            "{url} does not look like a Cloudify API ({error}); give the site \
             (https://media.example.com) or its API base (.../api/v1)"
        ),
        ApiError::Unauthorized { .. } => format!(
            "the API key was refused by {url} ({error}); check the key and that it has the \
             list_media_folders ability"
        ),
        ApiError::RateLimited { .. } => {
            format!("{url} is rate limiting this client ({error}); try again in a minute")
        }
        ApiError::Server { .. } => format!("{url} answered with a server error: {error}"),
        ApiError::Invalid { .. }
        | ApiError::TypeNotAllowed { .. }
        | ApiError::TooLarge { .. }
        | ApiError::Refused { .. }
        | ApiError::Local { .. } => format!("checking {url} failed: {error}"),
    })
}

/// The first signal unmounts cleanly (which ends `Mounted::wait`); if the mount is busy, the
/// next one detaches it lazily; a third one exits at once.
fn spawn_signal_thread(mut signals: Signals, mountpoint: PathBuf) -> Result<(), String> {
    let handler = move || {
        for (count, signal) in signals.forever().enumerate() {
            let name = match signal {
                SIGINT => "SIGINT",
                SIGTERM => "SIGTERM",
                _ => "SIGHUP",
            };
            if count >= 2 {
                log::error!("{name} received again: exiting without a clean unmount");
                std::process::exit(1);
            }
            let lazy = count == 1;
            log::info!("{name} received: unmounting {}", mountpoint.display());
            match unmount(&mountpoint, lazy) {
                Err(e) if !lazy && is_busy(&e) => {
                    log::warn!(
                        "cannot unmount {}: {e}; unmounting as soon as nothing uses it (a copy \
                         in progress finishes first), or send the signal again to detach it \
                         lazily",
                        mountpoint.display()
                    );
                    retry_unmount(mountpoint.clone());
                }
                Err(e) => log::warn!(
                    "cannot unmount {}: {e}; close what uses it, or send the signal again to \
                     detach it lazily",
                    mountpoint.display()
                ),
                Ok(()) => {}
            }
        }
    };
    std::thread::Builder::new()
        .name("signals".to_string())
        .spawn(handler)
        .map(drop)
        .map_err(|e| format!("cannot start the signal thread: {e}"))
}

/// After a signal found the mount busy: tries the clean unmount again every half second, so
/// that a stop request waits for a copy in progress (its upload answers the close) instead
/// of being lost. Ends when the unmount succeeds or the mount is gone (a lazy detach).
fn retry_unmount(mountpoint: PathBuf) {
    let retry = move || {
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            match unmount(&mountpoint, false) {
                Err(e) if is_busy(&e) => continue,
                Ok(()) => log::info!("{} no longer busy: unmounted", mountpoint.display()),
                Err(e) => log::debug!("retried unmount of {}: {e}", mountpoint.display()),
            }
            return;
        }
    };
    if let Err(e) = std::thread::Builder::new()
        .name("unmount-retry".to_string())
        .spawn(retry)
    {
        log::warn!("cannot start the unmount retry: {e}");
    }
}

/// EBUSY from umount2, or fusermount3's message for it.
fn is_busy(e: &io::Error) -> bool {
    e.raw_os_error() == Some(libc::EBUSY) || e.to_string().contains("busy")
}

/// Unmounts from outside the FUSE session, as `fusermount3 -u` would: root calls umount2
/// directly (no helper binary needed), other users go through fusermount3.
fn unmount(mountpoint: &Path, lazy: bool) -> io::Result<()> {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        let path = std::ffi::CString::new(mountpoint.as_os_str().as_encoded_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in mountpoint"))?;
        let flags = if lazy { libc::MNT_DETACH } else { 0 };
        // SAFETY: `path` is a valid NUL-terminated string that outlives the call.
        return match unsafe { libc::umount2(path.as_ptr(), flags) } {
            0 => Ok(()),
            _ => Err(io::Error::last_os_error()),
        };
    }
    let output = std::process::Command::new("fusermount3")
        .arg(if lazy { "-uz" } else { "-u" })
        .arg(mountpoint)
        .output()?;
    if output.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        Err(io::Error::other(stderr.trim().to_string()))
    }
}

/// Tells whoever started the process how the mount went.
enum Starter {
    /// The terminal sees the log and the exit status directly.
    Foreground,
    /// The parent process waits on this pipe (taken once the verdict is sent).
    Daemon(Option<io::PipeWriter>),
}

impl Starter {
    /// The mount is live: release the parent and detach from the terminal.
    fn ready(&mut self) {
        if let Starter::Daemon(pipe) = self
            && let Some(mut pipe) = pipe.take()
        {
            let _ = pipe.write_all(daemon::READY);
            drop(pipe);
            if let Err(e) = daemon::detach_stdio() {
                log::warn!("cannot detach from the terminal: {e}");
            }
        }
    }

    /// Mounting failed: hand the message to the parent, which prints it.
    fn fail(&mut self, message: &str) {
        if let Starter::Daemon(pipe) = self
            && let Some(mut pipe) = pipe.take()
        {
            let _ = pipe.write_all(format!("error: {message}\n").as_bytes());
        }
    }
}

mod daemon {
    //! The fork behind `--daemon`.

    use super::*;

    /// What the child writes when the mount is live; anything else is an error message.
    pub const READY: &[u8] = b"ready\n";

    /// Forks. The child returns the write end of a pipe, in a new session; the parent
    /// waits for the child's verdict on that pipe and exits: 0 when it reads [`READY`], 1
    /// with the child's message (or exit status) otherwise.
    ///
    /// Must run while the process has a single thread: fork copies only the calling thread,
    /// so locks held by others (the allocator, reqwest's runtime) would stay locked forever.
    pub fn fork() -> io::Result<io::PipeWriter> {
        let (reader, writer) = io::pipe()?;
        // SAFETY: called before any thread is started (see above); both sides continue with
        // ordinary Rust code.
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => {
                drop(reader);
                // SAFETY: setsid takes no arguments; failure (already a group leader) is
                // harmless.
                unsafe { libc::setsid() };
                Ok(writer)
            }
            child => {
                drop(writer);
                std::process::exit(wait_for_child(reader, child))
            }
        }
    }

    fn wait_for_child(mut reader: io::PipeReader, child: libc::pid_t) -> i32 {
        let mut verdict = Vec::new();
        let _ = reader.read_to_end(&mut verdict);
        if verdict == READY {
            return 0;
        }
        if !verdict.is_empty() {
            eprint!("{}", String::from_utf8_lossy(&verdict));
            return 1;
        }
        let mut status = 0;
        // SAFETY: waits for our own child; `status` is a valid out pointer.
        unsafe { libc::waitpid(child, &mut status, 0) };
        eprintln!(
            "error: the background process ended (wait status {status}) before the mount was ready"
        );
        1
    }

    /// Points stdin, stdout and stderr at /dev/null and leaves the working folder, so the
    /// daemon holds no terminal and no folder busy. The log keeps going to `--log-file`.
    pub fn detach_stdio() -> io::Result<()> {
        let null = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&null);
        for target in 0..=2 {
            // SAFETY: both descriptors are open; dup2 replaces the target atomically.
            if unsafe { libc::dup2(fd, target) } == -1 {
                return Err(io::Error::last_os_error());
            }
        }
        std::env::set_current_dir("/")
    }
}
