//! Login throttling per account: after 5 failures within 15 minutes, each further failure
//! locks the account for a doubling delay (1, 2, 4, 8 minutes), capped at 15 minutes. The
//! count is forgotten 15 minutes after the first failure, or after the last lock ended.
//! Pure functions of `now`, so tests need no sleeping.
//!
//! A password check is *claimed* before it runs ([`Record::claim`]): the attempt is counted
//! as a failure in advance, in the same locked database row read, so attempts arriving at
//! once see each other and at most [`FREE_FAILURES`] checks run before the pause; a check
//! that matches clears the record afterwards.

use chrono::{DateTime, Duration, Utc};

pub const FREE_FAILURES: i32 = 5;
pub const WINDOW: Duration = Duration::minutes(15);
pub const FIRST_LOCK: Duration = Duration::minutes(1);
pub const MAX_LOCK: Duration = Duration::minutes(15);

/// An account's failure record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Record {
    pub failures: i32,
    pub first_failed_at: Option<DateTime<Utc>>,
    pub locked_until: Option<DateTime<Utc>>,
}

impl Record {
    pub fn is_locked(&self, now: DateTime<Utc>) -> bool {
        self.locked_until.is_some_and(|until| until > now)
    }

    /// Claims one password check at `now`: `None` while the account is paused (refused
    /// without checking), else the record with this attempt already counted as a failure.
    pub fn claim(self, now: DateTime<Utc>) -> Option<Record> {
        (!self.is_locked(now)).then(|| self.after_failure(now))
    }

    /// The record after one more failure at `now`.
    pub fn after_failure(self, now: DateTime<Utc>) -> Record {
        let window_open = self.first_failed_at.is_some_and(|first| now - first < WINDOW);
        // Once locked, the count lives on until a whole window passes after the lock ends,
        // so waiting out each lock does not reset the doubling.
        let escalating = self.locked_until.is_some_and(|until| now - until < WINDOW);
        let (failures, first_failed_at) = if window_open || escalating {
            (self.failures + 1, self.first_failed_at)
        } else {
            (1, Some(now))
        };
        let locked_until = (failures >= FREE_FAILURES).then(|| {
            let doublings = (failures - FREE_FAILURES).min(10) as u32;
            let delay = (FIRST_LOCK * 2i32.pow(doublings)).min(MAX_LOCK);
            now + delay
        });
        Record {
            failures,
            first_failed_at,
            locked_until: locked_until.or(self.locked_until),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A record after `failures` failures at minute 0.
    fn failed_at_start(failures: usize) -> Record {
        (0..failures).fold(Record::default(), |record, _| record.after_failure(at(0)))
    }

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + Duration::minutes(minutes)
    }

    #[test]
    fn attempts_arriving_at_once_get_five_checks_and_no_more() {
        let mut record = Record::default();
        let mut checks = 0;
        for _ in 0..40 {
            if let Some(claimed) = record.claim(at(0)) {
                record = claimed;
                checks += 1;
            }
        }
        assert_eq!(checks, FREE_FAILURES);
        assert!(record.is_locked(at(0)));
        assert!(
            record.claim(at(1)).is_some(),
            "one more check once the pause ended"
        );
    }

    #[test]
    fn four_failures_do_not_lock() {
        let record = failed_at_start(4);
        assert!(!record.is_locked(at(0)));
    }

    #[test]
    fn the_fifth_failure_locks_and_further_ones_double_up_to_fifteen_minutes() {
        let mut record = failed_at_start(5);
        assert_eq!(record.locked_until, Some(at(1)));
        let mut now = 1;
        for expected in [2, 4, 8, 15, 15] {
            record = record.after_failure(at(now));
            assert_eq!(
                record.locked_until,
                Some(at(now + expected)),
                "after failure at {now}"
            );
            now += expected;
        }
    }

    #[test]
    fn failures_older_than_the_window_are_forgotten() {
        let mut record = failed_at_start(4);
        record = record.after_failure(at(16));
        assert_eq!(record.failures, 1);
        assert!(!record.is_locked(at(16)));
    }

    #[test]
    fn a_lock_is_forgotten_a_window_after_it_ended() {
        let mut record = failed_at_start(5);
        record = record.after_failure(at(1 + 15));
        assert_eq!(record.failures, 1);
        assert!(!record.is_locked(at(16)));
    }
}
