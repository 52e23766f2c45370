//! Replay (SPEC 9c): after a receiver's outage, send again what a webhook's deliveries in a
//! time range did (failed, succeeded, or either), seeing how many first. The same rows go
//! back through the normal retry path, so receivers get the same `webhook-id` and body,
//! and the worker's turns between webhooks keep a large replay from starving the others.

use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use diesel::Connection as _;
use diesel::PgConnection;

use super::webhooks::record;
use super::{Actor, AppError};
use crate::models::delivery::{Delivery, DeliveryStatus, ReplayScope, notify};
use crate::models::event_type::EventType;
use crate::models::webhook::{Scope, Webhook};
use crate::state::AppState;

/// At most this many deliveries are sent again by one replay.
pub const MAX_REPLAY: i64 = 100_000;

/// Which finished deliveries a replay takes. Pending ones are on their way already, parked
/// ones wait for their webhook's switch, and cancelled ones were dropped by a person: none
/// of those is replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Outcome {
    #[default]
    Failed,
    Succeeded,
    /// Failed or succeeded.
    Any,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Outcome::Failed, Outcome::Succeeded, Outcome::Any];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Failed => "failed",
            Outcome::Succeeded => "succeeded",
            Outcome::Any => "any",
        }
    }

    /// How the form offers it.
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Failed => "Failed",
            Outcome::Succeeded => "Succeeded",
            Outcome::Any => "Failed or succeeded",
        }
    }

    fn statuses(self) -> &'static [DeliveryStatus] {
        match self {
            Outcome::Failed => &[DeliveryStatus::Failed],
            Outcome::Succeeded => &[DeliveryStatus::Succeeded],
            Outcome::Any => &[DeliveryStatus::Failed, DeliveryStatus::Succeeded],
        }
    }
}

impl FromStr for Outcome {
    type Err = String;
    fn from_str(text: &str) -> Result<Outcome, String> {
        match text {
            "" => Ok(Outcome::default()),
            _ => Outcome::ALL
                .into_iter()
                .find(|o| o.as_str() == text)
                .ok_or_else(|| {
                    let shown: String = text.chars().take(50).collect();
                    format!("`{shown}` is not an outcome a replay takes: use failed, succeeded or any.")
                }),
        }
    }
}

/// How the doors write times: the API in RFC 3339, the page's `datetime-local` inputs in
/// the tenant's timezone (the one the delivery log shows).
#[derive(Debug, Clone, Default)]
pub enum Times {
    #[default]
    Rfc3339,
    Local {
        timezone: String,
    },
}

/// A replay as asked for, not yet checked.
#[derive(Debug, Clone, Default)]
pub struct Ask {
    pub since: String,
    pub until: String,
    pub outcome: String,
    pub event_types: Vec<String>,
    pub times: Times,
}

/// A replay's choices, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Choices {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub outcome: Outcome,
    /// Every type when empty.
    pub event_types: Vec<String>,
}

/// What a replay did, or (a dry run) would do.
#[derive(Debug, Clone)]
pub struct Replayed {
    pub webhook_number: i32,
    pub choices: Choices,
    pub count: i64,
    pub dry_run: bool,
}

/// The webhook a replay is asked for (the page's dialog shows its types and status).
pub async fn webhook(state: &AppState, scope: impl Into<Scope>, id: i64) -> Result<Webhook, AppError> {
    let scope = scope.into();
    state.db(move |conn| Ok(Webhook::find(conn, scope, id)?)).await
}

/// Counts (`dry_run`) or replays the deliveries of webhook `id` that `ask` chooses. The
/// same checks either way, so a dry run answers what the replay would.
pub async fn replay(
    state: &AppState,
    scope: impl Into<Scope>,
    id: i64,
    ask: Ask,
    dry_run: bool,
    actor: Actor,
) -> Result<Replayed, AppError> {
    let (scope, now) = (scope.into(), state.clock.now());
    state
        .db(move |conn| replay_in(conn, scope, id, &ask, dry_run, &actor, now))
        .await
}

/// [`replay`] on a connection the caller holds (tests, the command line).
pub fn replay_in(
    conn: &mut PgConnection,
    scope: impl Into<Scope>,
    id: i64,
    ask: &Ask,
    dry_run: bool,
    actor: &Actor,
    now: DateTime<Utc>,
) -> Result<Replayed, AppError> {
    let webhooks = scope.into();
    let tenant_id = webhooks.tenant_id;
    conn.transaction(|conn| {
        // Locked for a replay, so that it is not switched off between the check and the
        // sending (its new pending deliveries would be parked at once).
        let webhook = if dry_run {
            Webhook::find(conn, webhooks, id)?
        } else {
            Webhook::lock(conn, webhooks, id)?
        };
        if !webhook.is_active() {
            return Err(AppError::Conflict(format!(
                "Webhook No {} is {}: replayed deliveries would only be parked. Switch it on first.",
                webhook.number,
                webhook.status_label().to_lowercase()
            )));
        }
        let catalog = EventType::all(conn)?;
        let choices = check(ask, &catalog)?;
        let scope = ReplayScope {
            webhook_id: webhook.id,
            since: choices.since,
            until: choices.until,
            statuses: choices.outcome.statuses(),
            event_types: &choices.event_types,
        };
        let count = Delivery::replay_count(conn, tenant_id, &scope)?;
        too_many(count)?;
        if dry_run {
            return Ok(Replayed {
                webhook_number: webhook.number,
                choices,
                count,
                dry_run,
            });
        }
        // Counted again by the update itself: what it sent is the answer, and a range that
        // grew past the limit meanwhile is refused all the same.
        let count = Delivery::replay(conn, tenant_id, &scope, now)? as i64;
        too_many(count)?;
        record(
            conn,
            actor,
            &webhook,
            "webhook.replayed",
            serde_json::json!({
                "since": choices.since,
                "until": choices.until,
                "outcome": choices.outcome.as_str(),
                "event_types": choices.event_types,
                "count": count,
            }),
        )?;
        if count > 0 {
            notify(conn)?;
        }
        Ok(Replayed {
            webhook_number: webhook.number,
            choices,
            count,
            dry_run,
        })
    })
}

fn too_many(count: i64) -> Result<(), AppError> {
    if count > MAX_REPLAY {
        return Err(AppError::Validation {
            field: None,
            message: format!(
                "{} deliveries match; one replay sends at most {}. Narrow the range (or choose fewer event types) and replay it in parts.",
                thousands(count),
                thousands(MAX_REPLAY)
            ),
        });
    }
    Ok(())
}

/// Checks the choices: both times, `since` before `until`, a known outcome, and event types
/// of the catalog (repeats dropped).
pub fn check(ask: &Ask, catalog: &[EventType]) -> Result<Choices, AppError> {
    let times = &ask.times;
    let since = time("since", &ask.since, times)?;
    let until = time("until", &ask.until, times)?;
    if since >= until {
        let message = match times {
            Times::Rfc3339 => "`since` must be before `until`.",
            Times::Local { .. } => "The start must be before the end.",
        };
        return Err(AppError::validation("since", message));
    }
    let outcome = ask
        .outcome
        .trim()
        .parse()
        .map_err(|message: String| AppError::validation("outcome", message))?;
    let mut event_types: Vec<String> = Vec::new();
    for code in &ask.event_types {
        let code = code.trim();
        if !catalog.iter().any(|t| t.code == code) {
            return Err(AppError::validation(
                "event_types",
                format!(
                    "`{}` is not an event type of the catalog.",
                    code.chars().take(100).collect::<String>()
                ),
            ));
        }
        if !event_types.iter().any(|c| c == code) {
            event_types.push(code.to_owned());
        }
    }
    Ok(Choices {
        since,
        until,
        outcome,
        event_types,
    })
}

/// A time of the range, as the door writes it.
fn time(field: &'static str, text: &str, times: &Times) -> Result<DateTime<Utc>, AppError> {
    let text = text.trim();
    match times {
        Times::Rfc3339 => {
            let example = "an RFC 3339 time such as 2026-11-22T02:00:00Z";
            if text.is_empty() {
                return Err(AppError::validation(
                    field,
                    format!("`{field}` is required: {example}."),
                ));
            }
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|_| AppError::validation(field, format!("`{field}` must be {example}.")))
        }
        Times::Local { timezone } => {
            let name = if field == "since" { "start" } else { "end" };
            if text.is_empty() {
                return Err(AppError::validation(
                    field,
                    format!("Enter the {name} of the range."),
                ));
            }
            let local = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|format| NaiveDateTime::parse_from_str(text, format).ok())
                .ok_or_else(|| {
                    AppError::validation(
                        field,
                        format!("Enter the {name} as a date and time, e.g. 2026-11-22 02:00."),
                    )
                })?;
            in_timezone(field, local, timezone)
        }
    }
}

/// A wall-clock time of `timezone` (UTC when it is not one), the earlier one when the
/// clocks go back; a time the clocks skip is refused.
fn in_timezone(field: &'static str, local: NaiveDateTime, timezone: &str) -> Result<DateTime<Utc>, AppError> {
    let Ok(tz) = timezone.parse::<chrono_tz::Tz>() else {
        return Ok(Utc.from_utc_datetime(&local));
    };
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| {
            AppError::validation(
                field,
                format!(
                    "{} does not exist in {timezone}: the clocks skip it. Choose a time an hour later.",
                    local.format("%Y-%m-%d %H:%M")
                ),
            )
        })
}

/// `142317` as `142,317`.
pub fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ask(since: &str, until: &str) -> Ask {
        Ask {
            since: since.into(),
            until: until.into(),
            ..Ask::default()
        }
    }

    /// [`super::check`] with the times written as `times`.
    fn check(ask: &Ask, times: &Times, catalog: &[EventType]) -> Result<Choices, AppError> {
        let ask = Ask {
            times: times.clone(),
            ..ask.clone()
        };
        super::check(&ask, catalog)
    }

    fn field_of(err: AppError) -> Option<&'static str> {
        match err {
            AppError::Validation { field, .. } => field,
            other => panic!("not a validation error: {other:?}"),
        }
    }

    #[test]
    fn rfc3339_times_with_offsets_become_utc_and_the_outcome_defaults_to_failed() {
        let choices = check(
            &ask("2026-11-22T03:00:00+01:00", "2026-11-22T04:00:00Z"),
            &Times::Rfc3339,
            &[],
        )
        .unwrap();
        assert_eq!(choices.since.to_rfc3339(), "2026-11-22T02:00:00+00:00");
        assert_eq!(choices.outcome, Outcome::Failed);
        assert!(choices.event_types.is_empty());
    }

    #[test]
    fn bad_times_an_empty_range_and_unknown_outcomes_name_their_field() {
        let times = Times::Rfc3339;
        assert_eq!(
            field_of(check(&ask("yesterday", "2026-11-22T04:00:00Z"), &times, &[]).unwrap_err()),
            Some("since")
        );
        assert_eq!(
            field_of(check(&ask("2026-11-22T04:00:00Z", ""), &times, &[]).unwrap_err()),
            Some("until")
        );
        let same = ask("2026-11-22T04:00:00Z", "2026-11-22T04:00:00Z");
        assert_eq!(field_of(check(&same, &times, &[]).unwrap_err()), Some("since"));
        let mut odd = ask("2026-11-22T02:00:00Z", "2026-11-22T04:00:00Z");
        odd.outcome = "all".into();
        assert_eq!(field_of(check(&odd, &times, &[]).unwrap_err()), Some("outcome"));
        odd.outcome = "any".into();
        odd.event_types = vec!["booking.nope".into()];
        assert_eq!(
            field_of(check(&odd, &times, &[]).unwrap_err()),
            Some("event_types")
        );
    }

    #[test]
    fn form_times_are_read_in_the_tenants_timezone() {
        let times = Times::Local {
            timezone: "Europe/Vienna".into(),
        };
        let choices = check(&ask("2026-07-01T02:00", "2026-07-01T04:00"), &times, &[]).unwrap();
        assert_eq!(
            choices.since.to_rfc3339(),
            "2026-07-01T00:00:00+00:00",
            "CEST is UTC+2"
        );
        // 02:30 on the last Sunday of March does not exist in Vienna.
        let skipped = check(&ask("2026-03-29T02:30", "2026-03-29T05:00"), &times, &[]).unwrap_err();
        assert_eq!(field_of(skipped), Some("since"));
        let utc = check(
            &ask("2026-07-01T02:00", "2026-07-01T04:00"),
            &Times::Local {
                timezone: "UTC".into(),
            },
            &[],
        )
        .unwrap();
        assert_eq!(utc.since.to_rfc3339(), "2026-07-01T02:00:00+00:00");
    }

    #[test]
    fn counts_read_with_thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
