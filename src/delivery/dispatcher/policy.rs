//! What follows an attempt (SPEC 5), as pure functions of plain values: a delivery
//! succeeds on any 2xx; a failure is retried up to [`MAX_RETRIES`] times on the schedule,
//! jittered, with `Retry-After` on 429/503 honoured within [scheduled, 2 × scheduled]; when
//! the last retry fails the delivery fails and its webhook is switched off; with retry on
//! error off each event gets one attempt and [`MAX_CONSECUTIVE_FAILURES`] failed deliveries
//! in a row switch the webhook off; 410 Gone switches it off at once; a success resets the
//! count. Kept apart from the writer so that every rule can be tested without a database,
//! a clock or chance: `now` and the jitter come in as arguments.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::super::http::Outcome;
use super::super::retry::{self, MAX_CONSECUTIVE_FAILURES, MAX_RETRIES};

/// Why a webhook is switched off after an endpoint answered 410 Gone.
const GONE: &str = "The endpoint answered 410 Gone: it asked to receive no more events";

/// How one attempt ended, as far as what follows is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ended<'a> {
    /// The endpoint answered 2xx.
    Succeeded,
    /// Anything else: an answer with `status`, or none (a timeout, a refused address, a
    /// secret that could not sign); what went wrong, and the endpoint's `Retry-After`.
    Failed {
        status: Option<u16>,
        error: Option<&'a str>,
        retry_after: Option<&'a str>,
    },
}

impl<'a> Ended<'a> {
    pub(super) fn of(outcome: &'a Outcome) -> Self {
        if outcome.succeeded {
            Ended::Succeeded
        } else {
            Ended::Failed {
                status: outcome.status,
                error: outcome.error_message.as_deref(),
                retry_after: outcome.retry_after.as_deref(),
            }
        }
    }
}

/// One attempt of a delivery.
#[derive(Debug, Clone, Copy)]
pub(super) struct Attempt<'a> {
    /// 1 for the first attempt, 2 for the first retry, and so on (the delivery's
    /// `attempt_count` before it, plus one).
    pub number: i32,
    pub event_id: &'a str,
    /// Whether the webhook retries failed deliveries (as it was when claimed).
    pub retry_on_error: bool,
    pub ended: Ended<'a>,
}

/// What becomes of the delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Next {
    Succeeded,
    /// Pending again, due at this moment.
    RetryAt(DateTime<Utc>),
    /// Failed for good; `disable` says why its webhook is to be switched off, if it is.
    Failed {
        disable: Option<String>,
    },
}

impl Next {
    /// The delivery's new `status`.
    pub(super) fn status(&self) -> &'static str {
        match self {
            Next::Succeeded => "succeeded",
            Next::RetryAt(_) => "pending",
            Next::Failed { .. } => "failed",
        }
    }

    /// The delivery's new `next_attempt_at`: the retry's, else `now`.
    pub(super) fn next_at(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        match self {
            Next::RetryAt(at) => *at,
            Next::Succeeded | Next::Failed { .. } => now,
        }
    }
}

/// What follows `attempt`, ended at `now`; `jitter` in [-1, 1] spreads the retries.
pub(super) fn after(attempt: &Attempt, schedule: &[Duration], jitter: f64, now: DateTime<Utc>) -> Next {
    let Ended::Failed {
        status,
        error,
        retry_after,
    } = attempt.ended
    else {
        return Next::Succeeded;
    };
    let retries_done = (attempt.number - 1) as usize;
    if status == Some(410) {
        return Next::Failed {
            disable: Some(GONE.into()),
        };
    }
    if attempt.retry_on_error && retries_done < MAX_RETRIES {
        let retry_after = matches!(status, Some(429) | Some(503))
            .then(|| retry_after.and_then(|v| retry::parse_retry_after(v, now)))
            .flatten();
        let delay = retry::delay(schedule, retries_done + 1, jitter, retry_after);
        return Next::RetryAt(now + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1)));
    }
    let disable = (attempt.retry_on_error && retries_done == MAX_RETRIES).then(|| {
        let last = error.unwrap_or("no answer");
        format!(
            "All {MAX_RETRIES} retries of event {} failed; the last error was: {last}",
            attempt.event_id
        )
    });
    Next::Failed { disable }
}

/// What a batch of results does to one webhook's counters. The writer applies it in one
/// statement: `error_count` grows by `errors`, and `consecutive_failures` becomes
/// `failed_after` when `reset`, else grows by it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Tally {
    /// Failed attempts, retried or not.
    pub errors: i64,
    /// A success happened: the consecutive count restarts from `failed_after`.
    pub reset: bool,
    /// Deliveries that failed for good after the last success.
    pub failed_after: i32,
    /// Failed attempts after the last success (all of them without one).
    pub errors_after: i32,
    /// Why to switch the webhook off: the last such reason of the batch.
    pub disable: Option<String>,
}

impl Tally {
    /// Counts what followed one attempt of this webhook, in the order they ended.
    pub(super) fn count(&mut self, next: &Next) {
        match next {
            Next::Succeeded => {
                self.reset = true;
                self.failed_after = 0;
                self.errors_after = 0;
            }
            Next::RetryAt(_) => {
                self.errors += 1;
                self.errors_after += 1;
            }
            Next::Failed { disable } => {
                self.errors += 1;
                self.errors_after += 1;
                self.failed_after += 1;
                if let Some(reason) = disable {
                    self.disable = Some(reason.clone());
                }
            }
        }
    }

    /// Whether the batch adds to the webhook's error counts (a success alone only resets
    /// them, which matters only when they are not zero).
    pub(super) fn changes_counters(&self) -> bool {
        self.errors > 0 || self.failed_after > 0 || self.disable.is_some()
    }
}

/// Failed attempts in a row that make a webhook "failing" (an alert, SPEC 9a).
pub(super) const FAILING_AFTER_ATTEMPTS: i32 = 3;

/// A webhook's alert state: `ok`, `failing` or `disabled` (switched off automatically).
/// Alerts are raised when it changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Alert {
    Failing,
    Disabled,
    Recovered,
}

impl Alert {
    pub(super) fn kind(self) -> &'static str {
        match self {
            Alert::Failing => "failing",
            Alert::Disabled => "disabled",
            Alert::Recovered => "recovered",
        }
    }

    /// The webhook's alert state after this alert.
    pub(super) fn state(self) -> &'static str {
        match self {
            Alert::Failing => "failing",
            Alert::Disabled => "disabled",
            Alert::Recovered => "ok",
        }
    }
}

/// What a batch of results changes in a webhook's alert state, if anything: switched off
/// now (disabled), 3 failed attempts in a row while not failing already (failing), or a
/// success while failing or after being switched off (recovered). At most one alert per
/// change of state.
pub(super) fn alert(
    state: &str,
    disabled_now: bool,
    succeeded: bool,
    failing_attempts: i32,
) -> Option<Alert> {
    if disabled_now {
        return (state != "disabled").then_some(Alert::Disabled);
    }
    if failing_attempts >= FAILING_AFTER_ATTEMPTS {
        return (state != "failing").then_some(Alert::Failing);
    }
    (succeeded && state != "ok").then_some(Alert::Recovered)
}

/// Why an active webhook is switched off once its counters were written, if it is: the
/// batch's own reason (410 Gone, or the last retry failed), else `consecutive_failures`
/// (as written) reaching [`MAX_CONSECUTIVE_FAILURES`] while it does not retry.
pub(super) fn disable_reason(
    planned: Option<&str>,
    retry_on_error: bool,
    consecutive_failures: i32,
) -> Option<String> {
    planned.map(str::to_owned).or_else(|| {
        (!retry_on_error && consecutive_failures >= MAX_CONSECUTIVE_FAILURES)
            .then(|| format!("{MAX_CONSECUTIVE_FAILURES} deliveries in a row failed (retry on error is off)"))
    })
}

#[cfg(test)]
mod alert_tests {
    use super::{Alert, alert};

    #[test]
    fn each_change_of_state_raises_one_alert() {
        assert_eq!(
            alert("ok", false, false, 2),
            None,
            "two failed attempts are not yet failing"
        );
        assert_eq!(alert("ok", false, false, 3), Some(Alert::Failing));
        assert_eq!(
            alert("failing", false, false, 7),
            None,
            "failing once, not at every attempt"
        );
        assert_eq!(alert("failing", true, false, 11), Some(Alert::Disabled));
        assert_eq!(alert("disabled", true, false, 11), None);
        assert_eq!(
            alert("disabled", false, true, 0),
            Some(Alert::Recovered),
            "switched on, then a success"
        );
        assert_eq!(alert("failing", false, true, 0), Some(Alert::Recovered));
        assert_eq!(alert("ok", false, true, 0), None);
        assert_eq!(
            alert("disabled", false, false, 3),
            Some(Alert::Failing),
            "switched on, failing again"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::settings::{DEFAULT_RETRY_SCHEDULE, parse_duration};

    fn now() -> DateTime<Utc> {
        "2026-11-22T10:00:00Z".parse().unwrap()
    }

    fn failed(status: u16, error: Option<&'static str>, retry_after: Option<&'static str>) -> Ended<'static> {
        let status = Some(status);
        Ended::Failed {
            status,
            error,
            retry_after,
        }
    }

    const HTTP_500: Ended = Ended::Failed {
        status: Some(500),
        error: Some("HTTP 500"),
        retry_after: None,
    };

    /// What follows attempt `number` of event `evt_1` ending as `ended`, with `jitter`.
    fn jittered(number: i32, retry_on_error: bool, ended: Ended, jitter: f64) -> Next {
        let schedule: Vec<Duration> = DEFAULT_RETRY_SCHEDULE
            .split(',')
            .map(|s| parse_duration(s).unwrap())
            .collect();
        let attempt = Attempt {
            number,
            event_id: "evt_1",
            retry_on_error,
            ended,
        };
        after(&attempt, &schedule, jitter, now())
    }

    fn next(number: i32, retry_on_error: bool, ended: Ended) -> Next {
        jittered(number, retry_on_error, ended, 0.0)
    }

    fn retry_in(seconds: i64) -> Next {
        Next::RetryAt(now() + chrono::Duration::seconds(seconds))
    }

    fn failure(disable: Option<&str>) -> Next {
        let disable = disable.map(str::to_owned);
        Next::Failed { disable }
    }

    #[test]
    fn a_success_is_a_success_whatever_came_before() {
        for (number, retry_on_error) in [(1, true), (11, true), (12, true), (1, false)] {
            assert_eq!(next(number, retry_on_error, Ended::Succeeded), Next::Succeeded);
        }
        assert_eq!(
            (Next::Succeeded.status(), Next::Succeeded.next_at(now())),
            ("succeeded", now())
        );
        let mut outcome = Outcome {
            status: Some(204),
            succeeded: true,
            duration: Duration::ZERO,
            error_class: None,
            error_message: None,
            response_body: Vec::new(),
            response_headers: serde_json::json!({}),
            retry_after: Some("5".into()),
        };
        assert_eq!(Ended::of(&outcome), Ended::Succeeded);
        (outcome.status, outcome.succeeded) = (Some(503), false);
        assert_eq!(Ended::of(&outcome), failed(503, None, Some("5")));
    }

    #[test]
    fn failures_are_retried_on_the_schedule_numbered_from_the_first_retry() {
        // Attempt 1 failing asks for retry 1 (10 s), attempt 10 for retry 10 (8 h).
        assert_eq!(next(1, true, HTTP_500), retry_in(10));
        assert_eq!(next(2, true, HTTP_500), retry_in(30));
        assert_eq!(next(10, true, HTTP_500), retry_in(8 * 3600));
        let timed_out = Ended::Failed {
            status: None,
            error: Some("timed out"),
            retry_after: None,
        };
        assert_eq!(next(3, true, timed_out), retry_in(60));
        assert_eq!(next(1, true, HTTP_500).status(), "pending");
        assert_eq!(
            next(1, true, HTTP_500).next_at(now()),
            now() + chrono::Duration::seconds(10)
        );
    }

    #[test]
    fn retries_are_jittered_by_up_to_twenty_percent() {
        assert_eq!(jittered(1, true, HTTP_500, 1.0), retry_in(12));
        assert_eq!(jittered(1, true, HTTP_500, -1.0), retry_in(8));
        assert_eq!(jittered(1, true, HTTP_500, 0.5), retry_in(11));
    }

    #[test]
    fn when_the_tenth_retry_fails_the_delivery_fails_and_the_webhook_is_disabled() {
        assert_eq!(MAX_RETRIES, 10);
        let last = next(11, true, HTTP_500);
        let reason = "All 10 retries of event evt_1 failed; the last error was: HTTP 500";
        assert_eq!(last, failure(Some(reason)));
        assert_eq!((last.status(), last.next_at(now())), ("failed", now()));
        let reason = "All 10 retries of event evt_1 failed; the last error was: no answer";
        assert_eq!(next(11, true, failed(502, None, None)), failure(Some(reason)));
        // Past the last retry (a resend of a failed delivery) it only fails.
        assert_eq!(next(12, true, HTTP_500), failure(None));
    }

    #[test]
    fn retry_after_on_429_and_503_is_kept_between_the_scheduled_delay_and_twice_it() {
        // Attempt 2 failing asks for retry 2: 30 s on the schedule; jitter does not apply.
        for status in [429, 503] {
            let asked = |value| jittered(2, true, failed(status, None, Some(value)), 1.0);
            assert_eq!(asked("45"), retry_in(45));
            assert_eq!(asked("1"), retry_in(30), "never sooner");
            assert_eq!(asked("3600"), retry_in(60), "never later than twice");
            assert_eq!(asked("Sun, 22 Nov 2026 10:00:50 GMT"), retry_in(50));
            assert_eq!(asked("soon"), retry_in(36), "unreadable: the schedule, jittered");
        }
        // Only those two statuses are listened to, and not past the last retry.
        assert_eq!(next(2, true, failed(500, None, Some("45"))), retry_in(30));
        let last = next(11, true, failed(429, None, Some("45")));
        assert!(matches!(last, Next::Failed { disable: Some(_) }));
    }

    #[test]
    fn gone_fails_at_once_and_disables_with_or_without_retries() {
        let gone = failed(410, Some("HTTP 410"), None);
        let reason = "The endpoint answered 410 Gone: it asked to receive no more events";
        for (number, retry_on_error) in [(1, true), (1, false), (5, true), (11, true)] {
            assert_eq!(next(number, retry_on_error, gone), failure(Some(reason)));
        }
    }

    #[test]
    fn without_retry_on_error_each_failure_is_final_and_disables_nothing_by_itself() {
        assert_eq!(next(1, false, HTTP_500), failure(None));
        assert_eq!(next(1, false, failed(429, None, Some("45"))), failure(None));
    }

    fn tally(nexts: &[Next]) -> Tally {
        let mut tally = Tally::default();
        for next in nexts {
            tally.count(next);
        }
        tally
    }

    #[test]
    fn a_batch_counts_errors_and_the_failures_after_its_last_success() {
        let counted = tally(&[failure(None), retry_in(10), failure(None)]);
        assert_eq!(
            (counted.errors, counted.reset, counted.failed_after),
            (3, false, 2)
        );
        assert!(counted.changes_counters());
        let retried = tally(&[retry_in(10)]);
        assert_eq!(
            (retried.errors, retried.failed_after),
            (1, 0),
            "a retry is no failed delivery"
        );
    }

    #[test]
    fn a_success_resets_the_count_and_alone_changes_no_counter() {
        let counted = tally(&[failure(None), Next::Succeeded, retry_in(10), failure(None)]);
        assert_eq!(
            (counted.errors, counted.reset, counted.failed_after),
            (3, true, 1)
        );
        let counted = tally(&[failure(None), Next::Succeeded]);
        assert_eq!(
            (counted.errors, counted.reset, counted.failed_after),
            (1, true, 0)
        );
        let counted = tally(&[Next::Succeeded]);
        assert!(counted.reset && !counted.changes_counters());
    }

    #[test]
    fn a_reason_to_disable_outlives_a_later_success_and_the_last_one_wins() {
        let gone = tally(&[failure(Some("gone")), Next::Succeeded]);
        assert_eq!(gone.disable.as_deref(), Some("gone"));
        assert!(gone.changes_counters());
        let last = tally(&[failure(Some("gone")), failure(None), failure(Some("last"))]);
        assert_eq!(last.disable.as_deref(), Some("last"));
    }

    #[test]
    fn without_retries_the_eleventh_failure_in_a_row_disables_and_the_tenth_does_not() {
        assert_eq!(MAX_CONSECUTIVE_FAILURES, 11);
        assert_eq!(disable_reason(None, false, 10), None);
        let reason = "11 deliveries in a row failed (retry on error is off)";
        assert_eq!(disable_reason(None, false, 11).as_deref(), Some(reason));
        assert_eq!(disable_reason(None, false, 12).as_deref(), Some(reason));
        // With retries on, the count alone disables nothing.
        assert_eq!(disable_reason(None, true, 50), None);
        // The batch's own reason comes first.
        assert_eq!(disable_reason(Some("gone"), false, 11).as_deref(), Some("gone"));
        assert_eq!(disable_reason(Some("gone"), true, 0).as_deref(), Some("gone"));
    }
}
