//! Webhooks: a tenant's endpoints, what each subscribes to, and its credentials (the
//! signing secret, sealed, and the webhook's own API key, hashed).

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Duration, Utc};
use diesel::dsl::count_star;
use diesel::pg::Pg;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::delivery::notify;
use super::{random_hex, token_hash};
use crate::crypto::{SecretBox, new_signing_secret};
use crate::schema::{connections, deliveries, delivery_attempts, tenants, webhooks};
use crate::validation::webhook::{Input, MAX_WEBHOOKS_PER_TENANT, is_secret_header, mask};

/// Every webhook API key starts with this (tenant keys use `hbk_`).
pub const API_KEY_PREFIX: &str = "hbw_";
const API_KEY_VISIBLE_CHARS: usize = 12;
/// How long a rotated-out signing secret keeps signing alongside the new one.
pub const SECRET_OVERLAP_HOURS: i64 = 24;
/// Rows on one page of the webhook table.
pub const PAGE_SIZE: i64 = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Active,
    Inactive,
    AutoDisabled,
}

impl Status {
    pub const ALL: [Status; 3] = [Status::Active, Status::Inactive, Status::AutoDisabled];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Active => "active",
            Status::Inactive => "inactive",
            Status::AutoDisabled => "auto_disabled",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Status::Active => "Active",
            Status::Inactive => "Inactive",
            Status::AutoDisabled => "Auto-disabled",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Status::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
            .ok_or_else(|| format!("`{text}` is not a status (use active, inactive or auto_disabled)."))
    }
}

/// A custom header as stored: credentials are sealed, other values kept in clear.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredHeader {
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sealed: Option<String>,
}

/// A custom header as people see it: credentials masked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShownHeader {
    pub name: String,
    pub value: String,
    pub masked: bool,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = webhooks, check_for_backend(Pg))]
struct WebhookRow {
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
}

impl From<WebhookRow> for Webhook {
    fn from(row: WebhookRow) -> Self {
        Webhook {
            id: row.id,
            tenant_id: row.tenant_id,
            number: row.number,
            url: row.url,
            description: row.description,
            events: row.events.into_iter().flatten().collect(),
            connection_id: row.connection_id,
            status: row.status.parse().unwrap_or(Status::Inactive),
            disabled_reason: row.disabled_reason,
            disabled_at: row.disabled_at,
            api_key_enabled: row.api_key_enabled,
            api_key_prefix: row.api_key_prefix,
            secret_ciphertext: row.secret_ciphertext,
            previous_secret_ciphertext: row.previous_secret_ciphertext,
            previous_secret_expires_at: row.previous_secret_expires_at,
            stored_headers: serde_json::from_value(row.headers).unwrap_or_default(),
            retry_on_error: row.retry_on_error,
            use_customer_language: row.use_customer_language,
            capabilities: row.capabilities.into_iter().flatten().collect(),
            event_count: row.event_count,
            error_count: row.error_count,
            consecutive_failures: row.consecutive_failures,
            created_at: row.created_at,
            updated_at: row.updated_at,
        }
    }
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

/// The filters of the webhook table, as they appear in its query string. Values that do
/// not parse are ignored rather than refused: a bookmarked link never breaks the page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Filter {
    /// Part of the endpoint URL, any case.
    pub url: String,
    /// An event code the webhook subscribes to.
    pub event: String,
    /// `active`, `inactive` or `auto_disabled`.
    pub status: String,
    /// A connection id, or `none` for webhooks without one.
    pub connection: String,
    /// `number`, `url`, `events`, `errors` or `status`; a leading `-` sorts descending.
    pub sort: String,
    pub page: String,
}

/// The sortable columns.
pub const SORT_KEYS: [&str; 5] = ["number", "url", "events", "errors", "status"];

impl Filter {
    pub fn page(&self) -> i64 {
        self.page
            .trim()
            .parse::<i64>()
            .ok()
            .filter(|p| (1..=1_000_000).contains(p))
            .unwrap_or(1)
    }

    /// The sort column and whether it is descending.
    pub fn sort(&self) -> (&'static str, bool) {
        let descending = self.sort.starts_with('-');
        let key = self.sort.trim_start_matches('-');
        match SORT_KEYS.iter().find(|k| **k == key) {
            Some(key) => (key, descending),
            None => ("number", false),
        }
    }

    pub fn status(&self) -> Option<Status> {
        self.status.parse().ok()
    }

    pub fn is_filtered(&self) -> bool {
        !self.url.trim().is_empty()
            || !self.event.is_empty()
            || self.status().is_some()
            || !self.connection.is_empty()
    }

    /// The query string of this view (empty values left out), e.g. for the export link.
    pub fn query(&self) -> String {
        self.query_with(None, None)
    }

    /// The query string with another sort or page.
    pub fn query_with(&self, sort: Option<&str>, page: Option<i64>) -> String {
        let page = page.unwrap_or_else(|| self.page());
        let sort = sort.map(str::to_owned).unwrap_or_else(|| self.sort.clone());
        let page_text = page.to_string();
        let pairs = [
            ("url", self.url.trim()),
            ("event", self.event.as_str()),
            ("status", self.status.as_str()),
            ("connection", self.connection.as_str()),
            ("sort", sort.as_str()),
            ("page", if page > 1 { page_text.as_str() } else { "" }),
        ];
        let kept: Vec<(&str, &str)> = pairs.into_iter().filter(|(_, v)| !v.is_empty()).collect();
        serde_urlencoded::to_string(kept).unwrap_or_default()
    }
}

/// One page of the table.
pub struct Page {
    pub rows: Vec<Webhook>,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
}

/// `%` and `_` typed by a person are literal characters, not wildcards.
fn like_pattern(text: &str) -> String {
    let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
    format!("%{escaped}%")
}

fn filtered(tenant_id: i64, filter: &Filter) -> webhooks::BoxedQuery<'static, Pg> {
    let mut query = webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .into_boxed();
    let url = filter.url.trim();
    if !url.is_empty() {
        query = query.filter(webhooks::url.ilike(like_pattern(url)));
    }
    if !filter.event.is_empty() {
        query = query.filter(webhooks::events.contains(vec![Some(filter.event.clone())]));
    }
    if let Some(status) = filter.status() {
        query = query.filter(webhooks::status.eq(status.as_str()));
    }
    match filter.connection.as_str() {
        "" => {}
        "none" => query = query.filter(webhooks::connection_id.is_null()),
        id => {
            if let Ok(id) = id.parse::<i64>() {
                query = query.filter(webhooks::connection_id.eq(id));
            }
        }
    }
    query
}

fn sorted(query: webhooks::BoxedQuery<'static, Pg>, filter: &Filter) -> webhooks::BoxedQuery<'static, Pg> {
    let (key, descending) = filter.sort();
    match (key, descending) {
        ("url", false) => query.order((webhooks::url.asc(), webhooks::number.asc())),
        ("url", true) => query.order((webhooks::url.desc(), webhooks::number.asc())),
        ("events", false) => query.order((webhooks::event_count.asc(), webhooks::number.asc())),
        ("events", true) => query.order((webhooks::event_count.desc(), webhooks::number.asc())),
        ("errors", false) => query.order((webhooks::error_count.asc(), webhooks::number.asc())),
        ("errors", true) => query.order((webhooks::error_count.desc(), webhooks::number.asc())),
        ("status", false) => query.order((webhooks::status.asc(), webhooks::number.asc())),
        ("status", true) => query.order((webhooks::status.desc(), webhooks::number.asc())),
        (_, true) => query.order(webhooks::number.desc()),
        _ => query.order(webhooks::number.asc()),
    }
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
}

/// `now()` for nullable timestamp columns.
fn sql_now() -> diesel::expression::SqlLiteral<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>> {
    diesel::dsl::sql("now()")
}

fn some_all(items: &[String]) -> Vec<Option<String>> {
    items.iter().cloned().map(Some).collect()
}

fn new_api_key() -> (String, String, String) {
    let key = format!("{API_KEY_PREFIX}{}", random_hex(24));
    let hash = token_hash(&key);
    let prefix = key[..API_KEY_VISIBLE_CHARS].to_owned();
    (key, hash, prefix)
}

fn seal_headers(headers: &[(String, String)], secrets: &SecretBox) -> serde_json::Value {
    use base64::Engine;
    let stored: Vec<StoredHeader> = headers
        .iter()
        .map(|(name, value)| {
            if is_secret_header(name) {
                let sealed = base64::engine::general_purpose::STANDARD.encode(secrets.seal(value));
                StoredHeader {
                    name: name.clone(),
                    value: None,
                    sealed: Some(sealed),
                }
            } else {
                StoredHeader {
                    name: name.clone(),
                    value: Some(value.clone()),
                    sealed: None,
                }
            }
        })
        .collect();
    serde_json::to_value(stored).expect("headers serialize")
}

impl Webhook {
    pub fn status_label(&self) -> &'static str {
        self.status.label()
    }

    pub fn is_active(&self) -> bool {
        self.status == Status::Active
    }

    /// Custom headers with their real values, for delivery and for keeping unchanged
    /// credentials when a form is saved.
    pub fn headers(&self, secrets: &SecretBox) -> anyhow::Result<Vec<(String, String)>> {
        use base64::Engine;
        self.stored_headers
            .iter()
            .map(|h| {
                let value = match (&h.value, &h.sealed) {
                    (Some(value), _) => value.clone(),
                    (None, Some(sealed)) => {
                        secrets.open(&base64::engine::general_purpose::STANDARD.decode(sealed)?)?
                    }
                    (None, None) => String::new(),
                };
                Ok((h.name.clone(), value))
            })
            .collect()
    }

    /// Custom headers as shown on pages and in the API: credentials masked.
    pub fn shown_headers(&self, secrets: &SecretBox) -> Vec<ShownHeader> {
        self.headers(secrets)
            .unwrap_or_default()
            .into_iter()
            .map(|(name, value)| {
                let masked = is_secret_header(&name);
                let value = if masked { mask(&value) } else { value };
                ShownHeader { name, value, masked }
            })
            .collect()
    }

    /// A submitted header value that equals the masked form of the stored value means
    /// "unchanged": the form never holds the credential itself.
    pub fn restore_masked(
        &self,
        submitted: Vec<(String, String)>,
        secrets: &SecretBox,
    ) -> Vec<(String, String)> {
        let current = self.headers(secrets).unwrap_or_default();
        submitted
            .into_iter()
            .map(|(name, value)| {
                let kept = current.iter().find(|(n, v)| {
                    n.eq_ignore_ascii_case(name.trim()) && is_secret_header(n) && mask(v) == value.trim()
                });
                match kept {
                    Some((_, real)) => (name, real.clone()),
                    None => (name, value),
                }
            })
            .collect()
    }

    /// The signing secrets that sign now: the current one, and the previous one during
    /// its overlap after a rotation.
    pub fn signing_secrets(&self, secrets: &SecretBox, now: DateTime<Utc>) -> anyhow::Result<Vec<String>> {
        let mut all = vec![secrets.open(&self.secret_ciphertext)?];
        if let (Some(previous), Some(until)) =
            (&self.previous_secret_ciphertext, self.previous_secret_expires_at)
            && until > now
        {
            all.push(secrets.open(previous)?);
        }
        Ok(all)
    }

    pub fn find(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<Webhook> {
        webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .filter(webhooks::id.eq(id))
            .select(WebhookRow::as_select())
            .first(conn)
            .map(Webhook::from)
    }

    /// One page of the table, filtered and sorted.
    pub fn list(conn: &mut PgConnection, tenant_id: i64, filter: &Filter) -> QueryResult<Page> {
        let total: i64 = filtered(tenant_id, filter).count().get_result(conn)?;
        let pages = ((total + PAGE_SIZE - 1) / PAGE_SIZE).max(1);
        let page = filter.page().min(pages);
        let rows = sorted(filtered(tenant_id, filter), filter)
            .limit(PAGE_SIZE)
            .offset((page - 1) * PAGE_SIZE)
            .select(WebhookRow::as_select())
            .load(conn)?
            .into_iter()
            .map(Webhook::from)
            .collect();
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
        tenant_id: i64,
        filter: &Filter,
        mut each: impl FnMut(Webhook) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let batch = 500;
        let mut offset = 0;
        loop {
            let rows: Vec<WebhookRow> = sorted(filtered(tenant_id, filter), filter)
                .limit(batch)
                .offset(offset)
                .select(WebhookRow::as_select())
                .load(conn)?;
            let done = (rows.len() as i64) < batch;
            for row in rows {
                each(Webhook::from(row))?;
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
            .map(|rows| rows.into_iter().map(Webhook::from).collect())
    }

    /// Webhooks by id, whatever their tenant: for the delivery engine, which works
    /// across tenants on rows it already claimed.
    pub fn by_ids(conn: &mut PgConnection, ids: &[i64]) -> QueryResult<Vec<Webhook>> {
        webhooks::table
            .filter(webhooks::id.eq_any(ids))
            .select(WebhookRow::as_select())
            .load(conn)
            .map(|rows| rows.into_iter().map(Webhook::from).collect())
    }

    /// The webhook a webhook API key belongs to, whether the key is on or not.
    pub fn find_by_api_key(conn: &mut PgConnection, key: &str) -> QueryResult<Option<Webhook>> {
        webhooks::table
            .filter(webhooks::api_key_hash.eq(token_hash(key)))
            .select(WebhookRow::as_select())
            .first(conn)
            .optional()
            .map(|row| row.map(Webhook::from))
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
        input: &Input,
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
                    headers: seal_headers(&input.headers, secrets),
                    retry_on_error: input.retry_on_error,
                    use_customer_language: input.use_customer_language,
                    capabilities: some_all(&input.capabilities),
                })
                .returning(WebhookRow::as_returning())
                .get_result(conn)?;
            diesel::update(tenants::table.find(tenant_id))
                .set(tenants::next_webhook_number.eq(number + 1))
                .execute(conn)?;
            Ok((Webhook::from(row), key))
        })
    }

    /// Saves the edited fields. Switching the Active field here follows the same rules as
    /// the status switch (see [`Webhook::set_active`]); parked deliveries stay parked.
    pub fn update(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        input: &Input,
        secrets: &SecretBox,
    ) -> QueryResult<Webhook> {
        conn.transaction(|conn| {
            let current = lock_for_update(conn, tenant_id, id)?;
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
                webhooks::headers.eq(seal_headers(&input.headers, secrets)),
                webhooks::retry_on_error.eq(input.retry_on_error),
                webhooks::use_customer_language.eq(input.use_customer_language),
                webhooks::capabilities.eq(some_all(&input.capabilities)),
                webhooks::updated_at.eq(diesel::dsl::now),
            ))
            .returning(WebhookRow::as_returning())
            .get_result(conn)?;
            let updated = Webhook::from(row);
            // Deliveries a worker already queued take the new settings.
            notify(conn)?;
            if input.active != current.is_active() {
                return Webhook::set_active(conn, tenant_id, id, input.active, Parked::Keep, Utc::now());
            }
            Ok(updated)
        })
    }

    /// Switches a webhook on or off. Switching off parks its pending deliveries; switching
    /// on clears an automatic disable and resends, drops or keeps what was parked.
    pub fn set_active(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        active: bool,
        parked: Parked,
        now: DateTime<Utc>,
    ) -> QueryResult<Webhook> {
        conn.transaction(|conn| {
            let target = webhooks::table
                .filter(webhooks::tenant_id.eq(tenant_id))
                .filter(webhooks::id.eq(id));
            lock_for_update(conn, tenant_id, id)?;
            let row: WebhookRow = if active {
                diesel::update(target)
                    .set((
                        webhooks::status.eq("active"),
                        webhooks::disabled_reason.eq(None::<String>),
                        webhooks::disabled_at.eq(None::<DateTime<Utc>>),
                        webhooks::consecutive_failures.eq(0),
                        webhooks::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(WebhookRow::as_returning())
                    .get_result(conn)?
            } else {
                diesel::update(target)
                    .set((
                        webhooks::status.eq("inactive"),
                        webhooks::disabled_reason.eq(None::<String>),
                        webhooks::disabled_at.eq(sql_now()),
                        webhooks::updated_at.eq(diesel::dsl::now),
                    ))
                    .returning(WebhookRow::as_returning())
                    .get_result(conn)?
            };
            let of_webhook = deliveries::table.filter(deliveries::webhook_id.eq(id));
            if !active {
                diesel::update(of_webhook.filter(deliveries::status.eq("pending")))
                    .set((
                        deliveries::status.eq("parked"),
                        deliveries::updated_at.eq(diesel::dsl::now),
                    ))
                    .execute(conn)?;
            } else {
                match parked {
                    Parked::Resend => {
                        diesel::update(of_webhook.filter(deliveries::status.eq("parked")))
                            .set((
                                deliveries::status.eq("pending"),
                                deliveries::next_attempt_at.eq(now),
                                deliveries::updated_at.eq(diesel::dsl::now),
                            ))
                            .execute(conn)?;
                    }
                    Parked::Drop => {
                        diesel::update(of_webhook.filter(deliveries::status.eq("parked")))
                            .set((
                                deliveries::status.eq("cancelled"),
                                deliveries::completed_at.eq(sql_now()),
                                deliveries::updated_at.eq(diesel::dsl::now),
                            ))
                            .execute(conn)?;
                    }
                    Parked::Keep => {}
                }
            }
            // A worker drops what it queued for a webhook switched off, or resends.
            notify(conn)?;
            Ok(Webhook::from(row))
        })
    }

    /// How many deliveries wait parked for this webhook to be switched back on.
    pub fn parked_count(conn: &mut PgConnection, id: i64) -> QueryResult<i64> {
        deliveries::table
            .filter(deliveries::webhook_id.eq(id))
            .filter(deliveries::status.eq("parked"))
            .count()
            .get_result(conn)
    }

    /// How many deliveries wait for this webhook, to be sent or parked.
    fn waiting_count(conn: &mut PgConnection, id: i64) -> QueryResult<i64> {
        deliveries::table
            .filter(deliveries::webhook_id.eq(id))
            .filter(deliveries::status.eq_any(["pending", "parked"]))
            .count()
            .get_result(conn)
    }

    /// Deletes a webhook for good, with its deliveries and their attempts; the pending and
    /// parked ones are never sent. Returns how many deliveries were still waiting.
    pub fn delete(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<i64> {
        conn.transaction(|conn| {
            // Locked first: publishing and the dispatcher's writer take this row before they
            // write deliveries or attempts of the webhook, so none are added meanwhile.
            let webhook = lock_for_update(conn, tenant_id, id)?;
            let waiting = Self::waiting_count(conn, webhook.id)?;
            // No foreign keys cascade here (migration checked_by_writers): the attempts
            // go first, found through their deliveries.
            diesel::delete(
                delivery_attempts::table.filter(
                    delivery_attempts::delivery_id.eq_any(
                        deliveries::table
                            .filter(deliveries::webhook_id.eq(webhook.id))
                            .select(deliveries::id),
                    ),
                ),
            )
            .execute(conn)?;
            diesel::delete(deliveries::table.filter(deliveries::webhook_id.eq(webhook.id))).execute(conn)?;
            diesel::delete(webhooks::table.filter(webhooks::id.eq(webhook.id))).execute(conn)?;
            // A worker drops what it queued for this webhook.
            notify(conn)?;
            Ok(waiting as i64)
        })
    }

    /// The secret in clear, for the owner or admin who asked to reveal it.
    pub fn reveal_secret(&self, secrets: &SecretBox) -> anyhow::Result<String> {
        secrets.open(&self.secret_ciphertext)
    }

    /// A new signing secret signs at once; the old one keeps signing for 24 hours.
    pub fn rotate_secret(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        secrets: &SecretBox,
        now: DateTime<Utc>,
    ) -> QueryResult<Webhook> {
        conn.transaction(|conn| {
            let current = Webhook::find(conn, tenant_id, id)?;
            let rotated = diesel::update(webhooks::table.filter(webhooks::id.eq(current.id)))
                .set((
                    webhooks::secret_ciphertext.eq(secrets.seal(&new_signing_secret())),
                    webhooks::previous_secret_ciphertext.eq(Some(current.secret_ciphertext)),
                    webhooks::previous_secret_expires_at
                        .eq(Some(now + Duration::hours(SECRET_OVERLAP_HOURS))),
                    webhooks::updated_at.eq(diesel::dsl::now),
                ))
                .returning(WebhookRow::as_returning())
                .get_result(conn)
                .map(Webhook::from)?;
            // Deliveries a worker already queued are signed with the new secret too.
            notify(conn)?;
            Ok(rotated)
        })
    }

    /// Replaces the webhook's API key; the new key is returned once.
    pub fn regenerate_api_key(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
    ) -> QueryResult<(Webhook, String)> {
        let (key, hash, prefix) = new_api_key();
        let row: WebhookRow = diesel::update(
            webhooks::table
                .filter(webhooks::tenant_id.eq(tenant_id))
                .filter(webhooks::id.eq(id)),
        )
        .set((
            webhooks::api_key_hash.eq(hash),
            webhooks::api_key_prefix.eq(prefix),
            webhooks::updated_at.eq(diesel::dsl::now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(conn)?;
        Ok((Webhook::from(row), key))
    }

    pub fn set_api_key_enabled(
        conn: &mut PgConnection,
        tenant_id: i64,
        id: i64,
        enabled: bool,
    ) -> QueryResult<Webhook> {
        diesel::update(
            webhooks::table
                .filter(webhooks::tenant_id.eq(tenant_id))
                .filter(webhooks::id.eq(id)),
        )
        .set((
            webhooks::api_key_enabled.eq(enabled),
            webhooks::updated_at.eq(diesel::dsl::now),
        ))
        .returning(WebhookRow::as_returning())
        .get_result(conn)
        .map(Webhook::from)
    }

    /// Connection names by id, for showing a list of webhooks.
    pub fn connection_names(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<HashMap<i64, String>> {
        Ok(connections::table
            .filter(connections::tenant_id.eq(tenant_id))
            .select((connections::id, connections::name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect())
    }

    pub fn status_counts(conn: &mut PgConnection, tenant_id: i64) -> QueryResult<StatusCounts> {
        let rows: Vec<(String, i64)> = webhooks::table
            .filter(webhooks::tenant_id.eq(tenant_id))
            .group_by(webhooks::status)
            .select((webhooks::status, count_star()))
            .load(conn)?;
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

/// What to do with parked deliveries when a webhook is switched back on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parked {
    Resend,
    Drop,
    Keep,
}

/// How many webhooks a tenant has, and how many Hookboard switched off.
#[derive(Debug, Clone, Copy, Default)]
pub struct StatusCounts {
    pub total: i64,
    pub auto_disabled: i64,
}

/// Reads a webhook and locks its row `FOR UPDATE` before its deliveries are written: the order every
/// writer of deliveries keeps (the delivery worker takes `FOR KEY SHARE` on the webhook
/// first, which this waits for and holds up), so the two never wait for each other's
/// delivery rows.
fn lock_for_update(conn: &mut PgConnection, tenant_id: i64, id: i64) -> QueryResult<Webhook> {
    webhooks::table
        .filter(webhooks::tenant_id.eq(tenant_id))
        .filter(webhooks::id.eq(id))
        .select(WebhookRow::as_select())
        .for_update()
        .first(conn)
        .map(Webhook::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_round_trip_through_the_query_string() {
        let filter = Filter {
            url: " zapier ".into(),
            event: "booking.created".into(),
            sort: "-errors".into(),
            page: "3".into(),
            ..Filter::default()
        };
        assert_eq!(
            filter.query(),
            "url=zapier&event=booking.created&sort=-errors&page=3"
        );
        assert_eq!(
            filter.query_with(Some("url"), Some(1)),
            "url=zapier&event=booking.created&sort=url"
        );
        assert_eq!(filter.sort(), ("errors", true));
        let junk = Filter {
            sort: "drop table".into(),
            page: "-4".into(),
            status: "bogus".into(),
            ..Filter::default()
        };
        assert_eq!(
            (junk.sort(), junk.page(), junk.status()),
            (("number", false), 1, None)
        );
    }

    #[test]
    fn typed_wildcards_are_literal() {
        assert_eq!(like_pattern("50%_off\\"), "%50\\%\\_off\\\\%");
    }
}
