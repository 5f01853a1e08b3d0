//! Open-for-read handles: a file's bytes streamed from its URL with ranged GETs.
//!
//! A handle keeps one download that moves forward with the reader. The first request asks
//! for a small window ([`INITIAL_WINDOW`], so `file`, thumbnailers and `head` cost little);
//! each time a window is read to its end and the reader is still sequential, the next
//! request asks for twice as much, up to [`MAX_WINDOW`]. A read elsewhere starts a new
//! window at its offset.
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

use std::collections::VecDeque;
use std::io::Read;
use std::sync::Arc;

use super::error::FsError;
use crate::api::{File, Remote};

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
    /// Next window size.
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
            window: INITIAL_WINDOW,
            ranges_ignored: false,
            buf: VecDeque::new(),
            buf_start: 0,
            chunk: Vec::new(),
            requests: 0,
        }
    }

    pub fn requests(&self) -> u64 {
        self.requests
    }

    fn buf_end(&self) -> u64 {
        self.buf_start + self.buf.len() as u64
    }

    /// Up to `len` bytes at `offset`; fewer only at the end of the file.
    pub fn read(&mut self, offset: u64, len: u32) -> Result<Vec<u8>, FsError> {
        let len = u64::from(len);
        let mut out = Vec::new();
        while (out.len() as u64) < len {
            let at = offset + out.len() as u64;
            let piece = self.read_piece(at, (len - out.len() as u64).min(PIECE))?;
            if piece.is_empty() {
                break;
            }
            out.extend_from_slice(&piece);
        }
        Ok(out)
    }

    fn read_piece(&mut self, offset: u64, len: u64) -> Result<Vec<u8>, FsError> {
        let mut want = len;
        if let Some(size) = self.size {
            want = want.min(size.saturating_sub(offset));
        }
        if want == 0 {
            return Ok(Vec::new());
        }
        let in_reach = offset >= self.buf_start && offset <= self.buf_end() + SKIP_MAX;
        if self.stream.is_none() || !in_reach {
            self.restart(offset);
        }
        self.fill_to(offset + want)?;
        Ok(self.copy_out(offset, want))
    }

    /// Drops the stream and buffer; the next fill starts a window at `offset`.
    fn restart(&mut self, offset: u64) {
        if self.stream.is_some() {
            log::debug!("file {}: seek to {offset}, new window", self.file.id);
        }
        self.stream = None;
        self.buf.clear();
        self.buf_start = offset;
        self.window = INITIAL_WINDOW;
    }

    /// Streams until the buffer reaches `target` or the file ends.
    fn fill_to(&mut self, target: u64) -> Result<(), FsError> {
        let mut resumes = 0;
        while self.buf_end() < target {
            if self.stream.as_ref().is_none_or(|s| s.end == Some(s.pos)) {
                let next = target - self.buf_end();
                self.open(next)?;
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

    /// Starts a request at the buffer's end, for at least `min_len` bytes.
    fn open(&mut self, min_len: u64) -> Result<(), FsError> {
        let offset = self.buf_end();
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
        self.window = (len * 2).min(MAX_WINDOW);
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
            self.buf.reserve_exact(BUFFER_MAX);
        }
        let chunk = &mut self.chunk[..room as usize];
        let n = loop {
            match stream.body.read(chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        stream.pos += n as u64;
        // Make room first, so the buffer never grows past its first allocation.
        let overflow = (self.buf.len() + n).saturating_sub(BUFFER_MAX);
        if overflow > 0 {
            self.buf.drain(..overflow.min(self.buf.len()));
            self.buf_start += overflow as u64;
        }
        self.buf.extend(&chunk[..n]);
        Ok(n)
    }

    fn copy_out(&self, offset: u64, want: u64) -> Vec<u8> {
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
        out
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
    use super::*;
    use crate::api::Id;
    use crate::fs::testing::{Faulty, MemRemote};

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

    #[test]
    fn unknown_size_reads_to_the_end_of_the_body() {
        let remote = Arc::new(MemRemote::new());
        let (file, bytes) = setup(&remote, 300_000);
        let mut r = FileReader::new(remote, file, None);
        assert_eq!(read_all(&mut r, 100_000), bytes);
    }
}
