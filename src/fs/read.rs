//! Open-for-read handles: a file's bytes streamed from its URL with ranged GETs.
//!
//! A handle keeps one download that moves forward with the reader. The first request asks
//! for a small window ([`INITIAL_WINDOW`], so `file`, thumbnailers and `head` cost little);
//! each time a window is read to its end and the reader is still sequential, the next
//! request asks for twice as much, up to [`MAX_WINDOW`]. A read elsewhere is a seek: it asks
//! for just the bytes it needs (a random 4 KiB read fetches 4 KiB, on a connection kept
//! alive), and only a read that continues there starts growing a window again.
//!
//! Once the window reaches [`PREFETCH_FROM`], the reader is streaming the file: the single
//! download gives way to [`prefetch::Prefetcher`], which keeps several ranged GETs of the
//! next chunks in flight on background threads, so a distant server's latency and
//! per-connection speed no longer bound the read. A seek drops it.
//!
//! The kernel sends read-ahead requests from several threads, so reads of one handle may
//! arrive slightly out of order. The handle therefore keeps the last bytes it streamed in a
//! buffer of at most [`BUFFER_MAX`]: a read a little behind the stream is served from it, a
//! read a little ahead ([`SKIP_MAX`]) reads forward through the stream. Memory per handle is
//! bounded by that buffer plus one copy chunk, whatever the file's size.
//!
//! A server that ignores Range (200 with the whole body where 206 was asked) is detected by
//! [`Download::start`]: the handle skips forward to the offset and, from then on, asks for
//! open-ended downloads so one response carries the whole sequential read. A body that
//! breaks or stalls (an I/O error, or an early end) is resumed with a new ranged GET from the
//! current offset up to [`RESUMES`] times per read; after that the read fails with EIO. Bytes
//! are never made up: a short body ends the read short only at the true end of the file.
//! A prefetched chunk that fails after its own resumes hands the read back to the single
//! stream, which tries again before the read fails.

mod prefetch;

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};

use super::error::FsError;
use crate::api::{File, Remote};
use prefetch::{Failure, Prefetcher};

/// First request of a handle, and of every new window after a seek.
pub const INITIAL_WINDOW: u64 = 128 * 1024;
/// The window stops doubling here.
pub const MAX_WINDOW: u64 = 16 * 1024 * 1024;
/// Bytes kept behind the stream for out-of-order reads.
pub const BUFFER_MAX: usize = 6 * 1024 * 1024;
/// A read at most this far ahead of the stream reads forward instead of seeking.
pub const SKIP_MAX: u64 = 4 * 1024 * 1024;
/// New GETs after a broken body, per read.
pub const RESUMES: u32 = 2;
/// A window this large means a sequential reader: parallel read-ahead takes over.
pub const PREFETCH_FROM: u64 = 2 * 1024 * 1024;

const CHUNK: usize = 256 * 1024;
/// A read is served in pieces of at most this size, so a piece plus a skip always fits the
/// buffer (FUSE fills a short answer with zeros, so a read may only be short at the end).
const PIECE: u64 = 1024 * 1024;

/// One running download.
struct Stream {
    body: Box<dyn Read + Send>,
    /// Offset of the next byte `body` yields.
    pos: u64,
    /// Exclusive end of the requested range; `None` for an open-ended request.
    end: Option<u64>,
}

/// The read state of one open file.
pub struct FileReader {
    remote: Arc<dyn Remote>,
    file: File,
    /// The exact size, when known; reads stop there.
    size: Option<u64>,
    stream: Option<Stream>,
    /// Parallel read-ahead, in place of `stream`, once the reader is sequential.
    prefetch: Option<Prefetcher>,
    /// Next window size; 0 right after a seek: just the bytes the read needs.
    window: u64,
    /// The server answered a ranged request with the whole file.
    ranges_ignored: bool,
    /// Bytes `[buf_start, buf_start + buf.len())`; its end is the stream's position.
    buf: VecDeque<u8>,
    buf_start: u64,
    /// Reused copy buffer between the body and `buf`; allocated at the first read.
    chunk: Vec<u8>,
    /// Requests made by this handle (for tests and debug logs).
    requests: u64,
}

impl FileReader {
    pub fn new(remote: Arc<dyn Remote>, file: File, size: Option<u64>) -> FileReader {
        FileReader {
            remote,
            file,
            size,
            stream: None,
            prefetch: None,
            window: INITIAL_WINDOW,
            ranges_ignored: false,
            buf: VecDeque::new(),
            buf_start: 0,
            chunk: Vec::new(),
            requests: 0,
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests + self.prefetch.as_ref().map_or(0, Prefetcher::requests)
    }

    fn buf_end(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    /// Up to `len` bytes at `offset`; fewer only at the end of the file. A read that one
    /// piece answers (the kernel's reads are at most a piece) hands that piece on as it is:
    /// bytes from the read-ahead are not copied on their way to the kernel.
    pub fn read(&mut self, offset: u64, len: u32) -> Result<Bytes, FsError> {
        let len = u64::from(len);
        let first = self.read_piece(offset, len.min(PIECE))?;
        if first.len() as u64 >= len || first.is_empty() {
            return Ok(first);
        }
        let mut out = BytesMut::from(&first[..]);
        while (out.len() as u64) < len {
            let at = offset + out.len() as u64;
            let piece = self.read_piece(at, (len - out.len() as u64).min(PIECE))?;
            if piece.is_empty() {
                break;
            }
            out.extend_from_slice(&piece);
        }
        Ok(out.freeze())
    }

    fn read_piece(&mut self, offset: u64, len: u64) -> Result<Bytes, FsError> {
        let mut want = len;
        if let Some(size) = self.size {
            want = want.min(size.saturating_sub(offset));
        }
        if want == 0 {
            return Ok(Bytes::new());
        }
        let low = match &self.prefetch {
            Some(p) => p.kept_start().min(self.buf_start),
            None => self.buf_start,
        };
        if offset < low || offset > self.reach() {
            self.restart(offset);
        }
        if offset < self.buf_end() {
            let n = want.min(self.buf_end() - offset);
            return Ok(self.copy_out(offset, n));
        }
        if let Some(bytes) = self.read_prefetched(offset, want) {
            return Ok(bytes);
        }
        self.fill_to(offset + want)?;
        if self.buf_end() < offset + want
            && let Some(bytes) = self.read_prefetched(offset, want)
        {
            // The fill handed over to read-ahead.
            return Ok(bytes);
        }
        Ok(self.copy_out(offset, want))
    }

    /// Bytes at `offset` from the read-ahead, if it runs and covers them. A failed
    /// read-ahead hands over to a single stream at `offset` (a server that ignores Range
    /// gets no read-ahead again); that stream then has its own resumes before a read fails.
    fn read_prefetched(&mut self, offset: u64, want: u64) -> Option<Bytes> {
        let prefetch = self.prefetch.as_mut()?;
        match prefetch.read_at(offset, want) {
            Ok(bytes) if !bytes.is_empty() => return Some(bytes),
            Ok(_) => {}
            Err(Failure::RangeIgnored) => {
                log::debug!("file {}: range ignored, no read-ahead", self.file.id);
                self.ranges_ignored = true;
            }
            Err(Failure::Failed { offset, message }) => {
                log::debug!(
                    "file {}: read-ahead of {offset} failed ({message}), streaming instead",
                    self.file.id
                );
            }
        }
        self.drop_prefetch();
        self.buf.clear();
        self.buf_start = offset;
        self.window = INITIAL_WINDOW;
        None
    }

    fn drop_prefetch(&mut self) {
        self.requests += self.prefetch.take().map_or(0, |p| p.requests());
    }

    /// How far ahead of the buffer a read is served by reading forward rather than by a new
    /// window at its offset: through the bytes already on their way (the open window, the
    /// prefetched chunks) and the next window, which a sequential reader's out-of-order
    /// read-ahead lands in. Right after a seek the next window is small, so a random read
    /// never fetches much more than itself.
    fn reach(&self) -> u64 {
        let end = self.buf_end();
        if let Some(p) = &self.prefetch {
            return p.pos().max(end) + SKIP_MAX;
        }
        let ahead = match &self.stream {
            Some(Stream { end: None, .. }) => SKIP_MAX,
            Some(Stream { end: Some(e), .. }) => e.saturating_sub(end) + self.window,
            None => self.window,
        };
        end + ahead.min(SKIP_MAX)
    }

    /// Drops the downloads and the buffer; the next fill starts at `offset` with a request
    /// for just what the read needs.
    fn restart(&mut self, offset: u64) {
        if self.stream.is_some() || self.prefetch.is_some() {
            log::debug!("file {}: seek to {offset}, new window", self.file.id);
        }
        self.stream = None;
        self.drop_prefetch();
        self.buf.clear();
        self.buf_start = offset;
        self.window = if self.requests() == 0 {
            INITIAL_WINDOW
        } else {
            0
        };
    }

    /// Streams until the buffer reaches `target` or the file ends.
    fn fill_to(&mut self, target: u64) -> Result<(), FsError> {
        let mut resumes = 0;
        while self.buf_end() < target {
            if self.stream.as_ref().is_none_or(|s| s.end == Some(s.pos)) {
                self.finish_stream();
                let next = target - self.buf_end();
                self.open(next)?;
                if self.prefetch.is_some() {
                    return Ok(());
                }
            }
            match self.pull() {
                Ok(0) => match self.size {
                    Some(size) if self.buf_end() >= size => return Ok(()),
                    Some(_) => self.resume(&mut resumes, "body ended early".to_string())?,
                    None => {
                        // Nothing said how long the file is: the body's end is its end.
                        self.size = Some(self.buf_end());
                        return Ok(());
                    }
                },
                Ok(_) => {}
                Err(e) => self.resume(&mut resumes, e.to_string())?,
            }
        }
        Ok(())
    }

    /// After a broken body: a new request from the current offset, or the error.
    fn resume(&mut self, resumes: &mut u32, cause: String) -> Result<(), FsError> {
        let offset = self.buf_end();
        self.stream = None;
        if *resumes >= RESUMES {
            return Err(FsError::Download {
                what: format!("file {}", self.file.id),
                offset,
                message: cause,
            });
        }
        *resumes += 1;
        log::debug!(
            "file {}: download broke at {offset} ({cause}), resuming",
            self.file.id
        );
        Ok(())
    }

    /// Drops a stream read to the end of its range, after reading the body's end, so the
    /// connection goes back to the pool for the next request instead of being closed.
    fn finish_stream(&mut self) {
        if let Some(mut stream) = self.stream.take()
            && stream.end == Some(stream.pos)
        {
            let _ = stream.body.read(&mut [0u8; 1]);
        }
    }

    /// Whether the next request should be a prefetcher: a sequential reader, on a server
    /// that honours Range, with at least two chunks left to read.
    fn wants_prefetch(&self, offset: u64) -> Option<u64> {
        let size = self.size?;
        let sequential = self.window >= PREFETCH_FROM && !self.ranges_ignored;
        (sequential && size.saturating_sub(offset) >= 2 * prefetch::CHUNK_SIZE).then_some(size)
    }

    /// Starts a request at the buffer's end, for at least `min_len` bytes.
    fn open(&mut self, min_len: u64) -> Result<(), FsError> {
        let offset = self.buf_end();
        if let Some(size) = self.wants_prefetch(offset) {
            log::debug!(
                "file {}: sequential from {offset}, reading ahead",
                self.file.id
            );
            let p = Prefetcher::start(self.remote.clone(), self.file.clone(), offset, size);
            self.prefetch = Some(p);
            return Ok(());
        }
        let len = self.window.max(min_len);
        let end = match (self.ranges_ignored, self.size) {
            (true, _) => None,
            (false, Some(size)) => Some((offset + len).min(size)),
            (false, None) => Some(offset + len),
        };
        self.requests += 1;
        let d = self.remote.download(&self.file, offset, end)?;
        if self.size.is_none()
            && let Some(total) = d.total_len
        {
            self.size = Some(total);
        }
        let mut stream = Stream {
            body: d.body,
            pos: d.start,
            end: if d.start == offset { end } else { None },
        };
        if d.start > offset {
            return Err(FsError::Download {
                what: format!("file {}", self.file.id),
                offset,
                message: format!("server answered from byte {} instead", d.start),
            });
        }
        if d.start != offset {
            // Range ignored: skip to the offset, and ask for whole files from now on.
            self.ranges_ignored = true;
            skip(&mut stream, offset)?;
        }
        self.stream = Some(stream);
        self.window = (len * 2).clamp(INITIAL_WINDOW, MAX_WINDOW);
        Ok(())
    }

    /// Appends up to one chunk from the stream to the buffer; Ok(0) at the body's end.
    fn pull(&mut self) -> std::io::Result<usize> {
        let Some(stream) = self.stream.as_mut() else {
            return Ok(0);
        };
        let room = stream
            .end
            .map_or(CHUNK as u64, |e| (e - stream.pos).min(CHUNK as u64));
        if room == 0 {
            return Ok(0);
        }
        if self.chunk.is_empty() {
            self.chunk = vec![0u8; CHUNK];
        }
        let chunk = &mut self.chunk[..room as usize];
        let n = loop {
            match stream.body.read(chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        stream.pos += n as u64;
        let (buf, chunk) = (&mut self.buf, &self.chunk);
        Self::make_room_in(buf, &mut self.buf_start, n);
        buf.extend(&chunk[..n]);
        Ok(n)
    }

    /// Drops the oldest bytes so that `n` more fit in [`BUFFER_MAX`]; made before appending,
    /// so the buffer never grows past its first allocation.
    fn make_room_in(buf: &mut VecDeque<u8>, buf_start: &mut u64, n: usize) {
        if buf.capacity() == 0 {
            buf.reserve_exact(BUFFER_MAX);
        }
        let overflow = (buf.len() + n).saturating_sub(BUFFER_MAX);
        if overflow > 0 {
            buf.drain(..overflow.min(buf.len()));
            *buf_start += overflow as u64;
        }
    }

    fn copy_out(&self, offset: u64, want: u64) -> Bytes {
        let from = (offset.saturating_sub(self.buf_start) as usize).min(self.buf.len());
        let to = (from + want as usize).min(self.buf.len());
        let (a, b) = self.buf.as_slices();
        let mut out = Vec::with_capacity(to - from);
        if from < a.len() {
            out.extend_from_slice(&a[from..to.min(a.len())]);
        }
        if to > a.len() {
            out.extend_from_slice(&b[from.saturating_sub(a.len())..to - a.len()]);
        }
        out.into()
    }
}

/// Reads and drops bytes until the stream is at `offset`.
fn skip(stream: &mut Stream, offset: u64) -> Result<(), FsError> {
    let n = offset - stream.pos;
    let copied = std::io::copy(&mut (&mut stream.body).take(n), &mut std::io::sink());
    match copied {
        Ok(c) if c == n => {
            stream.pos = offset;
            Ok(())
        }
        Ok(c) => Err(FsError::Download {
            what: "whole-file response".into(),
            offset: stream.pos + c,
            message: format!("ended before offset {offset}"),
        }),
        Err(e) => Err(FsError::Download {
            what: "whole-file response".into(),
            offset: stream.pos,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use parking_lot::Mutex;

    use super::*;
    use crate::api::{ApiError, Download, Id};
    use crate::fs::testing::{Faulty, MemRemote, forward_to_inner};

    fn data(n: usize) -> Vec<u8> {
        let mut x: u32 = 12345;
        (0..n)
            .map(|_| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (x >> 16) as u8
            })
            .collect()
    }

    fn setup(remote: &MemRemote, n: usize) -> (File, Vec<u8>) {
        let bytes = data(n);
        let id = remote.add_file(&Id::root(), "big", "bin", bytes.clone());
        let file = remote
            .list_folder_now(&Id::root())
            .files
            .into_iter()
            .find(|f| f.id == id)
            .unwrap();
        (file, bytes)
    }

    fn read_all(r: &mut FileReader, chunk: u32) -> Vec<u8> {
        let mut out = Vec::new();
        loop {
            let got = r.read(out.len() as u64, chunk).unwrap();
            if got.is_empty() {
                return out;
            }
            out.extend(got);
        }
    }

    #[test]
    fn sequential_reads_use_few_growing_requests() {
        let remote = Arc::new(MemRemote::new());
        let (file, bytes) = setup(&remote, 20 << 20);
        let mut r = FileReader::new(remote.clone(), file, Some(bytes.len() as u64));
        assert_eq!(read_all(&mut r, 128 * 1024), bytes);
        // 128K, 256K, ... 16M: 8 windows cover 20 MiB; never one request per read.
        assert!(r.requests() <= 9, "{} requests", r.requests());
    }

    #[test]
    fn random_reads_match_the_source() {
        let remote = Arc::new(MemRemote::new());
        let (file, bytes) = setup(&remote, 3 << 20);
        let mut r = FileReader::new(remote, file, Some(bytes.len() as u64));
        let mut x: u64 = 7;
        for _ in 0..200 {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            let off = (x >> 33) % bytes.len() as u64;
            let len = ((x >> 7) % 70_000) as u32 + 1;
            let got = r.read(off, len).unwrap();
            let end = (off as usize + len as usize).min(bytes.len());
            assert_eq!(got, &bytes[off as usize..end], "at {off}+{len}");
        }
        assert!(r.read(bytes.len() as u64, 10).unwrap().is_empty());
    }

    #[test]
    fn slightly_out_of_order_reads_need_no_new_request() {
        let remote = Arc::new(MemRemote::new());
        let (file, bytes) = setup(&remote, 1 << 20);
        let mut r = FileReader::new(remote, file, Some(bytes.len() as u64));
        let k = 128 * 1024;
        for &i in &[0u64, 2, 1, 4, 3, 5, 7, 6] {
            let got = r.read(i * k, k as u32).unwrap();
            assert_eq!(got, &bytes[(i * k) as usize..((i + 1) * k) as usize]);
        }
        assert!(r.requests() <= 4, "{} requests", r.requests());
    }

    #[test]
    fn a_server_that_ignores_range_is_handled() {
        let remote = Arc::new(MemRemote::new());
        remote.set_ignore_range(true);
        let (file, bytes) = setup(&remote, 2 << 20);
        let mut r = FileReader::new(remote.clone(), file, Some(bytes.len() as u64));
        assert_eq!(r.read(1000, 5000).unwrap(), &bytes[1000..6000]);
        assert_eq!(read_all(&mut r, 64 * 1024), bytes);
        let mut r2 = FileReader::new(remote, r.file.clone(), Some(bytes.len() as u64));
        assert_eq!(
            r2.read(1_500_000, 100).unwrap(),
            &bytes[1_500_000..1_500_100]
        );
        assert_eq!(read_all(&mut r2, 100_000), bytes);
    }

    #[test]
    fn a_broken_body_is_resumed_then_fails_with_eio() {
        let remote = Arc::new(Faulty::new(MemRemote::new()));
        let (file, bytes) = setup(&remote.inner, 1 << 20);
        remote.break_next_bodies(2, 1000);
        let mut r = FileReader::new(remote.clone(), file.clone(), Some(bytes.len() as u64));
        assert_eq!(
            read_all(&mut r, 128 * 1024),
            bytes,
            "two breaks are resumed"
        );

        remote.break_next_bodies(10, 0);
        let mut r = FileReader::new(remote, file, Some(bytes.len() as u64));
        let err = r.read(0, 4096).unwrap_err();
        assert_eq!(err.errno(), libc::EIO);
    }

    #[test]
    fn a_read_larger_than_the_buffer_is_served_whole() {
        let remote = Arc::new(MemRemote::new());
        let (file, bytes) = setup(&remote, 20 << 20);
        let mut r = FileReader::new(remote, file, Some(bytes.len() as u64));
        assert_eq!(r.read(3, 16 << 20).unwrap(), &bytes[3..(16 << 20) + 3]);
    }

    /// A remote whose downloads take a while to answer, recording each requested range and
    /// the most downloads that were waiting at once.
    struct Slow {
        inner: Faulty<MemRemote>,
        delay: Duration,
        ranges: Mutex<Vec<(u64, Option<u64>)>>,
        in_flight: AtomicUsize,
        max_in_flight: AtomicUsize,
        /// Downloads from this offset on wait (up to a few seconds) for a second one to be
        /// in flight, so a test of overlap does not depend on how threads are scheduled.
        meet_from: std::sync::atomic::AtomicU64,
    }

    impl Slow {
        fn new(delay: Duration) -> Slow {
            Slow {
                inner: Faulty::new(MemRemote::new()),
                delay,
                ranges: Mutex::new(Vec::new()),
                in_flight: AtomicUsize::new(0),
                max_in_flight: AtomicUsize::new(0),
                meet_from: std::sync::atomic::AtomicU64::new(u64::MAX),
            }
        }

        fn ranges_from(&self, i: usize) -> Vec<(u64, Option<u64>)> {
            self.ranges.lock()[i..].to_vec()
        }
    }

    impl Remote for Slow {
        forward_to_inner! {
            list_folder, get_folder, create_folder, trash_folder, delete_folder, upload_file,
            trash_file, delete_file, content_length, timeout,
        }

        fn download(
            &self,
            file: &File,
            offset: u64,
            end: Option<u64>,
        ) -> Result<Download, ApiError> {
            self.ranges.lock().push((offset, end));
            let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_in_flight.fetch_max(now, Ordering::SeqCst);
            if offset >= self.meet_from.load(Ordering::SeqCst) {
                let deadline = std::time::Instant::now() + Duration::from_secs(3);
                while self.max_in_flight.load(Ordering::SeqCst) < 2
                    && std::time::Instant::now() < deadline
                {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            std::thread::sleep(self.delay);
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            self.inner.download(file, offset, end)
        }
    }

    fn slow_setup(delay_ms: u64, n: usize) -> (Arc<Slow>, FileReader, Vec<u8>) {
        let remote = Arc::new(Slow::new(Duration::from_millis(delay_ms)));
        let (file, bytes) = setup(&remote.inner.inner, n);
        let r = FileReader::new(remote.clone(), file, Some(bytes.len() as u64));
        (remote, r, bytes)
    }

    #[test]
    fn a_sequential_reader_gets_parallel_read_ahead() {
        let (remote, mut r, bytes) = slow_setup(30, 40 << 20);
        remote
            .meet_from
            .store(2 * prefetch::CHUNK_SIZE, Ordering::SeqCst);
        assert_eq!(read_all(&mut r, 1 << 20), bytes);
        assert!(
            remote.max_in_flight.load(Ordering::SeqCst) >= 2,
            "downloads never overlapped"
        );
        // Growing windows up to PREFETCH_FROM, then one GET per chunk.
        let chunks = (40 << 20) / prefetch::CHUNK_SIZE;
        assert!(r.requests() <= 5 + chunks, "{} requests", r.requests());
        assert_eq!(r.requests(), remote.ranges.lock().len() as u64);
    }

    #[test]
    fn a_seek_ends_the_read_ahead_and_a_random_read_fetches_only_itself() {
        let (remote, mut r, bytes) = slow_setup(0, 40 << 20);
        assert_eq!(r.read(0, 16 << 20).unwrap(), &bytes[..16 << 20]);
        assert!(r.prefetch.is_some(), "a long sequential read reads ahead");

        let seen = remote.ranges.lock().len();
        // Far apart, so no read is within the reach of the one before.
        for i in 0..20u64 {
            let off = (37 - i) * (1 << 20) + 12_345;
            let got = r.read(off, 4096).unwrap();
            assert_eq!(got, &bytes[off as usize..off as usize + 4096], "at {off}");
        }
        assert!(r.prefetch.is_none());
        let ranges = remote.ranges_from(seen);
        assert_eq!(ranges.len(), 20, "one request per random read: {ranges:?}");
        for (start, end) in ranges {
            assert_eq!(
                end,
                Some(start + 4096),
                "a random read asks for its own bytes"
            );
        }
    }

    #[test]
    fn a_read_continuing_after_a_seek_grows_a_window_again() {
        let (remote, mut r, bytes) = slow_setup(0, 40 << 20);
        r.read(0, 4096).unwrap();
        let start = 20 << 20;
        assert_eq!(
            r.read(start, 4096).unwrap(),
            &bytes[start as usize..][..4096]
        );
        let seen = remote.ranges.lock().len();
        let mut at = start + 4096;
        while at < start + (12 << 20) {
            let got = r.read(at, 128 * 1024).unwrap();
            assert_eq!(got, &bytes[at as usize..][..128 * 1024]);
            at += 128 * 1024;
        }
        // 128K, 256K, ... then read-ahead chunks: not one request per read.
        let n = remote.ranges_from(seen).len();
        assert!(n <= 10, "{n} requests for 12 MiB");
        assert!(r.prefetch.is_some());
    }

    #[test]
    fn broken_chunks_are_resumed_and_a_dead_server_gives_eio() {
        let (remote, mut r, bytes) = slow_setup(0, 60 << 20);
        assert_eq!(r.read(0, 8 << 20).unwrap(), &bytes[..8 << 20]);
        assert!(r.prefetch.is_some());
        remote.inner.break_next_bodies(3, 100_000);
        let mut at = 8u64 << 20;
        while at < 24 << 20 {
            let got = r.read(at, 1 << 20).unwrap();
            assert_eq!(got, &bytes[at as usize..][..1 << 20], "at {at}");
            at += 1 << 20;
        }

        // From here every body breaks at once; the chunks past 40 MiB are requested after
        // that. The read fails (after the stream's own resumes) instead of hanging or
        // making bytes up.
        remote.inner.break_next_bodies(usize::MAX, 0);
        let mut failed = false;
        while at < 60 << 20 {
            match r.read(at, 1 << 20) {
                Ok(got) => assert_eq!(got, &bytes[at as usize..][..got.len()], "at {at}"),
                Err(e) => {
                    assert_eq!(e.errno(), libc::EIO);
                    failed = true;
                    break;
                }
            }
            at += 1 << 20;
        }
        assert!(failed, "reads past the prefetched chunks cannot succeed");
    }

    #[test]
    fn a_server_that_stops_honouring_range_mid_file_is_still_read_right() {
        let (remote, mut r, bytes) = slow_setup(0, 30 << 20);
        assert_eq!(r.read(0, 8 << 20).unwrap(), &bytes[..8 << 20]);
        remote.inner.inner.set_ignore_range(true);
        let mut at = 8u64 << 20;
        while at < bytes.len() as u64 {
            let got = r.read(at, 1 << 20).unwrap();
            assert_eq!(got, &bytes[at as usize..][..got.len()]);
            at += got.len() as u64;
        }
        assert!(r.ranges_ignored || r.prefetch.is_some());
    }

    #[test]
    fn dropping_a_reader_leaves_no_download_running() {
        let (remote, mut r, bytes) = slow_setup(50, 40 << 20);
        assert_eq!(r.read(0, 4 << 20).unwrap(), &bytes[..4 << 20]);
        assert!(r.prefetch.is_some());
        drop(r);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while remote.in_flight.load(Ordering::SeqCst) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "downloads still running"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let made = remote.ranges.lock().len();
        assert!(made <= 6 + prefetch::DEPTH, "{made} downloads");
    }

    #[test]
    fn unknown_size_reads_to_the_end_of_the_body() {
        let remote = Arc::new(MemRemote::new());
        let (file, bytes) = setup(&remote, 300_000);
        let mut r = FileReader::new(remote, file, None);
        assert_eq!(read_all(&mut r, 100_000), bytes);
    }
}
