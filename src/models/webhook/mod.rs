//! Webhooks: a tenant's endpoints, what each subscribes to, and its credentials (the
//! signing secret, sealed, and the webhook's own API key, hashed).

mod credentials;
mod filter;
mod glance;
mod headers;
mod scope;
mod status;

use chrono::{DateTime, Utc};
use diesel::dsl::count_star;
use diesel::pg::Pg;
use diesel::prelude::*;

use crate::crypto::{SecretBox, new_signing_secret};
use crate::db::prepared::prepared;
use crate::schema::{tenants, webhooks};
use crate::validation::webhook::{MAX_WEBHOOKS_PER_TENANT, Valid};
pub use credentials::API_KEY_PREFIX;
use credentials::new_api_key;
pub use filter::{Filter, PAGE_SIZE, Page, SORT_KEYS};
use filter::{filtered, scoped, sorted};
pub use glance::Glance;
use headers::StoredHeader;
pub use headers::{ShownHeader, UNREADABLE};
pub use scope::Scope;
pub use status::Status;

/// How long a rotated-out signing secret keeps signing alongside the new one.
pub const SECRET_OVERLAP_HOURS: i64 = 24;

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks, check_for_backend(Pg))]
pub(super) struct WebhookRow {
    id: i64,
    tenant_id: i64,
    number: i32,
    url: String,
    description: String,
    events: Vec<Option<String>>,
    connection_id: Option<i64>,
    status: String,
    disabled_reason: Option<String>,
    disabled_at: Option<DateTime<Utc>>,
    api_key_enabled: bool,
    api_key_prefix: String,
    secret_ciphertext: Vec<u8>,
    previous_secret_ciphertext: Option<Vec<u8>>,
    previous_secret_expires_at: Option<DateTime<Utc>>,
    headers: serde_json::Value,
    retry_on_error: bool,
    use_customer_language: bool,
    capabilities: Vec<Option<String>>,
    event_count: i64,
    error_count: i64,
    consecutive_failures: i32,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    ordered: bool,
    filter: Option<String>,
    filtered_count: i64,
    filter_error_count: i64,
    filter_last_error: Option<String>,
    filter_last_error_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub id: i64,
    pub tenant_id: i64,
    pub number: i32,
    pub url: String,
    pub description: String,
    pub events: Vec<String>,
    pub connection_id: Option<i64>,
    pub status: Status,
    pub disabled_reason: Option<String>,
    pub disabled_at: Option<DateTime<Utc>>,
    pub api_key_enabled: bool,
    pub api_key_prefix: String,
    pub secret_ciphertext: Vec<u8>,
    pub previous_secret_ciphertext: Option<Vec<u8>>,
    pub previous_secret_expires_at: Option<DateTime<Utc>>,
    stored_headers: Vec<StoredHeader>,
    pub retry_on_error: bool,
    pub use_customer_language: bool,
    pub capabilities: Vec<String>,
    pub event_count: i64,
    pub error_count: i64,
    pub consecutive_failures: i32,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Deliveries of one ordering key go out one at a time, in publish order.
    pub ordered: bool,
    /// Only events for which this CEL expression is true get a delivery (SPEC 9d).
    pub filter: Option<String>,
    /// Events of its types and connection the filter skipped.
    pub filtered_count: i64,
    /// Events the filter failed on (skipped too), and the last failure.
    pub filter_error_count: i64,
    pub filter_last_error: Option<String>,
    pub filter_last_error_at: Option<DateTime<Utc>>,
}

impl TryFrom<WebhookRow> for Webhook {
    type Error = String;

    /// A stored value that does not read is an error naming the row, never a default.
    fn try_from(row: WebhookRow) -> Result<Self, String> {
        let status = row
            .status
            .parse()
            .map_err(|message| format!("webhook {}: {message}", row.id))?;
        let stored_headers = serde_json::from_value(row.headers)
            .map_err(|err| format!("webhook {}: the stored headers do not read: {err}", row.id))?;
        Ok(Webhook {
            id: row.id,
            tenant_id: row.tenant_id,
            number: row.number,
            url: row.url,
            description: row.description,
            events: row.events.into_iter().flatten().collect(),
            connection_id: row.connection_id,
            status,
            disabled_reason: row.disabled_reason,
            disabled_at: row.disabled_at,
            api_key_enabled: row.api_key_enabled,
            api_key_prefix: row.api_key_prefix,
            secret_ciphertext: row.secret_ciphertext,
            previous_secret_ciphertext: row.previous_secret_ciphertext,
            previous_secret_expires_at: row.previous_secret_expires_at,
            stored_headers,
            retry_on_error: row.retry_on_error,
            use_customer_language: row.use_customer_language,
            capabilities: row.capabilities.into_iter().flatten().collect(),
            event_count: row.event_count,
            error_count: row.error_count,
            consecutive_failures: row.consecutive_failures,
            created_at: row.created_at,
            updated_at: row.updated_at,
            ordered: row.ordered,
            filter: row.filter,
            filtered_count: row.filtered_count,
            filter_error_count: row.filter_error_count,
            filter_last_error: row.filter_last_error,
            filter_last_error_at: row.filter_last_error_at,
        })
    }
}

pub(super) fn webhook(row: WebhookRow) -> QueryResult<Webhook> {
    Webhook::try_from(row).map_err(|message| diesel::result::Error::DeserializationError(message.into()))
}

fn webhooks(rows: Vec<WebhookRow>) -> QueryResult<Vec<Webhook>> {
    rows.into_iter().map(webhook).collect()
}

/// Why saving a webhook was refused.
#[derive(Debug, thiserror::Error)]
pub enum SaveError {
    #[error(
        "Your plan allows at most {MAX_WEBHOOKS_PER_TENANT} webhooks. Delete one you no longer need first."
    )]
    LimitReached,
    #[error(transparent)]
    Database(#[from] diesel::result::Error),
}

#[derive(Insertable)]
#[diesel(table_name = webhooks)]
struct NewWebhook<'a> {
    tenant_id: i64,
    number: i32,
    url: &'a str,
    description: &'a str,
    events: Vec<Option<String>>,
    connection_id: Option<i64>,
    status: &'a str,
    api_key_enabled: bool,
    api_key_hash: String,
    api_key_prefix: String,
    secret_ciphertext: Vec<u8>,
    headers: serde_json::Value,
    retry_on_error: bool,
    use_customer_language: bool,
    capabilities: Vec<Option<String>>,
    ordered: bool,
    filter: Option<&'a str>,
}

fn some_all(items: &[String]) -> Vec<Option<String>> {
    items.iter().cloned().map(Some).collect()
}

impl Webhook {
    pub fn status_label(&self) -> &'static str {
        self.status.label()
    }

    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// Reads a webhook and locks its row `FOR UPDATE` before its deliveries are written:
    /// the order every writer of deliveries keeps (the delivery worker takes `FOR KEY
    /// SHARE` on the webhook first, which this waits for and holds up), so the two never
    /// wait for each other's delivery rows.
    pub fn lock(conn: &mut PgConnection, scope: impl Into<Scope>, id: i64) -> QueryResult<Webhook> {
        let scope = scope.into();
        let locked = webhooks::table
            .filter(webhooks::tenant_id.eq(scope.tenant_id))
            .filter(webhooks::id.eq(id))
            .select(WebhookRow::as_select())
            .for_update()
            .first(conn)
            .and_then(webhook)?;
        if scope.admits(&locked) {
            Ok(locked)
        } else {
            Err(diesel::result::Error::NotFound)
        }
    }

    pub fn find(conn: &mut PgConnection, scope: impl Into<Scope>, id: i64) -> QueryResult<Webhook> {
        scoped(scope.into())
            .filter(webhooks::id.eq(id))
            .select(WebhookRow::as_select())
            .first(conn)
            .and_then(webhook)
    }

    /// One page of the table, filtered and sorted.
    pub fn list(conn: &mut PgConnection, scope: impl Into<Scope>, filter: &Filter) -> QueryResult<Page> {
        let scope = scope.into();
        let total: i64 = filtered(scope, filter).count().get_result(conn)?;
        let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
        let page = filter.page().min(pages);
        let rows = sorted(filtered(scope, filter), filter)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
            .select(WebhookRow::as_select())
            .load(conn)?
            .into_iter()
            .map(webhook)
            .collect::<QueryResult<_>>()?;
        Ok(Page {
            rows,
            total,
            page,
            pages,
        })
    }

    /// Every row of the filtered view, all pages (the Excel export), in batches through a
    /// callback so memory stays flat however many there are.
    pub fn for_each_filtered(
        conn: &mut PgConnection,
        scope: impl Into<Scope>,
        filter: &Filter,
        mut each: impl FnMut(Webhook) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let scope = scope.into();
        let batch = 500;
        let mut offset = 0;
        loop {
            let rows: Vec<WebhookRow> = sorted(filtered(scope, filter), filter)
                .limit(batch)
                .offset(offset)
                .select(WebhookRow::as_select())
                .load(conn)?;
            let done = (rows.len() as i64) < batch;
            for row in rows {
                each(webhook(row)?)?;
            }
            if done {
                return Ok(());
            }
            offset += batch;
        }
    }

    /// Every webhook of a tenant (at most 100), for matching events.
    pub fn list_all(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<Vec<Webhook>> {
        webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .order(webhooks::number.asc())
            .select(WebhookRow::as_select())
            .load(conn)
            .and_then(webhooks)
    }

    /// Webhooks by id, whatever their tenant: for the delivery engine, which works
    /// across tenants on rows it already claimed.
    pub fn by_ids(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<Webhook>> {
        webhooks::table
            .filter(webhooks::id.eq_any(ids))
            .select(WebhookRow::as_select())
            .load(conn)
            .and_then(webhooks)
    }

    /// Failed attempts since the last success, by webhook id (a column only the delivery
    /// worker writes, left out of `schema.rs`): of those with any.
    pub fn failing_attempts(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<(i64, i32)>> {
        #[derive(QueryableByName)]
        struct Failing {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            id: i64,
            #[diesel(sql_type = diesel::sql_types::Integer)]
            failing_attempts: i32,
        }
        let rows: Vec<Failing> =
            prepared("SELECT id, failing_attempts FROM webhooks WHERE id = ANY($1) AND failing_attempts > 0")
                .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(ids)
                .load(conn)?;
        Ok(rows.into_iter().map(|r| (r.id, r.failing_attempts)).collect())
    }

    pub fn count(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<i64> {
        webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .count()
            .get_result(conn)
    }

    /// Creates a webhook with the next number of its tenant, a new signing secret and a new
    /// API key, which is returned (it is never readable again).
    pub fn create(
        conn: &mut PgConnection,
        tenant_id: i64,
        input: &Valid,
        secrets: &SecretBox,
    ) -> Result<(Webhook, String), SaveError> {
        conn.transaction(|conn| {
            // The tenant row is the lock that serialises numbering and the plan limit.
            let number: i32 = tenants::table
                .find(tenant_id)
                .select(tenants::next_webhook_number)
                .for_update()
                .first(conn)?;
            if Webhook::count(conn, tenant_id)? >= MAX_WEBHOOKS_PER_TENANT {
                return Err(SaveError::LimitReached);
            }
            let (key, api_key_hash, api_key_prefix) = new_api_key();
            let row: WebhookRow = diesel::insert_into(webhooks::table)
                .values(NewWebhook {
                    tenant_id,
                    number,
                    url: &input.url,
                    description: &input.description,
                    events: some_all(&input.events),
                    connection_id: input.connection_id,
                    status: if input.active { "active" } else { "inactive" },
                    api_key_enabled: input.api_key_enabled,
                    api_key_hash,
                    api_key_prefix,
                    secret_ciphertext: secrets.seal(&new_signing_secret()),
                    headers: headers::seal(&input.headers, secrets),
                    retry_on_error: input.retry_on_error,
                    use_customer_language: input.use_customer_language,
                    capabilities: some_all(&input.capabilities),
                    ordered: input.ordered,
                    filter: input.filter.as_deref(),
                })
                .returning(WebhookRow::as_returning())
                .get_result(conn)?;
            diesel::update(tenants::table.find(tenant_id))
                .set(tenants::next_webhook_number.eq(number + 1))
                .execute(conn)?;
            Ok((webhook(row)?, key))
        })
    }

    /// Saves the edited fields (not the status: see [`Webhook::set_status`]).
    pub fn update(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        input: &Valid,
        secrets: &SecretBox,
    ) -> QueryResult<Webhook> {
        conn.transaction(|conn| {
            Webhook::lock(conn, tenant_id, id)?;
            let row: WebhookRow = diesel::update(
                webhooks::table
                    .filter(webhooks::tenant_id.eq(tenant_id))
                    .filter(webhooks::id.eq(id)),
            )
            .set((
                webhooks::url.eq(&input.url),
                webhooks::description.eq(&input.description),
                webhooks::events.eq(some_all(&input.events)),
                webhooks::connection_id.eq(input.connection_id),
                webhooks::api_key_enabled.eq(input.api_key_enabled),
                webhooks::headers.eq(headers::seal(&input.headers, secrets)),
                webhooks::retry_on_error.eq(input.retry_on_error),
                webhooks::use_customer_language.eq(input.use_customer_language),
                webhooks::capabilities.eq(some_all(&input.capabilities)),
                webhooks::ordered.eq(input.ordered),
                webhooks::filter.eq(input.filter.as_deref()),
                webhooks::updated_at.eq(diesel::dsl::now),
            ))
            .returning(WebhookRow::as_returning())
            .get_result(conn)?;
            webhook(row)
        })
    }

    /// Switches a webhook on (clearing an automatic disable and its failure count) or off
    /// by a person. Its deliveries are the caller's: see `Delivery::park_waiting` and
    /// `Delivery::release_parked`.
    pub fn set_status(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        active: bool,
        now: DateTime<Utc>,
    ) -> QueryResult<Webhook> {
        let target = webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .filter(webhooks::id.eq(id));
        let row: WebhookRow = if active {
            let row = diesel::update(target)
                .set((
                    webhooks::status.eq(Status::Active.as_str()),
                    webhooks::disabled_reason.eq(None::<String>),
                    webhooks::disabled_at.eq(None::<DateTime<Utc>>),
                    webhooks::consecutive_failures.eq(0),
                    webhooks::updated_at.eq(now),
                ))
                .returning(WebhookRow::as_returning())
                .get_result(conn)?;
            // Failed attempts count again from a clean slate (not in `schema.rs`).
            diesel::sql_query("UPDATE webhooks SET failing_attempts = 0 WHERE id = $1")
                .bind::<diesel::sql_types::BigInt, _>(id)
                .execute(conn)?;
            row
        } else {
            diesel::update(target)
                .set((
                    webhooks::status.eq(Status::Inactive.as_str()),
                    webhooks::disabled_reason.eq(None::<String>),
                    webhooks::disabled_at.eq(Some(now)),
                    webhooks::updated_at.eq(now),
                ))
                .returning(WebhookRow::as_returning())
                .get_result(conn)?
        };
        webhook(row)
    }

    /// Deletes the webhook's row; its deliveries and attempts go first (`Delivery::
    /// delete_of_webhook`), in the same transaction, after [`Webhook::lock`].
    pub fn delete_row(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<()> {
        let deleted = diesel::delete(
            webhooks::table
                .filter(webhooks::tenant_id.eq(tenant_id))
                .filter(webhooks::id.eq(id)),
        )
        .execute(conn)?;
        if deleted == 0 {
            return Err(diesel::result::Error::NotFound);
        }
        Ok(())
    }

    pub fn status_counts(conn: &mut PgConnection, scope: impl Into<Scope>) -> QueryResult<StatusCounts> {
        let scope = scope.into();
        let tenants = webhooks::table.filter(webhooks::tenant_id.eq(scope.tenant_id));
        let rows: Vec<(String, i64)> = match scope.connection_id {
            None => tenants
                .group_by(webhooks::status)
                .select((webhooks::status, count_star()))
                .load(conn)?,
            Some(id) => tenants
                .filter(webhooks::connection_id.eq(id))
                .group_by(webhooks::status)
                .select((webhooks::status, count_star()))
                .load(conn)?,
        };
        Ok(rows
            .into_iter()
            .fold(StatusCounts::default(), |mut counts, (status, n)| {
                counts.total += n;
                if status == "auto_disabled" {
                    counts.auto_disabled += n;
                }
                counts
            }))
    }
}

/// How many webhooks a tenant has, and how many Hookboard switched off.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusCounts {
    pub total: i64,
    pub auto_disabled: i64,
}
