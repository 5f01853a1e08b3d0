//! A real mount while the server misbehaves: failing and cut calls during a copy of many
//! files, a server that freezes, dies and comes back, rate limiting with and without
//! `Retry-After`, and a key revoked while mounted. What a user relies on: every file the copy
//! reported copied is stored intact, failures come back as errors within a bound, the mount
//! recovers by itself, and a refused key does not set off a storm of retries.

mod common;
#[path = "common/reliability.rs"]
mod reliability;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudify_fs::api::{Client, ClientConfig, Id, Remote};
use common::mount::{DEADLINE, MountCommand};
use common::{Api, TEST_KEY, wait_until};
use reliability::{Reply, Restartable, Scripted, errno, forward, text, within, write_file};
use serde_json::json;

/// An API client of the server at `origin`.
fn api(origin: &str) -> Api {
    Api {
        client: reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .expect("HTTP client"),
        base: format!("{origin}/api/v1/media"),
        key: Some(TEST_KEY.to_string()),
    }
}

/// Writes `folders` x `per_folder` small text files under `root`; returns relative path ->
/// bytes.
fn make_tree(root: &Path, folders: usize, per_folder: usize) -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    for d in 0..folders {
        let dir = format!("Dir{d}");
        std::fs::create_dir_all(root.join(&dir)).unwrap();
        for f in 0..per_folder {
            let seed = (d * 1000 + f) as u64;
            let rel = format!("{dir}/f{f:03}.txt");
            let data = text(seed, 200 + (seed as usize * 37) % 6000);
            std::fs::write(root.join(&rel), &data).unwrap();
            files.insert(rel, data);
        }
    }
    files
}

/// Copies every file of `src` into `dst` one `cp` at a time (folders made with `mkdir -p`,
/// tried three times) and returns the relative paths `cp` reported as copied.
fn copy_reporting_each(src: &Path, dst: &Path) -> Vec<String> {
    let script = r#"
        cd "$1" || exit 2
        for d in *; do
            mkdir -p "$2/$d" || mkdir -p "$2/$d" || mkdir -p "$2/$d" || continue
            for f in "$d"/*; do
                if cp "$f" "$2/$f"; then echo "COPIED $f"; fi
            done
        done
    "#;
    let (src, dst) = (src.to_path_buf(), dst.to_path_buf());
    let (output, took) = within(Duration::from_secs(900), move || {
        Command::new("sh")
            .arg("-c")
            .arg(script)
            .arg("sh")
            .arg(src)
            .arg(dst)
            .output()
            .expect("run sh")
    })
    .expect("the copy hung for 15 minutes");
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprintln!("copy took {took:?}; {} cp errors", stderr.lines().count());
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("COPIED "))
        .map(str::to_string)
        .collect()
}

#[test]
fn cp_of_300_files_under_failing_and_cut_calls_stores_every_file_it_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    let files = make_tree(&src, 3, 100);
    let data = tmp.path().join("data");
    let mut faulty = Restartable::start(
        &data,
        &[
            "--fail-rate",
            "0.1",
            "--drop-rate",
            "0.02",
            "--fault-seed",
            "20260203",
        ],
    );
    let mut mount = MountCommand::new(&faulty.origin)
        .args(&["--rate-limit", "100000"])
        .mount();
    let started = Instant::now();
    let copied = copy_reporting_each(&src, mount.path());
    let took = started.elapsed();
    mount.unmount();
    let log = mount.log();
    assert!(!log.contains("panicked"), "{log}");
    faulty.kill();
    for line in log.lines().filter(|l| l.contains(" WARN ")).take(12) {
        eprintln!("  mount: {line}");
    }
    eprintln!(
        "{} of {} files reported copied in {took:?}",
        copied.len(),
        files.len()
    );
    // Retries absorb most faults; a copy where most files failed means retrying is broken.
    assert!(
        copied.len() > files.len() / 2,
        "only {} of {} copied; mount log:\n{log}",
        copied.len(),
        files.len()
    );

    // What is stored, seen through a fresh mount of a well-behaved server on the same data.
    let clean = Restartable::start(&data, &[]);
    let check = MountCommand::new(&clean.origin).mount();
    let mut wrong = Vec::new();
    for rel in &copied {
        match std::fs::read(check.path().join(rel)) {
            Ok(got) if got == files[rel] => {}
            Ok(got) => wrong.push(format!(
                "{rel}: {} bytes, not {}",
                got.len(),
                files[rel].len()
            )),
            Err(e) => wrong.push(format!("{rel}: {e}")),
        }
    }
    // A copy that failed may still arrive (its content stays staged and is stored later),
    // but whatever is stored is whole, and under its own name only.
    let mut late = 0;
    for (rel, data) in &files {
        if copied.contains(rel) {
            continue;
        }
        if let Ok(got) = std::fs::read(check.path().join(rel)) {
            late += 1;
            if got != *data {
                wrong.push(format!(
                    "{rel} (cp failed): {} bytes, not {}",
                    got.len(),
                    data.len()
                ));
            }
        }
    }
    eprintln!("{late} files failed in cp but are stored all the same");
    for d in 0..3 {
        for entry in std::fs::read_dir(check.path().join(format!("Dir{d}"))).unwrap() {
            let rel = format!("Dir{d}/{}", entry.unwrap().file_name().to_string_lossy());
            if !files.contains_key(&rel) {
                wrong.push(format!("{rel}: a second copy under another name"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "files cp reported copied are not stored intact:\n{}\nmount log:\n{log}",
        wrong.join("\n")
    );
}

/// Runs `op` with a hang limit and returns its result and how long it took.
fn timed<T: Send + 'static>(what: &str, op: impl FnOnce() -> T + Send + 'static) -> (T, Duration) {
    within(Duration::from_secs(180), op).unwrap_or_else(|| panic!("{what} hung for 3 minutes"))
}

fn statfs_answers(path: &Path) -> bool {
    Command::new("df")
        .arg(path)
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn a_frozen_then_dead_server_gives_eio_in_bounded_time_and_the_mount_recovers() {
    let tmp = tempfile::tempdir().unwrap();
    let mut server = Restartable::start(&tmp.path().join("data"), &[]);
    let remote = api(&server.origin);
    let cached = remote.mkdir("0", "Cached");
    let later = remote.mkdir("0", "Later");
    remote.mkdir("0", "Scratch");
    remote.put_file(cached["id"].as_str(), "c1.txt", b"cached one\n");
    remote.put_file(later["id"].as_str(), "l1.txt", b"later one\n");

    // Small timeout and retries, and a listing TTL that has passed by the time the server
    // is gone, so the cached folder is served stale rather than fresh.
    let (timeout, retries) = (Duration::from_secs(2), 1u32);
    let mount = MountCommand::new(&server.origin)
        .args(&[
            "--timeout",
            "2s",
            "--retries",
            "1",
            "--dir-cache-time",
            "1s",
            "--rate-limit",
            "100000",
        ])
        .mount();
    let root = mount.path().to_path_buf();
    let names = |dir: &Path| -> std::io::Result<Vec<String>> {
        let mut v: Vec<String> = std::fs::read_dir(dir)?
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect::<Result<_, _>>()?;
        v.sort();
        Ok(v)
    };
    assert_eq!(names(&root).unwrap(), ["Cached", "Later", "Scratch"]);
    assert_eq!(names(&root.join("Cached")).unwrap(), ["c1.txt"]);
    // Changes go to a folder of their own, which must stay listable after they failed.
    assert!(names(&root.join("Scratch")).unwrap().is_empty());

    // One API call gives up after (retries + 1) timeouts and the backoff between them; an
    // operation makes a few calls (lookup, listing, upload). Twelve calls' worth plus slack
    // for a loaded machine is the bound; the measured times are printed.
    let per_call = timeout * (retries + 1) + Duration::from_millis(400);
    let bound = per_call * 12 + Duration::from_secs(10);
    let expect_eio = |what: &str, result: std::io::Result<()>, took: Duration| {
        eprintln!("{what}: {result:?} after {took:?} (bound {bound:?})");
        let e = result.expect_err(what);
        assert_eq!(errno(&e), libc::EIO, "{what}: {e}");
        assert!(took < bound, "{what} took {took:?}, over {bound:?}");
    };

    for phase in ["frozen", "dead"] {
        if phase == "frozen" {
            server.signal(libc::SIGSTOP);
        } else {
            server.kill();
        }
        std::thread::sleep(Duration::from_millis(1100)); // past the listing TTL
        let r = root.clone();
        let (result, took) = timed("listing an unread folder", move || {
            std::fs::read_dir(r.join("Later")).map(|_| ())
        });
        expect_eio(&format!("{phase}: ls Later"), result, took);
        let r = root.clone();
        let (result, took) = timed("writing a new file", move || {
            write_file(&r.join(format!("Scratch/new-{phase}.txt")), b"not stored\n")
        });
        expect_eio(&format!("{phase}: write new file"), result, took);
        let r = root.clone();
        let (result, took) = timed("mkdir", move || std::fs::create_dir(r.join("Scratch/Made")));
        expect_eio(&format!("{phase}: mkdir"), result, took);
        let r = root.clone();
        let (listed, took) = timed("ls of the folder the failed changes were in", move || {
            names(&r.join("Scratch"))
        });
        eprintln!("{phase}: ls Scratch: {listed:?} after {took:?}");
        listed.unwrap_or_else(|e| panic!("{phase}: ls Scratch after failed changes: {e}"));

        let r = root.clone();
        let (listed, took) = timed("ls of a cached folder", move || names(&r.join("Cached")));
        eprintln!("{phase}: ls Cached: {listed:?} after {took:?}");
        assert_eq!(
            listed.expect("ls of a cached folder"),
            ["c1.txt"],
            "{phase}"
        );
        let r = root.clone();
        let (answered, took) = timed("df", move || statfs_answers(&r));
        eprintln!("{phase}: df answered: {answered} after {took:?}");
        assert!(answered, "{phase}: df failed; log:\n{}", mount.log());
    }

    // Back on the same port and data: everything works again without remounting.
    server.restart();
    let later_path = root.join("Later/l1.txt");
    wait_until(
        "the mount to reach the server again",
        DEADLINE * 2,
        || mount.log(),
        || std::fs::read(&later_path).is_ok_and(|b| b == b"later one\n"),
    );
    std::fs::create_dir(root.join("Made")).expect("mkdir after recovery");
    write_file(&root.join("Made/after.txt"), b"stored after recovery\n")
        .expect("write after recovery");
    let stored = remote.get("/files");
    assert_eq!(stored.0, 200);
    let (_, folders) = remote.get("/folders");
    let made = folders["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "Made")
        .unwrap_or_else(|| panic!("Made not on the server: {folders}"))
        .clone();
    let (_, in_made) = remote.get(&format!(
        "/files?folder_id={}",
        made["id"].as_str().unwrap()
    ));
    assert_eq!(in_made["data"][0]["name"], "after", "{in_made}");
    let log = mount.log();
    assert!(!log.contains("panicked"), "{log}");
}

/// A proxy in front of `upstream` that allows `per_window` API calls in each window of
/// `window` and answers the others 429 in Cloudify's envelope, with `Retry-After` (whole
/// seconds to the end of the window) when `retry_after` is set. Returns the proxy and the
/// count of 429 answers.
fn throttling_proxy(
    upstream: &str,
    per_window: u32,
    window: Duration,
    retry_after: bool,
) -> (Scripted, Arc<AtomicU64>) {
    let upstream = upstream.to_string();
    let refused = Arc::new(AtomicU64::new(0));
    let refused2 = refused.clone();
    let state = Mutex::new((Instant::now(), 0u32));
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    let proxy = Scripted::start(move |seen| {
        if seen.path().starts_with("/api/") {
            let mut s = state.lock().unwrap();
            if s.0.elapsed() >= window {
                *s = (Instant::now(), 0);
            }
            s.1 += 1;
            if s.1 > per_window {
                refused2.fetch_add(1, Ordering::SeqCst);
                let left = window.saturating_sub(s.0.elapsed());
                let reply = Reply::json(
                    429,
                    &json!({"error": true, "data": null, "message": "Too Many Attempts."}),
                );
                return if retry_after {
                    let secs = left.as_secs() + u64::from(left.subsec_nanos() > 0);
                    reply.header("Retry-After", &secs.to_string())
                } else {
                    reply
                };
            }
        }
        forward(&client, &upstream, seen)
    });
    (proxy, refused)
}

fn rate_limited_work_completes(retry_after: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let server = Restartable::start(&tmp.path().join("data"), &[]);
    // Four API calls every two seconds, far below what the mount would send on its own.
    let (proxy, refused) = throttling_proxy(&server.origin, 4, Duration::from_secs(2), retry_after);
    let mut mount = MountCommand::new(&proxy.origin)
        .args(&["--rate-limit", "100000"])
        .mount();
    let root = mount.path().to_path_buf();
    let files: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("Work/r{i:02}.txt"), text(500 + i, 3000)))
        .collect();
    let started = Instant::now();
    std::fs::create_dir(root.join("Work")).expect("mkdir under rate limiting");
    for (rel, data) in &files {
        write_file(&root.join(rel), data)
            .unwrap_or_else(|e| panic!("{rel}: {e}; log:\n{}", mount.log()));
    }
    let took = started.elapsed();
    let count = refused.load(Ordering::SeqCst);
    eprintln!("retry_after={retry_after}: 13 changes in {took:?}, {count} answers of 429");
    assert!(
        count > 0,
        "the proxy never throttled, so nothing was tested"
    );
    mount.unmount();

    // Everything arrived, seen straight from the server.
    let check = MountCommand::new(&server.origin).mount();
    for (rel, data) in &files {
        assert_eq!(
            &std::fs::read(check.path().join(rel)).unwrap(),
            data,
            "{rel}"
        );
    }
}

#[test]
fn rate_limited_without_retry_after_the_mount_backs_off_and_completes() {
    rate_limited_work_completes(false);
}

#[test]
fn rate_limited_with_retry_after_the_mount_waits_and_completes() {
    rate_limited_work_completes(true);
}

#[test]
fn a_throttled_call_without_retry_after_outlasts_its_retries() {
    // Five refusals in a row, then the answer: more than `retries` allows, but within the
    // minute Cloudify's throttle window lasts.
    let calls = Arc::new(AtomicU64::new(0));
    let counter = calls.clone();
    let server = Scripted::start(move |_| {
        if counter.fetch_add(1, Ordering::SeqCst) < 5 {
            Reply::json(
                429,
                &json!({"error": true, "message": "Too Many Attempts."}),
            )
        } else {
            Reply::ok(json!({"id": "x", "name": "X"}))
        }
    });
    let mut config = ClientConfig::new(&server.origin, TEST_KEY);
    config.retries = 2;
    config.rate_per_minute = None;
    let client = Client::new(config).unwrap();
    let folder = client
        .get_folder(&Id::new("x"))
        .expect("the call outlasts the throttle");
    assert_eq!(folder.name, "X");
    assert_eq!(calls.load(Ordering::SeqCst), 6);
}

/// The issue's case with the server's own throttle (fixed one-minute windows, so it takes
/// minutes), behind `CLOUDIFY_LONG_TESTS=1`.
#[test]
fn server_rate_limit_slows_a_copy_that_then_completes() {
    if std::env::var("CLOUDIFY_LONG_TESTS").as_deref() != Ok("1") {
        eprintln!("skipped; set CLOUDIFY_LONG_TESTS=1 to run");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let server = Restartable::start(&tmp.path().join("data"), &["--rate-limit", "20"]);
    // The mount allows itself more than the server does, so 429s come.
    let mount = MountCommand::new(&server.origin)
        .args(&["--rate-limit", "120", "--retries", "8"])
        .mount();
    let started = Instant::now();
    for i in 0..40 {
        let rel = format!("s{i:02}.txt");
        write_file(&mount.path().join(&rel), &text(900 + i, 1000))
            .unwrap_or_else(|e| panic!("{rel}: {e}; log:\n{}", mount.log()));
    }
    eprintln!(
        "40 uploads at 20 calls a minute took {:?}",
        started.elapsed()
    );
}

#[test]
fn a_revoked_key_gives_eacces_a_clear_log_line_and_no_retry_storm() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Restartable::start(&tmp.path().join("data"), &[]);
    let remote = api(&server.origin);
    for name in ["One", "Two", "Three"] {
        remote.mkdir("0", name);
    }
    let mount = MountCommand::new(&server.origin)
        .args(&["--dir-cache-time", "1s", "--rate-limit", "100000"])
        .mount();
    let root = mount.path().to_path_buf();
    write_file(&root.join("before.txt"), b"stored before\n").unwrap();

    let control = reqwest::blocking::Client::new();
    let revoke = control
        .post(format!("{}/_server/control", server.origin))
        .json(&json!({"revoke_key": TEST_KEY}))
        .send()
        .unwrap();
    assert!(revoke.status().is_success());
    control
        .post(format!("{}/_server/stats/reset", server.origin))
        .send()
        .unwrap();

    let mut operations = 0u64;
    for name in ["One", "Two", "Three"] {
        operations += 1;
        let e = std::fs::read_dir(root.join(name))
            .map(|_| ())
            .expect_err("listing with a revoked key");
        assert_eq!(errno(&e), libc::EACCES, "ls {name}: {e}");
    }
    operations += 1;
    let e = write_file(&root.join("after.txt"), b"refused\n").expect_err("upload");
    assert_eq!(errno(&e), libc::EACCES, "write: {e}");
    operations += 1;
    let e = std::fs::create_dir(root.join("Refused")).expect_err("mkdir");
    assert_eq!(errno(&e), libc::EACCES, "mkdir: {e}");

    // Each operation may make a call or two (a lookup's listing, then the operation), none
    // repeated: a refused key is not a passing failure.
    let calls = server.stats()["api"]["total"].as_u64().unwrap();
    eprintln!("{operations} operations with a revoked key made {calls} API calls");
    assert!(
        calls <= operations * 2,
        "{calls} API calls for {operations} operations: retried a refused key"
    );
    // And nothing keeps trying in the background.
    std::thread::sleep(Duration::from_secs(3));
    let idle = server.stats()["api"]["total"].as_u64().unwrap() - calls;
    assert_eq!(idle, 0, "{idle} API calls while idle with a revoked key");

    let log = mount.log();
    assert!(
        log.lines()
            .any(|l| l.contains(" WARN ") && l.contains("key refused")),
        "no clear log line for the refused key:\n{log}"
    );
    assert!(!log.contains(TEST_KEY), "the key is in the log");
}
