//! Deliberate misbehaviour for tests: latency, 500/503 answers, cut connections, stalls,
//! bandwidth caps, failing uploads, and the per-address rate limit. The dice come from one
//! seeded generator, so a sequential run repeats exactly with the same `--fault-seed`.
//!
//! The switches that tests flip at run time (`POST /_server/control`) are atomics; the
//! generator and the rate-limit windows each sit behind their own mutex, never held across
//! an await.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use parking_lot::Mutex;
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::config::FaultConfig;

pub struct Faults {
    latency_ms: AtomicU64,
    /// `f64` bits of the share of API calls answered 500/503.
    fail_rate: AtomicU64,
    drop_rate: f64,
    stall: Duration,
    bandwidth: u64,
    fail_uploads: AtomicBool,
    fail_next_uploads: AtomicU64,
    rng: Mutex<ChaCha8Rng>,
}

impl Faults {
    pub fn new(cfg: &FaultConfig) -> Faults {
        Faults {
            latency_ms: AtomicU64::new(cfg.latency.as_millis() as u64),
            fail_rate: AtomicU64::new(cfg.fail_rate.to_bits()),
            drop_rate: cfg.drop_rate,
            stall: cfg.stall,
            bandwidth: cfg.bandwidth,
            fail_uploads: AtomicBool::new(cfg.fail_uploads),
            fail_next_uploads: AtomicU64::new(0),
            rng: Mutex::new(ChaCha8Rng::seed_from_u64(cfg.seed)),
        }
    }

    fn roll(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().random_bool(p.min(1.0))
    }

    /// Waits the configured latency, if any.
    pub async fn delay(&self) {
        let ms = self.latency_ms.load(Ordering::Relaxed);
        if ms > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
    }

    /// The error status to answer this API call with, if the dice say it fails.
    pub fn roll_failure(&self) -> Option<StatusCode> {
        let p = f64::from_bits(self.fail_rate.load(Ordering::Relaxed));
        if !self.roll(p) {
            return None;
        }
        let unavailable = self.rng.lock().random_bool(0.5);
        Some(if unavailable {
            StatusCode::SERVICE_UNAVAILABLE
        } else {
            StatusCode::INTERNAL_SERVER_ERROR
        })
    }

    /// Whether to cut this transfer's connection mid-body.
    pub fn roll_drop(&self) -> bool {
        self.roll(self.drop_rate)
    }

    pub fn stall(&self) -> Duration {
        self.stall
    }

    /// Bytes a second a transfer may move (0 = unlimited).
    pub fn bandwidth(&self) -> u64 {
        self.bandwidth
    }

    /// Whether this upload must fail with a storage error (and uses up one of the
    /// `fail_next_uploads`).
    pub fn take_upload_failure(&self) -> bool {
        if self.fail_uploads.load(Ordering::Relaxed) {
            return true;
        }
        self.fail_next_uploads
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok()
    }

    pub fn set_fail_uploads(&self, on: bool) {
        self.fail_uploads.store(on, Ordering::Relaxed);
    }

    pub fn set_fail_next_uploads(&self, n: u64) {
        self.fail_next_uploads.store(n, Ordering::Relaxed);
    }

    pub fn set_fail_rate(&self, p: f64) {
        self.fail_rate
            .store(p.clamp(0.0, 1.0).to_bits(), Ordering::Relaxed);
    }

    pub fn set_latency(&self, ms: u64) {
        self.latency_ms.store(ms, Ordering::Relaxed);
    }
}

/// Paces a transfer to `rate` bytes a second: call [`Pacer::after`] with each chunk's size.
pub struct Pacer {
    rate: u64,
    start: Instant,
    moved: u64,
}

impl Pacer {
    pub fn new(rate: u64) -> Pacer {
        Pacer {
            rate,
            start: Instant::now(),
            moved: 0,
        }
    }

    /// Sleeps until `bytes` more fit under the rate.
    pub async fn after(&mut self, bytes: u64) {
        if self.rate == 0 {
            return;
        }
        self.moved += bytes;
        let due = Duration::from_secs_f64(self.moved as f64 / self.rate as f64);
        let elapsed = self.start.elapsed();
        if due > elapsed {
            tokio::time::sleep(due - elapsed).await;
        }
    }
}

/// Fixed one-minute windows of API requests per client address, like Laravel's throttle.
pub struct RateLimiter {
    per_minute: Option<u32>,
    windows: Mutex<HashMap<IpAddr, (Instant, u32)>>,
}

/// The outcome of counting one request.
pub struct RateDecision {
    pub limit: u32,
    pub remaining: u32,
    pub allowed: bool,
}

impl RateLimiter {
    pub fn new(per_minute: Option<u32>) -> RateLimiter {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request from `ip`; `None` when there is no limit.
    pub fn check(&self, ip: IpAddr) -> Option<RateDecision> {
        let limit = self.per_minute?;
        let mut windows = self.windows.lock();
        let now = Instant::now();
        let entry = windows.entry(ip).or_insert((now, 0));
        if now.duration_since(entry.0) >= Duration::from_secs(60) {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(1);
        Some(RateDecision {
            limit,
            remaining: limit.saturating_sub(entry.1),
            allowed: entry.1 <= limit,
        })
    }
}
