//! The write-back queue: with `--write-back DUR`, a pending file is stored DUR after its last
//! close, by one background thread. A new close pushes the deadline back; a rename in the
//! meantime is local, so the write-a-temp-then-rename habit of editors and rsync costs one
//! upload under the final name.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::fs::CloudifyFs;
use crate::fs::inode::Ino;

#[derive(Default)]
struct State {
    due: HashMap<Ino, Instant>,
    stop: bool,
    running: bool,
}

/// Deadlines by inode. `state` guards the map and the stop flag; it is never held while a
/// file is stored.
#[derive(Default)]
pub struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Queue {
    pub fn new() -> Queue {
        Queue::default()
    }

    /// Stores `ino` at `at` (replacing an earlier deadline).
    pub fn schedule(&self, ino: Ino, at: Instant) {
        self.state.lock().due.insert(ino, at);
        self.changed.notify_all();
    }

    pub fn cancel(&self, ino: Ino) {
        self.state.lock().due.remove(&ino);
    }

    /// Starts the thread that stores due files through `fs`.
    pub fn start(&self, fs: Weak<CloudifyFs>) {
        let mut st = self.state.lock();
        if st.running {
            return;
        }
        st.running = true;
        drop(st);
        let handle = std::thread::Builder::new()
            .name("write-back".into())
            .spawn(move || run(fs));
        match handle {
            Ok(h) => *self.thread.lock() = Some(h),
            Err(e) => log::warn!(
                "cannot start the write-back thread: {e}; uploads wait for fsync or unmount"
            ),
        }
    }

    /// Stops the thread (after the store it is running, if any) and returns what was still
    /// waiting.
    pub fn stop(&self) -> Vec<Ino> {
        let due: Vec<Ino> = {
            let mut st = self.state.lock();
            st.stop = true;
            st.due.drain().map(|(ino, _)| ino).collect()
        };
        self.changed.notify_all();
        if let Some(h) = self.thread.lock().take() {
            let _ = h.join();
        }
        due
    }

    /// Waits for the next due inodes; `None` when stopping.
    fn next_due(&self) -> Option<Vec<Ino>> {
        let mut st = self.state.lock();
        loop {
            if st.stop {
                return None;
            }
            let now = Instant::now();
            let due: Vec<Ino> = st
                .due
                .iter()
                .filter(|(_, at)| **at <= now)
                .map(|(ino, _)| *ino)
                .collect();
            if !due.is_empty() {
                for ino in &due {
                    st.due.remove(ino);
                }
                return Some(due);
            }
            let wait = st
                .due
                .values()
                .min()
                .map_or(Duration::from_secs(3600), |at| {
                    at.saturating_duration_since(now)
                });
            self.changed.wait_for(&mut st, wait);
        }
    }
}

fn run(fs: Weak<CloudifyFs>) {
    loop {
        let Some(fs_ref) = fs.upgrade() else { return };
        let queue = &fs_ref.writes.queue;
        let Some(due) = queue.next_due() else { return };
        for ino in due {
            fs_ref.store_deferred(ino);
        }
    }
}
