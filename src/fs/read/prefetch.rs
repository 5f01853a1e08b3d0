//! Parallel read-ahead for large sequential reads.
//!
//! One HTTP connection is bounded by the round trip before its first byte and, on real
//! networks and storage, by a per-connection speed well below the link's. So once a reader
//! has shown that it streams a file from start to end, [`Prefetcher`] fetches the next
//! [`DEPTH`] chunks of [`CHUNK_SIZE`] at once, each with its own ranged GET on its own
//! background thread, and hands their bytes out in file order. A chunk's thread starts as
//! soon as the chunk before the window is consumed, so a fixed number of GETs is in flight
//! while the reader copies bytes to the kernel. Reads are served straight from the chunks;
//! the chunk before the reader's is kept for the kernel's slightly out-of-order reads, so
//! memory is bounded by `(DEPTH + 1) * CHUNK_SIZE`, whatever the file's size.
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

use bytes::Bytes;
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
    /// The chunk's bytes; reads hand out slices of them without copying.
    Done(Bytes),
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
    /// End of the last read served.
    pos: u64,
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
            pos: offset,
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
        self.top_up_ahead(self.chunks.len());
    }

    /// Schedules chunks until `DEPTH` are at or ahead of the reader, of which `ahead` are
    /// scheduled already.
    fn top_up_ahead(&mut self, mut ahead: usize) {
        while ahead < DEPTH && self.next < self.size {
            ahead += 1;
            let end = (self.next + CHUNK_SIZE).min(self.size);
            let chunk = Arc::new(Chunk {
                start: self.next,
                end,
                state: Mutex::new(State::Loading),
                ready: Condvar::new(),
            });
            // Sized here, so that the zeroing of a new buffer happens once and a reused
            // one is written over as it is.
            let mut buf = self.spare.pop().unwrap_or_default();
            buf.resize((end - chunk.start) as usize, 0);
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

    /// Where the bytes this prefetcher still holds start: one chunk is kept behind the
    /// reader for the kernel's slightly out-of-order reads.
    pub fn kept_start(&self) -> u64 {
        self.chunks.front().map_or(self.next, |c| c.start)
    }

    /// End of the last read served: reads up to a few MiB past it are served by waiting.
    pub fn pos(&self) -> u64 {
        self.pos
    }

    /// Up to `len` bytes at `offset` (at least [`kept_start`](Self::kept_start)), waiting
    /// for their chunk; empty when the chunks do not cover `offset`.
    pub fn read_at(&mut self, offset: u64, len: u64) -> Result<Bytes, Failure> {
        // Recycle the chunks more than one behind the one holding `offset`.
        while self.chunks.len() > 1 && self.chunks[1].end <= offset {
            let old = self.chunks.pop_front();
            if let Some(State::Done(data)) =
                old.map(|c| std::mem::replace(&mut *c.state.lock(), State::Loading))
                // A buffer still referenced by a read on its way to the kernel is left to
                // that read, which frees it.
                && let Ok(data) = data.try_into_mut()
            {
                self.spare.push(data.into());
            }
        }
        let ahead = self.chunks.iter().filter(|c| c.end > offset).count();
        self.top_up_ahead(ahead);
        let Some(chunk) = self
            .chunks
            .iter()
            .find(|c| c.start <= offset && offset < c.end)
        else {
            return Ok(Bytes::new());
        };
        let chunk = chunk.clone();
        let mut state = chunk.state.lock();
        chunk
            .ready
            .wait_while(&mut state, |s| matches!(s, State::Loading));
        match &*state {
            State::Loading => Ok(Bytes::new()),
            State::Done(data) => {
                let from = (offset - chunk.start) as usize;
                let to = (from as u64 + len).min(chunk.end - chunk.start) as usize;
                self.pos = self.pos.max(chunk.start + to as u64);
                Ok(data.slice(from..to))
            }
            State::RangeIgnored => Err(Failure::RangeIgnored),
            State::Failed(message) => Err(Failure::Failed {
                offset: chunk.start,
                message: message.clone(),
            }),
        }
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

/// Fetches one chunk into `data` (sized to the chunk), resuming a broken body from where
/// it broke.
fn fetch(
    remote: &dyn Remote,
    file: &File,
    chunk: &Chunk,
    mut data: Vec<u8>,
    cancel: &AtomicBool,
    requests: &AtomicU64,
) -> State {
    let mut resumes = 0;
    let mut filled = 0;
    loop {
        let at = chunk.start + filled as u64;
        if at == chunk.end {
            return State::Done(data.into());
        }
        if cancel.load(Ordering::Relaxed) {
            return State::Failed("cancelled".to_string());
        }
        requests.fetch_add(1, Ordering::Relaxed);
        let cause = match remote.download(file, at, Some(chunk.end)) {
            // The client has retried already: a failed request is final.
            Err(e) => return State::Failed(e.to_string()),
            Ok(d) if d.start != at => return State::RangeIgnored,
            Ok(mut d) => match read_full(&mut d.body, &mut data[filled..], &mut filled) {
                Ok(()) => {
                    // The body's end, so its connection is reused.
                    let _ = d.body.read(&mut [0u8; 1]);
                    continue;
                }
                Err(cause) => cause,
            },
        };
        let at = chunk.start + filled as u64;
        if resumes >= RESUMES {
            return State::Failed(format!("at byte {at}: {cause}"));
        }
        resumes += 1;
        log::debug!(
            "file {}: chunk at {} broke at {at} ({cause}), resuming",
            file.id,
            chunk.start
        );
    }
}

/// Fills `buf` from `body`, counting the bytes in `filled`; the error says why it stopped
/// short.
fn read_full(body: &mut dyn Read, buf: &mut [u8], filled: &mut usize) -> Result<(), String> {
    let mut at = 0;
    while at < buf.len() {
        match body.read(&mut buf[at..]) {
            Ok(0) => return Err("body ended early".to_string()),
            Ok(n) => {
                at += n;
                *filled += n;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.to_string()),
        }
    }
    Ok(())
}
