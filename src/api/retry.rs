//! Waiting policies of the client: the backoff between retries and the API call budget.
//!
//! Cloudify throttles by client IP (300 requests a minute by default) and answers 429, often
//! without `Retry-After` because Botble's exception handler rebuilds the response. The client
//! therefore paces its API calls below the limit with [`RateBudget`] and, when a 429 or a
//! transient failure comes anyway, waits per [`Backoff`] before trying again.

use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

/// Jittered exponential backoff: attempt `n` (0-based) waits a random time between half and
/// all of `base * 2^n`, capped at `cap`. The jitter spreads out the retries of the several FUSE
/// worker threads that failed together.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            base: Duration::from_millis(200),
            cap: Duration::from_secs(10),
        }
    }
}

impl Backoff {
    /// The upper bound of the wait before retry number `attempt + 1`.
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A random wait in `[ceiling / 2, ceiling]`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt).as_millis() as u64;
        let half = ceiling / 2;
        Duration::from_millis(half + rand::random_range(0..=ceiling - half))
    }
}

/// The longest a `Retry-After` is honoured; a server asking for more gets the request failed
/// with `RateLimited` instead of a file operation that hangs for minutes.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

/// Parses `Retry-After`: delay seconds or an HTTP date (relative to `now`). A date in the past
/// is a zero wait.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let at = SystemTime::from(date.with_timezone(&chrono::Utc));
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A token bucket shared by all threads: `per_minute` calls a minute on average, with a burst
/// of a tenth of that. Laravel's throttle counts in fixed one-minute windows, so at most
/// `1.1 * per_minute` calls land in any window: the default 240 stays under the server's 300.
///
/// Callers reserve a token under the lock (the balance may go negative) and sleep for their
/// turn after releasing it, so no lock is held while waiting and waiters are served in order.
pub struct RateBudget {
    per_minute: u32,
    burst: f64,
    /// Tokens available (negative: already promised to sleeping callers) and when they were
    /// last topped up.
    state: Mutex<(f64, Instant)>,
}

impl RateBudget {
    pub fn new(per_minute: u32) -> RateBudget {
        let per_minute = per_minute.max(1);
        let burst = f64::from((per_minute / 10).max(1));
        RateBudget {
            per_minute,
            burst,
            state: Mutex::new((burst, Instant::now())),
        }
    }

    /// Takes one call from the budget and returns how long the caller must wait before making
    /// it (zero when a token was available).
    pub fn reserve(&self) -> Duration {
        let per_second = f64::from(self.per_minute) / 60.0;
        let mut state = self.state.lock();
        let now = Instant::now();
        let refilled = state.0 + now.duration_since(state.1).as_secs_f64() * per_second;
        state.0 = refilled.min(self.burst) - 1.0;
        state.1 = now;
        if state.0 >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-state.0 / per_second)
        }
    }

    /// Waits until a call may be made.
    pub fn acquire(&self) {
        let wait = self.reserve();
        if !wait.is_zero() {
            log::debug!("API call budget: waiting {wait:?}");
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let backoff = Backoff::default();
        assert_eq!(backoff.ceiling(0), Duration::from_millis(200));
        assert_eq!(backoff.ceiling(1), Duration::from_millis(400));
        assert_eq!(backoff.ceiling(5), Duration::from_millis(6400));
        assert_eq!(backoff.ceiling(6), Duration::from_secs(10));
        assert_eq!(backoff.ceiling(200), Duration::from_secs(10));
        for attempt in 0..10 {
            let delay = backoff.delay(attempt);
            assert!(delay >= backoff.ceiling(attempt) / 2, "{delay:?}");
            assert!(delay <= backoff.ceiling(attempt), "{delay:?}");
        }
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        // 784111777 is Sun, 06 Nov 1994 08:49:37 GMT.
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:47 GMT", now),
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-3", now), None);
    }

    #[test]
    fn budget_allows_a_burst_then_paces() {
        // One call every 10 s, burst 2: two calls are free, the third waits up to 10 s (less
        // only if the machine took that long between the calls).
        let budget = RateBudget::new(6);
        let budget = RateBudget {
            burst: 2.0,
            state: Mutex::new((2.0, Instant::now())),
            ..budget
        };
        assert_eq!(budget.reserve(), Duration::ZERO);
        assert_eq!(budget.reserve(), Duration::ZERO);
        let wait = budget.reserve();
        assert!(
            wait > Duration::ZERO && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        // Further reservations queue up behind the first.
        let next = budget.reserve();
        assert!(next > wait, "{next:?} after {wait:?}");
    }

    #[test]
    fn tiny_budget_still_allows_one_call() {
        let budget = RateBudget::new(0);
        assert_eq!(budget.reserve(), Duration::ZERO);
        assert!(budget.reserve() > Duration::from_secs(50));
    }
}
