//! Events: publishing (one or a batch, through the outbox) and reading them back. A
//! tenant key reads all of the tenant's events; a webhook's key what that webhook would
//! receive. A page of the catch-up feed is bounded by count and by bytes of bodies, and
//! planned from the bodies' sizes before any body is read, so a page of large events never
//! costs more memory than its budget.

use diesel::PgConnection;

use super::AppError;
use crate::delivery::outbox::{self, Accepted, NewEvent};
use crate::models::event::{Event, EventScope, Sized};
use crate::models::tenant::Tenant;
use crate::state::AppState;
use crate::validation::filter::{self, Compiled, Event as FilterEvent};

/// At most this many events on one page of the feed.
pub const MAX_PAGE_EVENTS: i64 = 1000;
/// At most this many bytes of event bodies on one page of the feed (SPEC 6); a single
/// larger event still comes, alone on its page.
pub const MAX_PAGE_BYTES: i64 = 5 * 1024 * 1024;
/// With a filter, at most this many events are looked at for one page: a filter that
/// passes little gives short (even empty) pages whose cursor goes on, never a long request.
pub const MAX_PAGE_SCANNED: usize = 10_000;

/// Publishes events in one transaction; nothing is written unless every one is valid.
pub async fn publish(
    state: &AppState,
    tenant: &Tenant,
    events: Vec<NewEvent>,
) -> Result<Vec<Accepted>, AppError> {
    let (tenant, now) = (tenant.clone(), state.clock.now());
    state
        .db(move |conn| Ok(outbox::publish(conn, &tenant, &events, now)?))
        .await
}

/// One event, if it is in `scope` (anything else is not found).
pub async fn find(
    state: &AppState,
    tenant_id: i64,
    id: String,
    scope: EventScope,
) -> Result<Event, AppError> {
    state
        .db(move |conn| {
            let event = Event::find(conn, tenant_id, &id, &scope)?;
            match &scope.filter {
                Some(text) if !passes(filter::cached(text).ok().as_deref(), &event) => {
                    Err(AppError::NotFound)
                }
                _ => Ok(event),
            }
        })
        .await
}

/// Whether a stored event passes a webhook's filter, as it did when it was published: the
/// filter sees its type, data, connection and language. A filter that does not compile,
/// or fails on the event, passes nothing (errors count as false).
fn passes(compiled: Option<&Compiled>, event: &Event) -> bool {
    let Some(compiled) = compiled else {
        return false;
    };
    let Ok(body) = serde_json::from_str::<serde_json::Value>(&event.body) else {
        return false;
    };
    let connection = body.get("connection").and_then(|c| c.as_str());
    let data = body.get("data").unwrap_or(&serde_json::Value::Null);
    let seen = FilterEvent::new(&event.event_type, data, connection, event.language.as_deref());
    compiled.evaluate(&seen) == Ok(true)
}

/// A page of the feed and where the next one starts (none when nothing more is there).
pub struct Page {
    pub events: Vec<Event>,
    pub next_after: Option<String>,
}

/// The events after `after`, oldest first: at most `limit` and at most
/// [`MAX_PAGE_BYTES`] of bodies (at least one event when any is there).
pub async fn page(
    state: &AppState,
    tenant_id: i64,
    after: Option<String>,
    scope: EventScope,
    limit: i64,
) -> Result<Page, AppError> {
    if !(1..=MAX_PAGE_EVENTS).contains(&limit) {
        return Err(AppError::validation(
            "limit",
            format!("`limit` must be between 1 and {MAX_PAGE_EVENTS}."),
        ));
    }
    state
        .db(move |conn| {
            if let Some(text) = scope.filter.clone() {
                let compiled = filter::cached(&text).ok();
                return filtered_page(conn, tenant_id, after, &scope, compiled.as_deref(), limit);
            }
            let sizes = Event::sizes_after(conn, tenant_id, after.as_deref(), &scope, limit + 1)?;
            let (taken, more) = plan(&sizes, limit, MAX_PAGE_BYTES);
            let ids: Vec<String> = sizes[..taken].iter().map(|s| s.id.clone()).collect();
            let events = Event::with_ids(conn, tenant_id, &ids)?;
            let next_after = more.then(|| ids.last().cloned()).flatten();
            Ok(Page { events, next_after })
        })
        .await
}

/// A page of the feed for a webhook's key with a filter: the events after `after` are
/// read in windows of at most [`MAX_PAGE_BYTES`] of bodies and kept where the filter
/// passes, until the page is full or [`MAX_PAGE_SCANNED`] were looked at. The cursor is
/// the last event looked at and passed over or kept.
fn filtered_page(
    conn: &mut PgConnection,
    tenant_id: i64,
    after: Option<String>,
    scope: &EventScope,
    compiled: Option<&Compiled>,
    limit: i64,
) -> Result<Page, AppError> {
    let mut events = Vec::new();
    let mut bytes = 0;
    let mut scanned = 0;
    let mut cursor = after;
    loop {
        let sizes = Event::sizes_after(conn, tenant_id, cursor.as_deref(), scope, MAX_PAGE_EVENTS)?;
        let exhausted = (sizes.len() as i64) < MAX_PAGE_EVENTS;
        let mut rest = &sizes[..];
        while !rest.is_empty() {
            let (taken, _) = plan(rest, MAX_PAGE_EVENTS, MAX_PAGE_BYTES);
            let ids: Vec<String> = rest[..taken].iter().map(|s| s.id.clone()).collect();
            let mut loaded: std::collections::HashMap<String, Event> =
                Event::with_ids(conn, tenant_id, &ids)?
                    .into_iter()
                    .map(|e| (e.id.clone(), e))
                    .collect();
            for size in &rest[..taken] {
                // An event removed since its size was read is passed over.
                if let Some(event) = loaded.remove(&size.id)
                    && passes(compiled, &event)
                {
                    if events.len() as i64 == limit
                        || (!events.is_empty() && bytes + size.bytes > MAX_PAGE_BYTES)
                    {
                        return Ok(Page {
                            events,
                            next_after: cursor,
                        });
                    }
                    bytes += size.bytes;
                    events.push(event);
                }
                cursor = Some(size.id.clone());
                scanned += 1;
                if scanned >= MAX_PAGE_SCANNED {
                    return Ok(Page {
                        events,
                        next_after: cursor,
                    });
                }
            }
            rest = &rest[taken..];
        }
        if exhausted {
            return Ok(Page {
                events,
                next_after: None,
            });
        }
    }
}

/// How many of `sizes` (in order) fit a page of `limit` events and `budget` bytes, and
/// whether more follow. The first event always fits, however large.
fn plan(sizes: &[Sized], limit: i64, budget: i64) -> (usize, bool) {
    let mut bytes = 0;
    let mut taken = 0;
    for size in sizes.iter().take(limit as usize) {
        if taken > 0 && bytes + size.bytes > budget {
            break;
        }
        bytes += size.bytes;
        taken += 1;
    }
    (taken, sizes.len() > taken)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(bytes: &[i64]) -> Vec<Sized> {
        bytes
            .iter()
            .enumerate()
            .map(|(i, b)| Sized {
                id: format!("evt_{i}"),
                bytes: *b,
            })
            .collect()
    }

    #[test]
    fn a_page_stops_at_its_count_or_its_bytes_and_says_whether_more_follow() {
        assert_eq!(plan(&sizes(&[10, 10, 10]), 5, 100), (3, false), "all fit");
        assert_eq!(
            plan(&sizes(&[10, 10, 10, 10]), 3, 100),
            (3, true),
            "the count cuts"
        );
        assert_eq!(plan(&sizes(&[40, 40, 40]), 5, 100), (2, true), "the bytes cut");
        assert_eq!(
            plan(&sizes(&[40, 60, 1]), 5, 100),
            (2, true),
            "exactly the budget fits"
        );
        assert_eq!(
            plan(&sizes(&[500, 1]), 5, 100),
            (1, true),
            "one event larger than the budget still comes"
        );
        assert_eq!(plan(&sizes(&[]), 5, 100), (0, false));
    }
}
