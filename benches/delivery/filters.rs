//! Filters (SPEC 9d), beside the same run without: publishing 20,000 booking events to 60
//! webhooks of which 30 have a filter, against 60 webhooks without. The filters are true
//! for every event, so both runs write the same 1.2 million deliveries and the ratio is
//! what evaluating 30 filters per event costs. The webhooks are switched off (their
//! deliveries parked), so the worker sends none of them and only publishing is timed.

use std::time::Instant;

use hookboard::clock::{Clock, SystemClock};
use hookboard::crypto::SecretBox;
use hookboard::db::DbPool;
use hookboard::delivery::outbox::{self, MAX_BATCH, NewEvent};
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::webhook::Webhook;
use hookboard::validation::webhook::Input;
use serde_json::json;

use super::valid;

const EVENTS: usize = 20_000;
const WEBHOOKS: usize = 60;
const FILTERED: usize = 30;
/// Rounds of each kind, taken in turns; the median of each is reported.
const ROUNDS: usize = 3;
/// Filters of the shapes people write: membership, comparisons, a presence test, a
/// comprehension over the units, string functions.
const FILTERS: [&str; 5] = [
    "data.product.id in [12, 15, 20, 31] && data.pax >= 1",
    "has(data.customer) && data.customer.language in ['de', 'en', 'sv']",
    "data.units.exists(u, u.quantity > 0) || type == 'booking.cancelled'",
    "data.reference.startsWith('TC-') && data.pricing.total > 100",
    "connection == null && data.status != 'cancelled'",
];

/// The figures of this section.
pub struct Figures {
    pub plain_per_s: f64,
    pub filtered_per_s: f64,
}

impl Figures {
    fn ratio(&self) -> f64 {
        self.plain_per_s / self.filtered_per_s
    }

    /// The row of the README's table.
    pub fn rows(&self) -> String {
        format!(
            "| publishing {EVENTS} events to {WEBHOOKS} webhooks, {FILTERED} with filters, events/s (median of {ROUNDS}) | {:.0} | {:.2}x the time without filters ({:.0}/s in turn with it) |",
            self.filtered_per_s,
            self.ratio(),
            self.plain_per_s,
        )
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "publish_per_s_60_webhooks": self.plain_per_s,
            "publish_per_s_60_webhooks_30_filtered": self.filtered_per_s,
            "filtered_time_ratio": self.ratio(),
        })
    }
}

fn booking(i: usize) -> NewEvent {
    let product = [12, 15, 20, 31][i % 4];
    NewEvent {
        kind: "booking.created".into(),
        data: json!({
            "id": format!("bkg_{i}"), "reference": format!("TC-2026-{i:06}"), "status": "confirmed",
            "product": {"id": product, "name": "Old Town Walking Tour"}, "pax": 1 + i % 4,
            "customer": {"id": "cus_4T7M2P", "first_name": "Sofia", "last_name": "Lindqvist", "language": "sv"},
            "pricing": {"currency": "EUR", "subtotal": 9000, "tax": 1800, "total": 10800},
            "units": [{"type": "adult", "quantity": 2, "unit_price": 3500}, {"type": "child", "quantity": 1, "unit_price": 2000}],
        }),
        occurred_at: None,
        connection: None,
        language: None,
        idempotency_key: None,
        ordering_key: None,
    }
}

/// A tenant with 60 switched-off webhooks for booking.created, `filtered` of them with a
/// filter.
fn tenant_with(
    conn: &mut diesel::PgConnection,
    name: &str,
    filtered: usize,
    secrets: &SecretBox,
    url: &str,
) -> anyhow::Result<Tenant> {
    let tenant = Tenant::create(conn, name, Plan::Scale)?;
    let tenant = Tenant::set_webhooks_enabled(conn, tenant.id, true)?;
    for i in 0..WEBHOOKS {
        let input = Input {
            url: format!("{url}?filters={i}"),
            events: vec!["booking.created".into()],
            active: false,
            filter: (i < filtered).then(|| FILTERS[i % FILTERS.len()].to_owned()),
            ..Input::default()
        };
        Webhook::create(conn, tenant.id, &valid(input), secrets)?;
    }
    Ok(tenant)
}

/// Publishes the events in batches; events per second.
fn publish(pool: &DbPool, tenant: &Tenant) -> anyhow::Result<f64> {
    let conn = &mut pool.get()?;
    let events: Vec<NewEvent> = (0..EVENTS).map(booking).collect();
    let started = Instant::now();
    for batch in events.chunks(MAX_BATCH) {
        outbox::publish(conn, tenant, batch, Clock::now(&SystemClock))?;
    }
    Ok(EVENTS as f64 / started.elapsed().as_secs_f64())
}

/// Removes what a round wrote, so every round starts alike and later figures see none of it.
fn clear(pool: &DbPool, tenants: &[i64]) -> anyhow::Result<()> {
    use diesel::prelude::*;
    let conn = &mut pool.get()?;
    for table in ["deliveries", "events"] {
        diesel::sql_query(format!("DELETE FROM {table} WHERE tenant_id = ANY($1)"))
            .bind::<diesel::sql_types::Array<diesel::sql_types::BigInt>, _>(tenants)
            .execute(conn)?;
    }
    super::vacuum_analyze(conn, "deliveries")?;
    Ok(())
}

pub async fn run(pool: &DbPool, secrets: &SecretBox, receiver_url: &str) -> anyhow::Result<Figures> {
    let (pool, secrets, url) = (pool.clone(), secrets.clone(), receiver_url.to_owned());
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<Figures> {
        let (plain, filtered) = {
            let conn = &mut pool.get()?;
            (
                tenant_with(conn, "Plain Filters Bench", 0, &secrets, &url)?,
                tenant_with(conn, "Filtered Filters Bench", FILTERED, &secrets, &url)?,
            )
        };
        let ids = [plain.id, filtered.id];
        let (mut plain_rates, mut filtered_rates) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            plain_rates.push(publish(&pool, &plain)?);
            clear(&pool, &ids)?;
            filtered_rates.push(publish(&pool, &filtered)?);
            clear(&pool, &ids)?;
        }
        let median = |mut rates: Vec<f64>| {
            rates.sort_by(f64::total_cmp);
            rates[rates.len() / 2]
        };
        let figures = Figures {
            plain_per_s: median(plain_rates),
            filtered_per_s: median(filtered_rates),
        };
        println!("{}", figures.rows());
        Ok(figures)
    })
    .await?
}
