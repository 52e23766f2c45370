//! Ordered delivery per key (SPEC 9b), beside unordered delivery in the same run: the rate
//! of an ordered webhook over 1,000 keys against an unordered one, the lag of 999 keys
//! while one key fails on every attempt against the lag with none failing, and one key's
//! 1,000 events in order.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use actix_web::web;
use hookboard::clock::{Clock, SystemClock};
use hookboard::crypto::SecretBox;
use hookboard::db::DbPool;
use hookboard::delivery::outbox::{self, NewEvent};
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::webhook::Webhook;
use hookboard::validation::webhook::Input;
use serde_json::json;

use super::{LAG_RATE, Seen, now_ns, percentile, steadily, valid};

/// Events per rate round, and keys they are spread over.
const EVENTS: usize = 20_000;
const KEYS: usize = 1_000;
/// Rounds of each kind, taken in turns; the median ratio is reported.
const ROUNDS: usize = 3;
/// Events of the single key.
const SOLO: usize = 1_000;
/// What the ordered and the unordered webhook subscribe to.
const ORDERED_KIND: &str = "booking.updated";
const UNORDERED_KIND: &str = "booking.cancelled";
/// The key that fails on every attempt in the second lag run.
pub const FAILING_KEY: &str = "key-0007";

/// Numbers the events of this section in the order they are made, which is the order
/// they are published in: each key's must arrive at the ordered webhook in rising order.
static SEQ: AtomicU64 = AtomicU64::new(1);

/// What the receiver tracks for the ordered webhook's events (marked `ordered` in their
/// data): each key's last seq, and how many arrived before an earlier one of their key.
#[derive(Default)]
pub struct Order {
    last: Mutex<HashMap<String, u64>>,
    pub out_of_order: std::sync::atomic::AtomicUsize,
    /// Answer 500 to this key, and leave its lag out.
    pub failing: Mutex<Option<String>>,
}

impl Order {
    /// Checks one arrival; `false` when its key is the failing one (answer 500).
    pub fn arrived(&self, data: &serde_json::Value) -> bool {
        let (Some(key), Some(seq), true) = (
            data["key"].as_str(),
            data["seq"].as_u64(),
            data["ordered"].as_bool() == Some(true),
        ) else {
            return true;
        };
        if self.failing.lock().unwrap().as_deref() == Some(key) {
            return false;
        }
        let mut last = self.last.lock().unwrap();
        let before = last.entry(key.to_owned()).or_default();
        if seq < *before {
            self.out_of_order.fetch_add(1, Ordering::Relaxed);
        }
        *before = seq;
        true
    }
}

/// The figures of this section.
pub struct Figures {
    pub ordered_per_s: f64,
    pub unordered_per_s: f64,
    pub rate_ratio: f64,
    pub lag_p95_ms: f64,
    pub lag_p95_failing_ms: f64,
    pub solo_per_s: f64,
    pub out_of_order: usize,
}

impl Figures {
    /// The rows of the README's table.
    pub fn rows(&self) -> String {
        format!(
            "| ordered webhook over {KEYS} keys, deliveries/s (median of {ROUNDS}) | {:.0} | {:.2}x the unordered webhook's {:.0}/s in turn with it |\n\
             | lag p95 at {LAG_RATE}/s over {KEYS} keys, none / one failing every attempt | {:.1} / {:.1} ms | {:+.0}% |\n\
             | one key, {SOLO} events in order | {:.0}/s | {} out of order |",
            self.ordered_per_s,
            self.rate_ratio,
            self.unordered_per_s,
            self.lag_p95_ms,
            self.lag_p95_failing_ms,
            (self.lag_p95_failing_ms / self.lag_p95_ms - 1.0) * 100.0,
            self.solo_per_s,
            self.out_of_order,
        )
    }

    pub fn json(&self) -> serde_json::Value {
        json!({
            "ordered_1000_keys_per_s": self.ordered_per_s,
            "unordered_per_s": self.unordered_per_s,
            "ordered_to_unordered": self.rate_ratio,
            "lag_p95_ms_999_keys": self.lag_p95_ms,
            "lag_p95_ms_999_keys_one_failing": self.lag_p95_failing_ms,
            "one_key_per_s": self.solo_per_s,
            "out_of_order": self.out_of_order,
        })
    }
}

/// An event of `key`: `booking.updated` goes to the ordered webhook, `booking.cancelled` to
/// the unordered one.
fn keyed(kind: &str, key: String) -> NewEvent {
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let ordered = kind == ORDERED_KIND;
    NewEvent {
        kind: kind.into(),
        data: json!({"key": key, "seq": seq, "ordered": ordered, "sent_ns": now_ns().to_string()}),
        occurred_at: None,
        connection: None,
        language: None,
        idempotency_key: None,
        ordering_key: Some(key),
    }
}

/// Publishes `events` in batches of 500 and waits until as many arrived; returns the rate.
async fn through(
    pool: &DbPool,
    tenant: &Tenant,
    seen: &web::Data<Seen>,
    events: Vec<NewEvent>,
) -> anyhow::Result<f64> {
    let count = events.len();
    let before = seen.count.load(Ordering::Relaxed);
    let started = Instant::now();
    let (pool, tenant) = (pool.clone(), tenant.clone());
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<()> {
        let conn = &mut pool.get()?;
        for batch in events.chunks(500) {
            outbox::publish(conn, &tenant, batch, Clock::now(&SystemClock))?;
        }
        Ok(())
    })
    .await??;
    while seen.count.load(Ordering::Relaxed) - before < count {
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "ordered deliveries stalled"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(count as f64 / started.elapsed().as_secs_f64())
}

/// `kind` events at [`LAG_RATE`] for [`LAG_SECONDS`], spread over the keys; the lag p95 of
/// those that arrived (the failing key's never do).
async fn lag_p95(
    pool: &DbPool,
    tenant: &Tenant,
    seen: &web::Data<Seen>,
    kind: &'static str,
) -> anyhow::Result<f64> {
    seen.lags_us.lock().unwrap().clear();
    steadily(pool, tenant, move |i| {
        keyed(kind, format!("key-{:04}", i % KEYS as u64))
    })
    .await?;
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let mut lags = seen.lags_us.lock().unwrap().clone();
    lags.sort_unstable();
    Ok(percentile(&lags, 0.95))
}

/// Runs the section with the worker already running: two webhooks (ordered, on
/// booking.updated; unordered, on booking.cancelled) to the receiver.
pub async fn run(
    pool: &DbPool,
    secrets: &SecretBox,
    receiver_url: &str,
    seen: &web::Data<Seen>,
) -> anyhow::Result<Figures> {
    // A tenant of its own: the other sections count the main tenant's webhooks.
    let tenant = {
        let (pool, secrets, url) = (pool.clone(), secrets.clone(), receiver_url.to_owned());
        actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<Tenant> {
            let conn = &mut pool.get()?;
            let tenant = Tenant::create(conn, "Ordering Bench Tours", Plan::Scale)?;
            let tenant = Tenant::set_webhooks_enabled(conn, tenant.id, true)?;
            for (kind, ordered) in [(ORDERED_KIND, true), (UNORDERED_KIND, false)] {
                let input = Input {
                    url: format!("{url}?ordered={ordered}"),
                    events: vec![kind.into()],
                    ordered,
                    ..Input::default()
                };
                Webhook::create(conn, tenant.id, &valid(input), &secrets)?;
            }
            Ok(tenant)
        })
        .await??
    };
    let tenant = &tenant;
    let events = |kind: &str| -> Vec<NewEvent> {
        (0..EVENTS)
            .map(|i| keyed(kind, format!("key-{:04}", i % KEYS)))
            .collect()
    };
    // A warm-up of each, then rounds in turns.
    through(pool, tenant, seen, events(ORDERED_KIND)).await?;
    through(pool, tenant, seen, events(UNORDERED_KIND)).await?;
    let mut ratios = Vec::new();
    for round in 1..=ROUNDS {
        let unordered = through(pool, tenant, seen, events(UNORDERED_KIND)).await?;
        let ordered = through(pool, tenant, seen, events(ORDERED_KIND)).await?;
        println!(
            "ordering, round {round}: ordered webhook over {KEYS} keys {ordered:.0}/s, unordered {unordered:.0}/s: {:.2}x",
            ordered / unordered
        );
        ratios.push((ordered / unordered, ordered, unordered));
    }
    ratios.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (rate_ratio, ordered_per_s, unordered_per_s) = ratios[ROUNDS / 2];

    let lag = lag_p95(pool, tenant, seen, ORDERED_KIND).await?;
    *seen.order.failing.lock().unwrap() = Some(FAILING_KEY.to_owned());
    super::statements::reset()?;
    let lag_failing = lag_p95(pool, tenant, seen, ORDERED_KIND).await?;
    super::statements::print(&format!("the ordered lag with {FAILING_KEY} failing"))?;
    println!(
        "ordering, lag p95 at {LAG_RATE}/s over {KEYS} keys: {lag:.1} ms; with {FAILING_KEY} failing \
         every attempt, the other keys' {lag_failing:.1} ms ({:+.0}%)",
        (lag_failing / lag - 1.0) * 100.0
    );
    // The failing key's retries go through from now on.
    *seen.order.failing.lock().unwrap() = None;

    let solo: Vec<NewEvent> = (0..SOLO).map(|_| keyed(ORDERED_KIND, "solo".into())).collect();
    let solo_per_s = through(pool, tenant, seen, solo).await?;
    let out_of_order = seen.order.out_of_order.load(Ordering::Relaxed);
    println!(
        "ordering, one key: {SOLO} events in order at {solo_per_s:.0}/s ({:.1} ms each: a claim, \
         the request and the recorded result, one after the other); {out_of_order} arrived out of order in all",
        1000.0 / solo_per_s
    );
    anyhow::ensure!(
        out_of_order == 0,
        "{out_of_order} ordered deliveries arrived out of order"
    );
    Ok(Figures {
        ordered_per_s,
        unordered_per_s,
        rate_ratio,
        lag_p95_ms: lag,
        lag_p95_failing_ms: lag_failing,
        solo_per_s,
        out_of_order,
    })
}
