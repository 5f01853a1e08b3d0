//! Parallel read-ahead for large sequential reads.
//!
//! One HTTP connection is bounded by the round trip before its first byte and, on real
//! networks and storage, by a per-connection speed well below the link's. So once a reader
//! has shown that it streams a file from start to end, [`Prefetcher`] fetches the next
//! [`DEPTH`] chunks of [`CHUNK_SIZE`] at once, each with its own ranged GET on its own
//! background thread, and hands their bytes out in file order. A chunk's thread starts as
//! soon as the chunk before the window is consumed, so a fixed number of GETs is in flight
//! while the reader copies bytes to the kernel. Memory is bounded by `DEPTH * CHUNK_SIZE`,
//! whatever the file's size.
//!
//! Each chunk's thread resumes a broken or short body from the byte where it broke, up to
//! [`RESUMES`](super::RESUMES) times; a chunk that still fails is reported to the reader
//! ([`Failure`]), which falls back to its single stream. A server that ignores Range is
//! reported as such and never gets a second prefetcher. Dropping a [`Prefetcher`] (a seek,
//! the file's close) raises a flag that its threads check before each request, so abandoned
//! chunks cost at most the request in progress.

use std::collections::VecDeque;
use std::io::Read;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::{Condvar, Mutex};

use super::RESUMES;
use crate::api::{File, Remote};

/// Bytes per background GET. Large enough that a request's round trip is a small part of
/// its time on a distant server; small enough that `DEPTH` of them stay far below the
/// mount's memory budget.
pub const CHUNK_SIZE: u64 = 4 * 1024 * 1024;
/// Chunks fetched or waiting at once (the one being consumed included).
pub const DEPTH: usize = 4;

/// Why the prefetcher stopped.
#[derive(Debug)]
pub enum Failure {
    /// The server sent the whole file where a range was asked.
    RangeIgnored,
    /// A chunk could not be fetched after its resumes.
    Failed { offset: u64, message: String },
}

enum State {
    Loading,
    Done(Vec<u8>),
    RangeIgnored,
    Failed(String),
}

/// One chunk `[start, end)`; `state` is set once by its thread, which then notifies `ready`.
struct Chunk {
    start: u64,
    end: u64,
    state: Mutex<State>,
    ready: Condvar,
}

/// Chunks of one file fetched ahead of its reader. Owned by one reader; only the chunks'
/// states are shared with the threads, each under its own mutex.
pub struct Prefetcher {
    remote: Arc<dyn Remote>,
    file: File,
    size: u64,
    /// Chunks in file order; the front one is being consumed.
    chunks: VecDeque<Arc<Chunk>>,
    /// Start of the next chunk to schedule.
    next: u64,
    /// Bytes of the front chunk already handed out.
    taken: usize,
    /// Buffers of consumed chunks, for the next ones: allocated by the reader's thread and
    /// reused, so memory stays at `DEPTH` buffers (the allocator keeps per-thread arenas,
    /// and buffers allocated by short-lived threads would be kept in theirs).
    spare: Vec<Vec<u8>>,
    /// Raised on drop: threads stop before their next request.
    cancel: Arc<AtomicBool>,
    /// GETs made by the threads.
    requests: Arc<AtomicU64>,
}

impl Prefetcher {
    /// Starts fetching `file` (of `size` bytes) from `offset` on.
    pub fn start(remote: Arc<dyn Remote>, file: File, offset: u64, size: u64) -> Prefetcher {
        let mut p = Prefetcher {
            remote,
            file,
            size,
            chunks: VecDeque::new(),
            next: offset,
            taken: 0,
            spare: Vec::new(),
            cancel: Arc::new(AtomicBool::new(false)),
            requests: Arc::new(AtomicU64::new(0)),
        };
        p.top_up();
        p
    }

    /// GETs made so far.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Schedules chunks until `DEPTH` are fetched or waiting, or the file is covered.
    fn top_up(&mut self) {
        while self.chunks.len() < DEPTH && self.next < self.size {
            let end = (self.next + CHUNK_SIZE).min(self.size);
            let chunk = Arc::new(Chunk {
                start: self.next,
                end,
                state: Mutex::new(State::Loading),
                ready: Condvar::new(),
            });
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.clear();
            buf.reserve_exact((end - chunk.start) as usize);
            self.spawn(chunk.clone(), buf);
            self.chunks.push_back(chunk);
            self.next = end;
        }
    }

    fn spawn(&self, chunk: Arc<Chunk>, buf: Vec<u8>) {
        let remote = self.remote.clone();
        let file = self.file.clone();
        let cancel = self.cancel.clone();
        let requests = self.requests.clone();
        let job = chunk.clone();
        let spawned = std::thread::Builder::new()
            .name("cloudify-prefetch".to_string())
            .spawn(move || {
                let state = catch_unwind(AssertUnwindSafe(|| {
                    fetch(&*remote, &file, &job, buf, &cancel, &requests)
                }))
                .unwrap_or_else(|_| State::Failed("download thread panicked".to_string()));
                finish(&job, state);
            });
        if let Err(e) = spawned {
            finish(&chunk, State::Failed(format!("cannot start a thread: {e}")));
        }
    }

    /// Moves up to `max` of the next bytes to the end of `out`, waiting for their chunk.
    /// Ok(0) at the end of the file.
    pub fn take(&mut self, max: usize, out: &mut VecDeque<u8>) -> Result<usize, Failure> {
        let Some(chunk) = self.chunks.front().cloned() else {
            return Ok(0);
        };
        let mut state = chunk.state.lock();
        chunk
            .ready
            .wait_while(&mut state, |s| matches!(s, State::Loading));
        let n = match &*state {
            State::Loading => 0,
            State::Done(data) => {
                let n = max.min(data.len() - self.taken);
                out.extend(&data[self.taken..self.taken + n]);
                n
            }
            State::RangeIgnored => return Err(Failure::RangeIgnored),
            State::Failed(message) => {
                return Err(Failure::Failed {
                    offset: chunk.start,
                    message: message.clone(),
                });
            }
        };
        self.taken += n;
        if self.taken as u64 == chunk.end - chunk.start {
            if let State::Done(data) = std::mem::replace(&mut *state, State::Loading) {
                self.spare.push(data);
            }
            drop(state);
            self.chunks.pop_front();
            self.taken = 0;
            self.top_up();
        }
        Ok(n)
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

fn finish(chunk: &Chunk, state: State) {
    *chunk.state.lock() = state;
    chunk.ready.notify_all();
}

/// Fetches one chunk, resuming a broken body from where it broke.
fn fetch(
    remote: &dyn Remote,
    file: &File,
    chunk: &Chunk,
    mut data: Vec<u8>,
    cancel: &AtomicBool,
    requests: &AtomicU64,
) -> State {
    let mut resumes = 0;
    loop {
        let at = chunk.start + data.len() as u64;
        if at == chunk.end {
            return State::Done(data);
        }
        if cancel.load(Ordering::Relaxed) {
            return State::Failed("cancelled".to_string());
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let cause = match remote.download(file, at, Some(chunk.end)) {
            // The client has retried already: a failed request is final.
            Err(e) => return State::Failed(e.to_string()),
            Ok(d) if d.start != at => return State::RangeIgnored,
            Ok(d) => {
                let want = (chunk.end - at) as usize;
                let before = data.len();
                match d.body.take(want as u64).read_to_end(&mut data) {
                    Ok(_) if data.len() - before == want => continue,
                    Ok(_) => "body ended early".to_string(),
                    Err(e) => e.to_string(),
                }
            }
        };
        if resumes >= RESUMES {
            return State::Failed(format!(
                "at byte {}: {cause}",
                chunk.start + data.len() as u64
            ));
        }
        resumes += 1;
        log::debug!(
            "file {}: chunk at {} broke at {} ({cause}), resuming",
            file.id,
            chunk.start,
            chunk.start + data.len() as u64
        );
    }
}
