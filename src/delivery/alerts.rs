//! The alert worker: takes the alerts the dispatcher raised and, each in a transaction of
//! its own, publishes its operational event through the outbox (delivered like any event,
//! never to the webhook it is about) and mails the tenant's recipients. A mail server that
//! is down delays the mail only: it is tried again with growing pauses for a day, and
//! deliveries never wait for it. A mail claimed by a process that died is taken over when
//! its lease runs out, so only what was in flight can go out twice.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use diesel::Connection as _;
use serde_json::json;

use super::mail::{self, Mailer};
use super::outbox::{self, NewEvent};
use crate::clock::Clock;
use crate::db::DbPool;
use crate::models::alert::{self, Alert};
use crate::models::connection::Connection;
use crate::models::delivery::Delivery;
use crate::models::event::wire_time;
use crate::models::tenant::Tenant;
use crate::settings::Settings;

/// How often the worker looks for alerts when nothing else happens.
const POLL: Duration = Duration::from_secs(1);
/// How long a claimed mail is the claimer's.
const MAIL_LEASE: chrono::TimeDelta = chrono::TimeDelta::minutes(2);
/// Alerts taken at a time.
const BATCH: i64 = 20;
/// A mail not sent within this long after its alert is given up.
const GIVE_UP_AFTER: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Done {
    pub published: usize,
    pub mailed: usize,
    /// Mails that failed this time (tried again later) or were given up.
    pub unsent: usize,
}

/// The alert worker's settings and connections.
#[derive(Clone)]
pub struct Alerts {
    pool: DbPool,
    mailer: Option<Mailer>,
    public_url: String,
}

impl Alerts {
    pub fn new(pool: DbPool, settings: &Settings) -> anyhow::Result<Alerts> {
        let mailer = match &settings.smtp_url {
            Some(url) => Some(Mailer::new(url, &settings.smtp_from)?),
            None => None,
        };
        Ok(Alerts {
            pool,
            mailer,
            public_url: settings.public_url.clone(),
        })
    }

    /// Publishes every alert's event not yet published, and sends every mail due at `now`.
    pub async fn run_once(&self, now: DateTime<Utc>) -> anyhow::Result<Done> {
        let mut done = Done::default();
        loop {
            let this = self.clone();
            let published = tokio::task::spawn_blocking(move || this.publish(now)).await??;
            done.published += published;
            if published < BATCH as usize {
                break;
            }
        }
        loop {
            let this = self.clone();
            let claimed = tokio::task::spawn_blocking(move || -> anyhow::Result<Vec<Alert>> {
                let conn = &mut this.pool.get()?;
                Ok(alert::claim_mail(conn, now, now + MAIL_LEASE, BATCH)?)
            })
            .await??;
            if claimed.is_empty() {
                break;
            }
            for claimed in claimed {
                if self.mail(claimed, now).await? {
                    done.mailed += 1;
                } else {
                    done.unsent += 1;
                }
            }
        }
        Ok(done)
    }

    /// Publishes a batch of alerts' operational events, each with its marker in one
    /// transaction; returns how many.
    fn publish(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let conn = &mut self.pool.get()?;
        conn.transaction(|conn| {
            let taken = alert::take_unpublished(conn, BATCH)?;
            for alert in &taken {
                let tenant = Tenant::find(conn, alert.tenant_id)?;
                let connection = match alert.connection_id {
                    Some(id) => Connection::find(conn, tenant.id, id).ok().map(|c| c.external_id),
                    None => None,
                };
                let event = NewEvent {
                    kind: format!("hookboard.webhook.{}", alert.kind),
                    data: json!({
                        "webhook": {"id": alert.webhook_id, "number": alert.webhook_number, "url": alert.url},
                        "reason": alert.reason,
                        "consecutive_failures": alert.consecutive_failures,
                        "at": wire_time(alert.created_at),
                    }),
                    occurred_at: Some(alert.created_at),
                    connection,
                    language: None,
                    idempotency_key: None,
                    ordering_key: None,
                };
                outbox::publish_about(conn, &tenant, &event, alert.webhook_id, now)?;
                alert::mark_published(conn, alert.id, now)?;
            }
            Ok(taken.len())
        })
    }

    /// Mails one claimed alert; whether it went.
    async fn mail(&self, alert: Alert, now: DateTime<Utc>) -> anyhow::Result<bool> {
        let (id, created_at, attempts) = (alert.id, alert.created_at, alert.mail_attempts);
        let Some(mailer) = &self.mailer else {
            self.mail_done(id, now, Some("mail is off (HOOKBOARD_SMTP_URL is not set)"), None)
                .await?;
            return Ok(false);
        };
        let this = self.clone();
        let (tenant, recipients, waiting) = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let conn = &mut this.pool.get()?;
            Ok((
                Tenant::find(conn, alert.tenant_id)?,
                Tenant::alert_emails(conn, alert.tenant_id)?,
                Delivery::waiting_count(conn, alert.webhook_id)?,
            ))
        })
        .await??;
        if recipients.is_empty() {
            self.mail_done(id, now, Some("no alert recipients"), None).await?;
            return Ok(false);
        }
        let context = mail::Context {
            tenant_name: &tenant.name,
            waiting,
            link: format!("{}/webhooks/{}", self.public_url, alert.webhook_id),
        };
        let composed = mail::compose(&alert, &context);
        match mailer.send(&recipients, &composed).await {
            Ok(()) => {
                self.mail_done(id, now, None, None).await?;
                Ok(true)
            }
            Err(error) => {
                // 30 s, 1 min, 2 min ... at most 15 min apart, for a day.
                let pause = chrono::TimeDelta::seconds((30_i64 << attempts.clamp(0, 5)).min(900));
                let retry_at = (now + pause - created_at < GIVE_UP_AFTER).then_some(now + pause);
                tracing::warn!(alert = id, %error, ?retry_at, "an alert mail was not sent");
                self.mail_done(id, now, Some(&error), retry_at).await?;
                Ok(false)
            }
        }
    }

    async fn mail_done(
        &self,
        id: i64,
        now: DateTime<Utc>,
        error: Option<&str>,
        retry_at: Option<DateTime<Utc>>,
    ) -> anyhow::Result<()> {
        let (this, error) = (self.clone(), error.map(str::to_owned));
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            let conn = &mut this.pool.get()?;
            alert::mail_done(conn, id, now, error.as_deref(), retry_at)?;
            Ok(())
        })
        .await?
    }
}

/// The worker's loop, until `stop`: a pass every second.
pub async fn run(alerts: Alerts, clock: Arc<dyn Clock>, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        if let Err(err) = alerts.run_once(clock.now()).await {
            tracing::error!(error = %err, "the alert worker failed; retrying");
        }
        actix_web::rt::time::sleep(POLL).await;
    }
}
