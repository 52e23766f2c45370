//! When to try again (seed 000, SPEC 5): up to 10 retries on `HOOKBOARD_RETRY_SCHEDULE`,
//! each delay with ±20% jitter; `Retry-After` on 429/503 honoured within [delay, 2 × delay].

use std::time::Duration;

use chrono::{DateTime, Utc};

/// How many retries follow the first attempt.
pub const MAX_RETRIES: usize = 10;
/// Failed deliveries in a row (retry switched off) that disable a webhook.
pub const MAX_CONSECUTIVE_FAILURES: i32 = 11;

/// The delay before retry number `retry` (1-based), jittered by `jitter` in [-1, 1].
pub fn delay(schedule: &[Duration], retry: usize, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let base = schedule
        .get(retry.saturating_sub(1))
        .or(schedule.last())
        .copied()
        .unwrap_or(Duration::from_secs(60));
    match retry_after {
        // The endpoint said when; keep it within [scheduled, 2 × scheduled].
        Some(asked) => asked.clamp(base, base * 2),
        None => base.mul_f64(1.0 + 0.2 * jitter.clamp(-1.0, 1.0)),
    }
}

/// Reads `Retry-After` as seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    (at - now).to_std().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{DEFAULT_RETRY_SCHEDULE, parse_duration};

    fn schedule() -> Vec<Duration> {
        DEFAULT_RETRY_SCHEDULE
            .split(',')
            .map(|s| parse_duration(s).unwrap())
            .collect()
    }

    #[test]
    fn retries_follow_the_schedule_within_twenty_percent() {
        let schedule = schedule();
        assert_eq!(delay(&schedule, 1, 0.0, None), Duration::from_secs(10));
        assert_eq!(delay(&schedule, 10, 0.0, None), Duration::from_secs(8 * 3600));
        assert_eq!(delay(&schedule, 1, 1.0, None), Duration::from_secs(12));
        assert_eq!(delay(&schedule, 1, -1.0, None), Duration::from_secs(8));
        assert_eq!(
            delay(&schedule, 4, 5.0, None),
            Duration::from_secs(360),
            "jitter is capped"
        );
    }

    #[test]
    fn retry_after_is_honoured_between_the_delay_and_twice_it() {
        let schedule = schedule();
        assert_eq!(
            delay(&schedule, 2, 0.9, Some(Duration::from_secs(45))),
            Duration::from_secs(45)
        );
        assert_eq!(
            delay(&schedule, 2, 0.9, Some(Duration::from_secs(1))),
            Duration::from_secs(30)
        );
        assert_eq!(
            delay(&schedule, 2, 0.9, Some(Duration::from_secs(3600))),
            Duration::from_secs(60)
        );
        let now = "2026-11-22T10:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_retry_after("Sun, 22 Nov 2026 10:01:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
