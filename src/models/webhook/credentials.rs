//! A webhook's credentials: the signing secret (sealed at rest, rotated with a 24-hour
//! overlap) and its own API key (hashed, shown once, switchable).

use chrono::{DateTime, Duration, Utc};
use diesel::prelude::*;

use super::{SECRET_OVERLAP_HOURS, Scope, Webhook, WebhookRow, webhook};
use crate::crypto::{SecretBox, new_signing_secret};
use crate::models::{random_hex, token_hash};
use crate::schema::webhooks;

/// Every webhook API key starts with this (tenant keys use `hbk_`).
pub const API_KEY_PREFIX: &str = "hbw_";
const API_KEY_VISIBLE_CHARS: usize = 12;

/// A new key, its hash and its visible prefix.
pub(super) fn new_api_key() -> (String, String, String) {
    let key = format!("{API_KEY_PREFIX}{}", random_hex(24));
    let hash = token_hash(&key);
    let prefix = key[..API_KEY_VISIBLE_CHARS].to_owned();
    (key, hash, prefix)
}

impl Webhook {
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

    /// The webhook a webhook API key belongs to, whether the key is on or not.
    pub fn find_by_api_key(conn: &mut PgConnection, key: &str) -> QueryResult<Option<Webhook>> {
        webhooks::table
            .filter(webhooks::api_key_hash.eq(token_hash(key)))
            .select(WebhookRow::as_select())
            .first(conn)
            .optional()?
            .map(webhook)
            .transpose()
    }

    /// The secret in clear, for the owner or admin who asked to reveal it.
    pub fn reveal_secret(&self, secrets: &SecretBox) -> anyhow::Result<String> {
        secrets.open(&self.secret_ciphertext)
    }

    /// A new signing secret signs at once; the old one keeps signing for 24 hours.
    pub fn rotate_secret(
        conn: &mut PgConnection,
        scope: impl Into<Scope>,
        id: i64,
        secrets: &SecretBox,
        now: DateTime<Utc>,
    ) -> QueryResult<Webhook> {
        let scope = scope.into();
        conn.transaction(|conn| {
            let current = Webhook::find(conn, scope, id)?;
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
                .and_then(webhook)?;
            Ok(rotated)
        })
    }

    /// Replaces the webhook's API key; the new key is returned once.
    pub fn regenerate_api_key(
        conn: &mut PgConnection,
        scope: impl Into<Scope>,
        id: i64,
    ) -> QueryResult<(Webhook, String)> {
        let current = Webhook::find(conn, scope, id)?;
        let (key, hash, prefix) = new_api_key();
        let row: WebhookRow = diesel::update(webhooks::table.filter(webhooks::id.eq(current.id)))
            .set((
                webhooks::api_key_hash.eq(hash),
                webhooks::api_key_prefix.eq(prefix),
                webhooks::updated_at.eq(diesel::dsl::now),
            ))
            .returning(WebhookRow::as_returning())
            .get_result(conn)?;
        Ok((webhook(row)?, key))
    }

    pub fn set_api_key_enabled(
        conn: &mut PgConnection,
        scope: impl Into<Scope>,
        id: i64,
        enabled: bool,
    ) -> QueryResult<Webhook> {
        let current = Webhook::find(conn, scope, id)?;
        diesel::update(webhooks::table.filter(webhooks::id.eq(current.id)))
            .set((
                webhooks::api_key_enabled.eq(enabled),
                webhooks::updated_at.eq(diesel::dsl::now),
            ))
            .returning(WebhookRow::as_returning())
            .get_result(conn)
            .and_then(webhook)
    }
}
