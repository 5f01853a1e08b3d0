//! Load on a real mount: 8 threads of mixed reads, writes, listings, renames and deletes
//! against a server with latency and failing calls, for 30 s (3 minutes with
//! `CLOUDIFY_LONG_TESTS=1`). A watchdog fails the test when an operation hangs; afterwards
//! the mount must not have panicked, its memory must have stayed bounded, and the library
//! must hold exactly what the operations that succeeded say it holds.

mod common;
#[path = "common/reliability.rs"]
mod reliability;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::mount::MountGuard;
use common::{ServerOptions, TestServer};
use reliability::{rss, text, write_file};
use serde_json::json;

const THREADS: usize = 8;
/// An operation running longer than this is a hang.
const HANG: Duration = Duration::from_secs(60);
/// The mount's resident memory may not pass this (a debug build, 8 busy threads).
const RSS_LIMIT: u64 = 512 << 20;

/// What a thread knows of one of its file names.
#[derive(Clone, Debug, PartialEq)]
enum State {
    /// Stored with these bytes (the writing call succeeded).
    Has(Vec<u8>),
    /// Removed (the delete or the rename away succeeded).
    Gone,
    /// A call on it failed: it may or may not be there, with old or new content.
    Unknown,
}

/// A small xorshift generator per thread, so each thread's mix repeats.
struct Dice(u64);

impl Dice {
    fn next(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// Counts of what happened, for the report.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
}

struct Worker {
    id: usize,
    dir: PathBuf,
    shared: PathBuf,
    shared_files: Vec<Vec<u8>>,
    files: BTreeMap<String, State>,
    dice: Dice,
    next_name: u64,
    /// Wrong bytes or wrong listings seen; the test fails on any.
    errors: Vec<String>,
}

impl Worker {
    fn known(&mut self) -> Option<(String, Vec<u8>)> {
        let known: Vec<(&String, &Vec<u8>)> = self
            .files
            .iter()
            .filter_map(|(n, s)| match s {
                State::Has(b) => Some((n, b)),
                _ => None,
            })
            .collect();
        if known.is_empty() {
            return None;
        }
        let (n, b) = known[self.dice.next(known.len() as u64) as usize];
        Some((n.clone(), b.clone()))
    }

    fn fresh_name(&mut self, prefix: &str) -> String {
        self.next_name += 1;
        format!("{prefix}{:04}.txt", self.next_name)
    }

    /// One operation; returns its name and whether it succeeded.
    fn step(&mut self, tally: &Tally) -> &'static str {
        let roll = self.dice.next(100);
        let (what, ok) = match roll {
            0..=29 => {
                let name = self.fresh_name("w");
                let seed = ((self.id as u64) << 32) | self.next_name;
                let data = text(seed, 300 + (seed as usize * 131) % 30_000);
                let ok = write_file(&self.dir.join(&name), &data).is_ok();
                let state = if ok { State::Has(data) } else { State::Unknown };
                self.files.insert(name, state);
                ("write", ok)
            }
            30..=49 => match self.known() {
                Some((name, data)) => match std::fs::read(self.dir.join(&name)) {
                    Ok(got) => {
                        if got != data {
                            self.errors.push(format!(
                                "T{}/{name}: read {} bytes, not the {} written",
                                self.id,
                                got.len(),
                                data.len()
                            ));
                        }
                        ("read", true)
                    }
                    Err(_) => ("read", false),
                },
                None => ("read", true),
            },
            50..=59 => {
                let k = self.dice.next(self.shared_files.len() as u64) as usize;
                match std::fs::read(self.shared.join(format!("s{k}.txt"))) {
                    Ok(got) => {
                        if got != self.shared_files[k] {
                            self.errors.push(format!("Shared/s{k}.txt: wrong bytes"));
                        }
                        ("read shared", true)
                    }
                    Err(_) => ("read shared", false),
                }
            }
            60..=74 => match std::fs::read_dir(&self.dir).and_then(|d| {
                d.map(|e| e.map(|e| e.file_name()))
                    .collect::<Result<Vec<_>, _>>()
            }) {
                Ok(names) => {
                    let listed: Vec<String> = names
                        .iter()
                        .map(|n| n.to_string_lossy().into_owned())
                        .collect();
                    for (name, state) in &self.files {
                        let shown = listed.contains(name);
                        if matches!(state, State::Has(_)) && !shown {
                            self.errors
                                .push(format!("T{}: ls misses {name}, stored", self.id));
                        }
                        if *state == State::Gone && shown {
                            self.errors
                                .push(format!("T{}: ls shows {name}, removed", self.id));
                        }
                    }
                    for name in &listed {
                        if !self.files.contains_key(name) {
                            self.errors
                                .push(format!("T{}: ls shows {name}, never made", self.id));
                        }
                    }
                    ("list", true)
                }
                Err(_) => ("list", false),
            },
            75..=87 => match self.known() {
                Some((from, data)) => {
                    let to = self.fresh_name("r");
                    let ok = std::fs::rename(self.dir.join(&from), self.dir.join(&to)).is_ok();
                    if ok {
                        self.files.insert(from, State::Gone);
                        self.files.insert(to, State::Has(data));
                    } else {
                        self.files.insert(from, State::Unknown);
                        self.files.insert(to, State::Unknown);
                    }
                    ("rename", ok)
                }
                None => ("rename", true),
            },
            _ => match self.known() {
                Some((name, _)) => {
                    let ok = std::fs::remove_file(self.dir.join(&name)).is_ok();
                    let state = if ok { State::Gone } else { State::Unknown };
                    self.files.insert(name, state);
                    ("delete", ok)
                }
                None => ("delete", true),
            },
        };
        let counter = if ok { &tally.ok } else { &tally.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        what
    }
}

/// Per thread: the operation running and since when.
type Running = Arc<Vec<Mutex<Option<(Instant, &'static str)>>>>;

#[test]
fn eight_threads_of_mixed_work_under_faults() {
    let long = std::env::var("CLOUDIFY_LONG_TESTS").as_deref() == Ok("1");
    let run_for = Duration::from_secs(if long { 180 } else { 30 });
    let server = TestServer::start(ServerOptions::default().args([
        "--latency",
        "20ms",
        "--fail-rate",
        "0.03",
        "--fault-seed",
        "11",
    ]));
    let api = server.client();
    let shared_id = api.mkdir("0", "Shared")["id"].as_str().unwrap().to_string();
    // Set up without faults, so the starting state is certain.
    server.control(json!({"fail_rate": 0.0}));
    let shared_files: Vec<Vec<u8>> = (0..6).map(|k| text(7000 + k, 40_000)).collect();
    for (k, data) in shared_files.iter().enumerate() {
        api.put_file(Some(&shared_id), &format!("s{k}.txt"), data);
    }
    let mut mount = MountGuard::mount(
        &server,
        &["--rate-limit", "100000", "--dir-cache-time", "5s"],
    );
    let root = mount.path().to_path_buf();
    for t in 0..THREADS {
        std::fs::create_dir(root.join(format!("T{t}"))).unwrap();
    }
    server.control(json!({"fail_rate": 0.03}));

    let tally = Arc::new(Tally::default());
    let running: Running = Arc::new((0..THREADS).map(|_| Mutex::new(None)).collect());
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let workers: Vec<_> = (0..THREADS)
        .map(|id| {
            let mut w = Worker {
                id,
                dir: root.join(format!("T{id}")),
                shared: root.join("Shared"),
                shared_files: shared_files.clone(),
                files: BTreeMap::new(),
                dice: Dice(0x9E37_79B9 ^ ((id as u64 + 1) * 0x1234_5678_9ABC)),
                next_name: 0,
                errors: Vec::new(),
            };
            let (tally, running, stop) = (tally.clone(), running.clone(), stop.clone());
            std::thread::spawn(move || {
                while started.elapsed() < run_for && !stop.load(Ordering::Relaxed) {
                    *running[id].lock().unwrap() = Some((Instant::now(), "starting"));
                    w.step(&tally);
                    *running[id].lock().unwrap() = None;
                }
                w
            })
        })
        .collect();

    // The watchdog: hung operations and memory, checked every half second until all end.
    let mut max_rss = 0;
    let hang = loop {
        max_rss = max_rss.max(rss(mount.pid()));
        let hung = running.iter().enumerate().find_map(|(id, r)| {
            r.lock()
                .unwrap()
                .filter(|(since, _)| since.elapsed() > HANG)
                .map(|(since, _)| {
                    format!(
                        "thread {id}: an operation running for {:?}",
                        since.elapsed()
                    )
                })
        });
        if hung.is_some() || workers.iter().all(|w| w.is_finished()) {
            break hung;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    if let Some(hang) = hang {
        stop.store(true, Ordering::Relaxed);
        panic!("{hang}; mount log:\n{}", mount.log());
    }
    let workers: Vec<Worker> = workers.into_iter().map(|w| w.join().unwrap()).collect();
    let (ok, failed) = (
        tally.ok.load(Ordering::Relaxed),
        tally.failed.load(Ordering::Relaxed),
    );
    eprintln!(
        "{ok} operations succeeded and {failed} failed in {:?}; mount RSS peaked at {} MiB",
        started.elapsed(),
        max_rss >> 20
    );

    // Faults off, then unmount: whatever is still staged gets stored.
    server.control(json!({"fail_rate": 0.0, "latency_ms": 0}));
    mount.unmount();
    let log = mount.log();
    assert!(!log.contains("panicked"), "the mount panicked:\n{log}");
    let errors: Vec<&String> = workers.iter().flat_map(|w| &w.errors).collect();
    assert!(errors.is_empty(), "wrong data during the run:\n{errors:#?}");
    assert!(
        max_rss < RSS_LIMIT,
        "mount RSS reached {} MiB",
        max_rss >> 20
    );
    assert!(
        ok > failed,
        "most operations should succeed ({ok} ok, {failed} failed)"
    );

    // The final state, through a fresh mount.
    let check = MountGuard::mount(&server, &[]);
    let mut wrong = Vec::new();
    for w in &workers {
        let dir = check.path().join(format!("T{}", w.id));
        for (name, state) in &w.files {
            let path: &Path = &dir.join(name);
            match state {
                State::Has(data) => match std::fs::read(path) {
                    Ok(got) if got == *data => {}
                    Ok(got) => wrong.push(format!("T{}/{name}: {} bytes", w.id, got.len())),
                    Err(e) => wrong.push(format!("T{}/{name}: {e}", w.id)),
                },
                State::Gone if path.exists() => {
                    wrong.push(format!("T{}/{name}: still there", w.id));
                }
                _ => {}
            }
        }
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if !w.files.contains_key(&name) {
                wrong.push(format!("T{}/{name}: never made", w.id));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the library differs from what succeeded:\n{wrong:#?}\nmount log:\n{log}"
    );
}
