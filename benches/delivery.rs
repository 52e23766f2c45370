//! `make bench`: Hookboard's figures next to the ceilings of the same machine, measured in
//! the same run (the machine is shared and noisy; only same-run ratios mean something).
//!
//! Starts a private, durable PostgreSQL (fsync on), a fast local receiver answering 204,
//! and measures: single-row commit and raw HTTP ceilings, end-to-end deliveries per second,
//! delivery lag at a steady rate, Excel exports, the idle memory of `hookboard serve`, and
//! its pages and logins under load (`delivery/pages.rs`).
//! Writes `target/bench/results.json`.

#[path = "delivery/filters.rs"]
mod filters;
#[path = "delivery/history.rs"]
mod history;
#[path = "delivery/ordering.rs"]
mod ordering;
#[path = "delivery/pages.rs"]
mod pages;
#[path = "delivery/statements.rs"]
mod statements;
#[path = "delivery/waits.rs"]
mod waits;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::{App, HttpResponse, HttpServer, web};
use diesel::prelude::*;
use hookboard::clock::{Clock, SystemClock};
use hookboard::crypto::SecretBox;
use hookboard::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use hookboard::delivery::dispatcher::{self, Dispatcher};
use hookboard::delivery::outbox::{self, NewEvent};
use hookboard::metrics::Metrics;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::webhook::Webhook;
use hookboard::validation::webhook::Input;
use serde_json::json;

const EVENTS: usize = 20_000;
/// Rounds of the end-to-end figure; the median is reported.
const ROUNDS: usize = 3;
const OTHER_WEBHOOKS: usize = 60;
const LAG_RATE: u64 = 200;
const LAG_SECONDS: u64 = 10;
const CEILING_SECONDS: u64 = 5;
/// The bench's database in its embedded cluster.
const DATABASE: &str = "bench";
/// Deliveries stored for the page figures (spread over 30 days, one attempt each).
const STORED_DELIVERIES: i64 = 1_000_000;
/// The retention of the worker and `serve`: longer than the history, so that only the
/// history section's own pass removes any of it.
const RETENTION_DAYS: &str = "3650";
/// Concurrent logged-in clients for the page figures.
const PAGE_CLIENTS: usize = 16;

/// An export's time, peak memory growth (KiB) and file size.
type Export = (Duration, u64, usize);

/// What the receiver saw.
#[derive(Default)]
struct Seen {
    count: AtomicUsize,
    lags_us: Mutex<Vec<u64>>,
    order: ordering::Order,
}

/// The one section `BENCH` names, if any, which `make bench` measures after the ceilings
/// and the delivery rate, writing its figures to `target/bench/<section>.json`:
/// `deliveries` (the lag, about 30 s, for working on the dispatcher), `history` (the rate
/// over an empty history and over the history section's, for working on the cost of
/// history), `pages` (logins and pages; the rate's events are the pages' history too) and
/// `ordering` (the ordered webhook's section).
fn section() -> Option<String> {
    std::env::var("BENCH")
        .ok()
        .filter(|v| ["deliveries", "history", "pages", "ordering"].contains(&v.as_str()))
}

/// Whether `BENCH` names this section.
fn only(name: &str) -> bool {
    section().as_deref() == Some(name)
}

/// `VACUUM (ANALYZE) tables` (every table when empty) after this session's own bulk
/// writes. Their row counts are flushed to the statistics first: otherwise they arrive
/// after the VACUUM has reset them (a session flushes at most once a second), and
/// autovacuum vacuums every table again a minute later, during the measurement (seen: 30
/// attempt partitions, 0.7 s each, under the delivery rate over the history).
pub(crate) fn vacuum_analyze(conn: &mut diesel::PgConnection, tables: &str) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    diesel::sql_query("SELECT pg_stat_force_next_flush()").execute(conn)?;
    diesel::sql_query(format!("VACUUM (ANALYZE) {tables}")).execute(conn)?;
    Ok(())
}

fn now_ns() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos()
}

async fn receive(seen: web::Data<Seen>, body: web::Bytes) -> HttpResponse {
    let value = serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default();
    if !seen.order.arrived(&value["data"]) {
        return HttpResponse::InternalServerError().finish();
    }
    seen.count.fetch_add(1, Ordering::Relaxed);
    if let Some(sent) = value["data"]["sent_ns"]
        .as_str()
        .and_then(|s| s.parse::<u128>().ok())
    {
        seen.lags_us
            .lock()
            .unwrap()
            .push(((now_ns().saturating_sub(sent)) / 1000) as u64);
    }
    HttpResponse::NoContent().finish()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").parse().unwrap_or(0))
        })
        .unwrap_or(0)
}

/// Runs `work` while sampling this process's RSS; returns its result, the time and the
/// peak growth in KiB.
fn measured<T>(work: impl FnOnce() -> T) -> (T, Duration, u64) {
    let pid = std::process::id();
    let base = rss_kib(pid);
    let peak = Arc::new(AtomicUsize::new(base as usize));
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        std::thread::spawn(move || {
            while !done.load(Ordering::Relaxed) {
                peak.fetch_max(rss_kib(pid) as usize, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };
    let started = Instant::now();
    let result = work();
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    (
        result,
        took,
        (peak.load(Ordering::Relaxed) as u64).saturating_sub(base),
    )
}

/// Publishes [`LAG_RATE`] events a second for [`LAG_SECONDS`], one by one, the `i`-th
/// made by `event(i)` just before it goes: the steady traffic the lag figures measure.
async fn steadily(
    pool: &hookboard::db::DbPool,
    tenant: &Tenant,
    event: impl Fn(u64) -> NewEvent + Send + 'static,
) -> anyhow::Result<()> {
    let (pool, tenant) = (pool.clone(), tenant.clone());
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<()> {
        let conn = &mut pool.get()?;
        let interval = Duration::from_micros(1_000_000 / LAG_RATE);
        let start = Instant::now();
        for i in 0..(LAG_RATE * LAG_SECONDS) {
            let due = start + interval * i as u32;
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
            outbox::publish(conn, &tenant, &[event(i)], Clock::now(&SystemClock))?;
        }
        Ok(())
    })
    .await?
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index] as f64 / 1000.0
}

fn main() -> anyhow::Result<()> {
    // `cargo test --all-targets` runs bench targets too (without `--bench`): the harness
    // takes minutes and is no test, so it only runs under `cargo bench` / `make bench`.
    if !std::env::args().any(|arg| arg == "--bench") {
        println!("the benchmark runs with `make bench` (cargo bench); skipped under cargo test");
        return Ok(());
    }
    let dir = std::env::temp_dir().join(format!("hookboard-bench-{}", std::process::id()));
    let server = EmbeddedPostgres::start(&EmbeddedOptions {
        data_dir: dir.clone(),
        unsafe_fast: false,
        statement_stats: statements::enabled(),
    })?;
    let admin_url = server.url("postgres");
    {
        let mut admin = PgConnection::establish(&admin_url)?;
        diesel::sql_query(format!("CREATE DATABASE {DATABASE}")).execute(&mut admin)?;
    }
    let databases = Databases {
        bench: server.url(DATABASE),
        twin: server.url(history::TWIN),
        admin: admin_url,
    };
    let results = actix_web::rt::System::new().block_on(run(databases));
    server.stop();
    let _ = std::fs::remove_dir_all(&dir);
    let results = results?;
    std::fs::create_dir_all("target/bench")?;
    let file = format!("target/bench/{}.json", section().as_deref().unwrap_or("results"));
    std::fs::write(&file, serde_json::to_string_pretty(&results)?)?;
    println!("\nwritten to {file}");
    Ok(())
}

/// The embedded cluster's databases.
struct Databases {
    /// The bench's own.
    bench: String,
    /// The bench's as it stood before the history ([`history::twin`]).
    twin: String,
    /// Where the twin is created from.
    admin: String,
}

async fn run(databases: Databases) -> anyhow::Result<serde_json::Value> {
    let url = databases.bench.clone();
    let pool = hookboard::db::connect(&url, 16)?;
    let mut setup = pool.get()?;
    hookboard::db::run_migrations(&mut setup)?;
    history::reserve(&mut setup)?;
    drop(setup);
    statements::install(&pool)?;
    hookboard::delivery::http::install_crypto();

    let seen = web::Data::new(Seen::default());
    let receiver = {
        let seen = seen.clone();
        HttpServer::new(move || {
            App::new()
                .app_data(seen.clone())
                .route("/hook", web::post().to(receive))
        })
        .workers(1)
        .bind("127.0.0.1:0")?
    };
    let receiver_url = format!("http://{}/hook", receiver.addrs()[0]);
    actix_web::rt::spawn(receiver.run());

    // Ceiling 1: single-row durable commits per second, 8 clients.
    {
        let mut setup = PgConnection::establish(&url)?;
        diesel::sql_query("CREATE TABLE bench_commits (id bigserial PRIMARY KEY, x int)")
            .execute(&mut setup)?;
    }
    let commits = commit_ceiling(&url, Duration::from_secs(CEILING_SECONDS)).await?;
    println!("ceiling: {commits:.0} single-row commits/s (8 clients)");

    // Ceiling 2: raw HTTP POSTs per second from a plain client, 64 in flight.
    let raw_http = {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(CEILING_SECONDS);
        let count = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let (client, url, count) = (client.clone(), receiver_url.clone(), count.clone());
                actix_web::rt::spawn(async move {
                    while Instant::now() < deadline {
                        if client.post(&url).body("{}").send().await.is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await?;
        }
        count.load(Ordering::Relaxed) as f64 / CEILING_SECONDS as f64
    };
    println!("ceiling: {raw_http:.0} raw HTTP POSTs/s (64 in flight)");

    // The tenant, the target webhook and 60 others on other event types.
    let secrets = SecretBox::new(&[7; 32]);
    let (tenant, target) = {
        let (pool, secrets, receiver_url) = (pool.clone(), secrets.clone(), receiver_url.clone());
        actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<(Tenant, Webhook)> {
            let conn = &mut pool.get()?;
            let tenant = Tenant::create(conn, "Bench Tours", Plan::Scale)?;
            let tenant = Tenant::set_webhooks_enabled(conn, tenant.id, true)?;
            let input = Input {
                url: receiver_url.clone(),
                events: vec!["booking.created".into()],
                ..Input::default()
            };
            let (target, _) = Webhook::create(conn, tenant.id, &valid(input.clone()), &secrets)?;
            for i in 0..OTHER_WEBHOOKS {
                let input = Input {
                    url: format!("{receiver_url}?other={i}"),
                    events: vec!["payment.completed".into()],
                    ..Input::default()
                };
                Webhook::create(conn, tenant.id, &valid(input.clone()), &secrets)?;
            }
            Ok((tenant, target))
        })
        .await??
    };

    let handle = start_dispatcher(&pool, &url, &secrets)?;
    actix_web::rt::time::sleep(Duration::from_millis(300)).await;

    // End to end: 20,000 events in batches of 500, until all have arrived; three rounds
    // after a warm-up, the median counts (one round moves by a tenth from run to run on
    // this machine).
    let empty_history = rounds(&pool, &url, &tenant, &seen).await?;
    let (per_second, ratio, round_ceiling) = (
        empty_history.per_second,
        empty_history.ratio,
        empty_history.round_ceiling,
    );
    let hot: (i64, i64) = {
        #[derive(QueryableByName)]
        struct Updates {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            all: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            hot: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            dead: i64,
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            vacuums: i64,
        }
        let conn = &mut pool.get()?;
        let u: Updates = diesel::sql_query(
            "SELECT n_tup_upd AS all, n_tup_hot_upd AS hot, n_dead_tup AS dead, autovacuum_count AS vacuums
             FROM pg_stat_user_tables WHERE relname = 'deliveries'",
        )
        .get_result(conn)?;
        println!(
            "deliveries: {} dead row versions, autovacuumed {} times",
            u.dead, u.vacuums
        );
        (u.all, u.hot)
    };
    println!(
        "end to end: median {per_second:.0}/s; deliveries updated {} times, {} in place (HOT; statistics may lag a second)",
        hot.0, hot.1
    );

    if only("history") {
        actix_web::rt::task::spawn_blocking(move || handle.shutdown(Duration::from_secs(20))).await?;
        let history = history::run(&pool, &databases, &tenant, target.id, &seen, &secrets).await?;
        println!(
            "\n| measure | figure | ratio |\n|---|---|---|\n| single-row commits/s (ceiling) | {commits:.0} | |\n| deliveries/s end to end (median of {ROUNDS}) | {per_second:.0} | {ratio:.2}x the {round_ceiling:.0} commits/s just before |"
        );
        println!("{}", history.rows(&empty_history, &[]));
        return Ok(json!({
            "ceiling_commits_per_s": commits,
            "deliveries_per_s": per_second,
            "deliveries_per_s_rounds": &empty_history.figures,
            "ratio_to_commits": ratio,
            "wal_bytes_per_delivery": empty_history.wal_per_delivery,
            "blocks_per_delivery": { "hit": empty_history.blocks_hit_per_delivery, "read": empty_history.blocks_read_per_delivery },
            "history": history.json(),
        }));
    }

    if only("ordering") {
        let order = ordering::run(&pool, &secrets, &receiver_url, &seen).await?;
        actix_web::rt::task::spawn_blocking(move || handle.shutdown(Duration::from_secs(20))).await?;
        println!("\n| measure | figure | ratio |\n|---|---|---|\n{}", order.rows());
        return Ok(json!({ "ordering": order.json() }));
    }

    if only("pages") {
        actix_web::rt::task::spawn_blocking(move || handle.shutdown(Duration::from_secs(20))).await?;
        let (idle_kib, page_figures, pages) = page_section(&pool, &url, &tenant, target.id).await?;
        println!("\n| measure | figure | ratio |\n|---|---|---|");
        for (name, page) in [
            ("/webhooks", &pages.0),
            ("webhook page", &pages.1),
            ("dashboard `/`", &pages.2),
        ] {
            println!(
                "| {name}, {PAGE_CLIENTS} clients | {:.0}/s, p50 / p99 {:.1} / {:.1} ms | |",
                page.per_second, page.p50, page.p99
            );
        }
        println!(
            "| idle memory, hookboard serve | {:.1} MiB | |",
            idle_kib as f64 / 1024.0
        );
        println!("{}", page_figures.rows());
        return Ok(json!({ "pages": page_figures.json(), "idle_rss_kib": idle_kib }));
    }

    // Lag at a steady 200 events/s, published one by one.
    seen.lags_us.lock().unwrap().clear();
    steadily(&pool, &tenant, |_| NewEvent {
        kind: "booking.created".into(),
        data: json!({"sent_ns": now_ns().to_string()}),
        occurred_at: None,
        connection: None,
        language: None,
        idempotency_key: None,
        ordering_key: None,
    })
    .await?;
    actix_web::rt::time::sleep(Duration::from_secs(2)).await;
    let mut lags = seen.lags_us.lock().unwrap().clone();
    lags.sort_unstable();
    let (p50, p95, p99) = (
        percentile(&lags, 0.50),
        percentile(&lags, 0.95),
        percentile(&lags, 0.99),
    );
    println!(
        "lag at {LAG_RATE}/s: p50 {p50:.1} ms, p95 {p95:.1} ms, p99 {p99:.1} ms ({} samples)",
        lags.len()
    );
    let order = ordering::run(&pool, &secrets, &receiver_url, &seen).await?;
    let filtering = filters::run(&pool, &secrets, &receiver_url).await?;
    actix_web::rt::task::spawn_blocking(move || handle.shutdown(Duration::from_secs(20))).await?;
    let mut delivery_figures = json!({
        "ordering": order.json(),
        "filters": filtering.json(),
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
        "ceiling_commits_per_s": commits,
        "ceiling_raw_http_per_s": raw_http,
        "deliveries_per_s": per_second,
        "deliveries_per_s_rounds": &empty_history.figures,
        "wal_bytes_per_delivery": empty_history.wal_per_delivery,
        "blocks_per_delivery": { "hit": empty_history.blocks_hit_per_delivery, "read": empty_history.blocks_read_per_delivery },
        "ratio_to_commits": ratio,
        "lag_ms": { "p50": p50, "p95": p95, "p99": p99, "rate_per_s": LAG_RATE },
    });
    if only("deliveries") {
        println!(
            "\n| measure | figure | ratio |\n|---|---|---|\n| single-row commits/s (ceiling) | {commits:.0} | |\n| raw HTTP POSTs/s (ceiling) | {raw_http:.0} | |\n| deliveries/s end to end (median of {ROUNDS}) | {per_second:.0} | {ratio:.2}x the {round_ceiling:.0} commits/s just before |\n| lag p50 / p95 / p99 at 200/s | {p50:.1} / {p95:.1} / {p99:.1} ms | |"
        );
        println!("{}", order.rows());
        println!("{}", filtering.rows());
        return Ok(delivery_figures);
    }

    // Excel exports: 100 webhooks, then 100,000 deliveries of one webhook.
    let (export_webhooks, export_deliveries) = {
        let (pool, tenant, secrets, receiver_url) = (
            pool.clone(),
            tenant.clone(),
            secrets.clone(),
            receiver_url.clone(),
        );
        actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<(Export, Export)> {
            let conn = &mut pool.get()?;
            for i in 0..(100 - 1 - OTHER_WEBHOOKS) {
                let input = Input { url: format!("{receiver_url}?more={i}"), events: vec!["form.submitted".into()], ..Input::default() };
                Webhook::create(conn, tenant.id, &valid(input.clone()), &secrets)?;
            }
            let (bytes, took, peak) = measured(|| hookboard::services::export::webhooks(conn, tenant.id.into(), &Default::default()));
            let webhooks = (took, peak, bytes?.len());
            diesel::sql_query(
                "INSERT INTO deliveries (tenant_id, webhook_id, event_id, status, attempt_count, last_status_code, completed_at, done_on)
                 SELECT $1, $2, (SELECT id FROM events LIMIT 1), 'succeeded', 1, 204, now(), (now() AT TIME ZONE 'UTC')::date FROM generate_series(1, 100000 - (SELECT count(*) FROM deliveries WHERE webhook_id = $2))",
            )
            .bind::<diesel::sql_types::BigInt, _>(tenant.id)
            .bind::<diesel::sql_types::BigInt, _>(target.id)
            .execute(conn)?;
            let (bytes, took, peak) = measured(|| hookboard::services::export::deliveries(conn, target.id, &Default::default(), "UTC"));
            Ok((webhooks, (took, peak, bytes?.len())))
        })
        .await??
    };
    println!(
        "export: 100 webhooks in {:.1?} (+{} KiB peak), 100,000 deliveries in {:.2?} (+{} KiB peak, {} bytes)",
        export_webhooks.0, export_webhooks.1, export_deliveries.0, export_deliveries.1, export_deliveries.2
    );

    let (idle_kib, page_figures, pages) = page_section(&pool, &url, &tenant, target.id).await?;

    let table = [
        (
            "single-row commits/s (ceiling)",
            format!("{commits:.0}"),
            String::new(),
        ),
        (
            "raw HTTP POSTs/s (ceiling)",
            format!("{raw_http:.0}"),
            String::new(),
        ),
        (
            "deliveries/s end to end (median of 3 rounds)",
            format!("{per_second:.0}"),
            format!(
                "{ratio:.2}x the {round_ceiling:.0} commits/s just before, {:.2}x raw HTTP",
                per_second / raw_http
            ),
        ),
        (
            "lag p50 / p95 / p99 at 200/s",
            format!("{p50:.1} / {p95:.1} / {p99:.1} ms"),
            String::new(),
        ),
        (
            "export 100 webhooks",
            format!(
                "{:.1} ms, +{:.1} MiB",
                export_webhooks.0.as_secs_f64() * 1000.0,
                export_webhooks.1 as f64 / 1024.0
            ),
            String::new(),
        ),
        (
            "export 100,000 deliveries",
            format!(
                "{:.2} s, +{:.1} MiB",
                export_deliveries.0.as_secs_f64(),
                export_deliveries.1 as f64 / 1024.0
            ),
            String::new(),
        ),
        (
            "/webhooks, 16 clients",
            format!(
                "{:.0}/s, p50 / p99 {:.1} / {:.1} ms",
                pages.0.per_second, pages.0.p50, pages.0.p99
            ),
            String::new(),
        ),
        (
            "webhook page (1,000,000 deliveries), 16 clients",
            format!(
                "{:.0}/s, p50 / p99 {:.1} / {:.1} ms",
                pages.1.per_second, pages.1.p50, pages.1.p99
            ),
            String::new(),
        ),
        (
            "memory of hookboard serve under page load",
            format!("{:.1} MiB", pages.0.rss_kib.max(pages.1.rss_kib) as f64 / 1024.0),
            String::new(),
        ),
        (
            "idle memory, hookboard serve",
            format!("{:.1} MiB", idle_kib as f64 / 1024.0),
            String::new(),
        ),
    ];
    println!("\n| measure | figure | ratio |\n|---|---|---|");
    for (name, figure, ratio) in &table {
        println!("| {name} | {figure} | {ratio} |");
    }
    println!("{}", order.rows());
    println!("{}", filtering.rows());
    println!("{}", page_figures.rows());
    // Cost with history last: it writes gigabytes the sections above should not read.
    let history = history::run(&pool, &databases, &tenant, target.id, &seen, &secrets).await?;
    println!(
        "{}",
        history.rows(&empty_history, &[&pages.0, &pages.1, &pages.2])
    );
    let rest = json!({
        "export_100_webhooks": { "ms": export_webhooks.0.as_secs_f64() * 1000.0, "peak_growth_kib": export_webhooks.1 },
        "export_100000_deliveries": { "s": export_deliveries.0.as_secs_f64(), "peak_growth_kib": export_deliveries.1, "bytes": export_deliveries.2 },
        "idle_rss_kib": idle_kib,
        "history": history.json(),
        "pages": page_figures.json(),
        "list_page": { "per_s": pages.0.per_second, "p50_ms": pages.0.p50, "p99_ms": pages.0.p99, "clients": PAGE_CLIENTS },
        "webhook_page": { "per_s": pages.1.per_second, "p50_ms": pages.1.p50, "p99_ms": pages.1.p99, "clients": PAGE_CLIENTS, "stored_deliveries": STORED_DELIVERIES },
        "dashboard_page": { "per_s": pages.2.per_second, "p50_ms": pages.2.p50, "p99_ms": pages.2.p99, "clients": PAGE_CLIENTS },
        "rss_under_page_load_kib": pages.0.rss_kib.max(pages.1.rss_kib).max(pages.2.rss_kib),
    });
    if let (Some(all), serde_json::Value::Object(rest)) = (delivery_figures.as_object_mut(), rest) {
        all.extend(rest);
    }
    Ok(delivery_figures)
}

/// The page figures against `hookboard serve` on this database: its idle memory (KiB),
/// then logins and pages under load ([`pages::run`]), then `/webhooks`, the target webhook's
/// page and the dashboard saturated, once the target webhook holds a long history.
async fn page_section(
    pool: &hookboard::db::DbPool,
    url: &str,
    tenant: &Tenant,
    target_id: i64,
) -> anyhow::Result<(u64, pages::Figures, (PageLoad, PageLoad, PageLoad))> {
    // The webhook page over a long history: 1,000,000 deliveries of the target webhook
    // over 30 days, each with its attempt (what the page's log and chart read), numbered
    // oldest first as a live webhook's are, so the log's first page is its newest day.
    let seeded = {
        let (pool, tenant_id, webhook_id) = (pool.clone(), tenant.id, target_id);
        actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<Duration> {
            let conn = &mut pool.get()?;
            let started = Instant::now();
            // Into their days' partitions, as the housekeeping adds them day by day.
            let today = chrono::Utc::now().date_naive();
            hookboard::models::delivery::add_days(conn, today - chrono::Days::new(31), today)?;
            diesel::sql_query(
                "INSERT INTO deliveries (tenant_id, webhook_id, event_id, status, attempt_count, last_status_code, created_at, updated_at, completed_at, next_attempt_at, done_on)
                 SELECT $1, $2, (SELECT id FROM events LIMIT 1), 'succeeded', 1, 204, t, t, t, t, (t AT TIME ZONE 'UTC')::date
                 FROM (SELECT now() - (($3 - g) * interval '30 days' / $3) AS t
                       FROM generate_series(1, $3 - (SELECT count(*) FROM deliveries WHERE webhook_id = $2)) g) s",
            )
            .bind::<diesel::sql_types::BigInt, _>(tenant_id)
            .bind::<diesel::sql_types::BigInt, _>(webhook_id)
            .bind::<diesel::sql_types::BigInt, _>(STORED_DELIVERIES)
            .execute(conn)?;
            diesel::sql_query(
                "INSERT INTO delivery_attempts (delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms, status_code, succeeded, request_headers, response_headers)
                 SELECT d.id, d.tenant_id, d.webhook_id, 1, d.created_at, 3, 204, true, '{}', '{}'
                 FROM deliveries d
                 WHERE d.webhook_id = $1 AND NOT EXISTS (SELECT 1 FROM delivery_attempts a WHERE a.delivery_id = d.id)",
            )
            .bind::<diesel::sql_types::BigInt, _>(webhook_id)
            .execute(conn)?;
            // A month-old history has long been vacuumed: hint bits and the visibility map
            // set, as autovacuum leaves them, so the page load does not pay for the seeding.
            // Every table, so each is analyzed once (the others are small).
            vacuum_analyze(conn, "")?;
            // What the VACUUM dirtied is written out now, not while pages are measured.
            diesel::sql_query("CHECKPOINT").execute(conn)?;
            Ok(started.elapsed())
        })
        .await??
    };
    println!("stored {STORED_DELIVERIES} deliveries with their attempts in {seeded:.1?}");
    let (child, port) = serve(url).await?;
    actix_web::rt::time::sleep(Duration::from_secs(3)).await;
    let idle_kib = rss_kib(child.id());
    println!(
        "idle memory of hookboard serve: {:.1} MiB",
        idle_kib as f64 / 1024.0
    );
    let base = format!("http://127.0.0.1:{port}");
    let measured = async {
        let figures = pages::run(pool, tenant, &base, target_id).await?;
        let saturated = (
            page_load(&base, "/webhooks", child.id()).await?,
            page_load(&base, &format!("/webhooks/{target_id}"), child.id()).await?,
            // The operations dashboard (SPEC 9a): aggregates of the same stored traffic.
            page_load(&base, "/", child.id()).await?,
        );
        anyhow::Ok((figures, saturated))
    }
    .await;
    stop(child)?;
    let (figures, saturated) = measured?;
    Ok((idle_kib, figures, saturated))
}

fn csrf_of(html: &str) -> String {
    let start = html
        .find("name=\"csrf-token\" content=\"")
        .map(|i| i + 27)
        .unwrap_or(0);
    html[start..].split('"').next().unwrap_or("").to_owned()
}

async fn logged_in(base: &str, email: &str) -> anyhow::Result<reqwest::Client> {
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        // Under the server's keep-alive (actix's 5 s): a connection left idle between two
        // loads is dropped here first, never reused just as the server closes it ("connection
        // closed before message completed" ended a run once).
        .pool_idle_timeout(Duration::from_secs(2))
        .build()?;
    let token = csrf_of(&client.get(format!("{base}/login")).send().await?.text().await?);
    let response = client
        .post(format!("{base}/login"))
        .form(&[
            ("email", email),
            ("password", pages::PASSWORD),
            ("csrf_token", &token),
        ])
        .send()
        .await?;
    anyhow::ensure!(response.status() == 303, "login failed: {}", response.status());
    Ok(client)
}

/// Single-row durable commits per second from 8 clients during `period` (table
/// `bench_commits`).
async fn commit_ceiling(url: &str, period: Duration) -> anyhow::Result<f64> {
    let url = url.to_owned();
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<f64> {
        let deadline = Instant::now() + period;
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let url = url.clone();
                std::thread::spawn(move || -> anyhow::Result<u64> {
                    let mut conn = PgConnection::establish(&url)?;
                    let mut n = 0u64;
                    while Instant::now() < deadline {
                        diesel::sql_query("INSERT INTO bench_commits (x) VALUES (1)").execute(&mut conn)?;
                        n += 1;
                    }
                    Ok(n)
                })
            })
            .collect();
        let mut total = 0;
        for handle in handles {
            total += handle
                .join()
                .map_err(|_| anyhow::anyhow!("a commit client panicked"))??;
        }
        Ok(total as f64 / period.as_secs_f64())
    })
    .await?
}

/// One round of the end-to-end figure.
struct Round {
    took: Duration,
    published: Duration,
    /// Deliveries that arrived while publishing went on.
    during: usize,
}

impl Round {
    fn per_second(&self) -> f64 {
        EVENTS as f64 / self.took.as_secs_f64()
    }
}

/// Publishes [`EVENTS`] events in batches of 500 for the target webhook and waits until
/// every delivery has arrived.
async fn end_to_end(
    pool: &hookboard::db::DbPool,
    tenant: &Tenant,
    seen: &web::Data<Seen>,
) -> anyhow::Result<Round> {
    let before = seen.count.load(Ordering::Relaxed);
    let started = Instant::now();
    {
        let (pool, tenant) = (pool.clone(), tenant.clone());
        actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<()> {
            let conn = &mut pool.get()?;
            for chunk in 0..(EVENTS / 500) {
                let batch: Vec<NewEvent> = (0..500)
                    .map(|i| NewEvent {
                        kind: "booking.created".into(),
                        data: json!({"id": format!("bkg_{chunk}_{i}"), "total": 10800}),
                        occurred_at: None,
                        connection: None,
                        language: None,
                        idempotency_key: None,
                        ordering_key: None,
                    })
                    .collect();
                outbox::publish(conn, &tenant, &batch, Clock::now(&SystemClock))?;
            }
            Ok(())
        })
        .await??;
    }
    let published = started.elapsed();
    let during = seen.count.load(Ordering::Relaxed) - before;
    while seen.count.load(Ordering::Relaxed) - before < EVENTS {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(600), "deliveries stalled");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(Round {
        took: started.elapsed(),
        published,
        during,
    })
}

/// Throughput and latency of one page, and the server's memory at the end.
struct PageLoad {
    per_second: f64,
    p50: f64,
    p99: f64,
    rss_kib: u64,
}

/// [`PAGE_CLIENTS`] logged-in clients asking for `path` as fast as it answers, for
/// [`CEILING_SECONDS`] (`pages::load` without think time), and the server's memory then.
async fn page_load(base: &str, path: &str, server_pid: u32) -> anyhow::Result<PageLoad> {
    let reader = pages::Reader::sign_in(base).await?;
    statements::reset()?;
    reader.warm_up(path).await?;
    let period = Duration::from_secs(CEILING_SECONDS);
    let latency = pages::load(&reader, path, PAGE_CLIENTS, Duration::ZERO, period).await?;
    let load = PageLoad {
        per_second: latency.per_s,
        p50: latency.p50,
        p99: latency.p99,
        rss_kib: rss_kib(server_pid),
    };
    println!(
        "{path}: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms with {PAGE_CLIENTS} clients",
        load.per_second, load.p50, load.p99
    );
    statements::print(&format!("{path} with {PAGE_CLIENTS} clients"))?;
    Ok(load)
}

/// A webhook to the bench's loopback receiver, checked by the same validation as every
/// webhook, in a world that allows it.
fn valid(input: Input) -> hookboard::validation::webhook::Valid {
    use hookboard::validation::{ssrf, webhook};
    let known = input.events.clone();
    let loopback = ssrf::parse_allow_list(&["127.0.0.0/8".into()]).expect("a CIDR");
    let world = webhook::Context {
        allow_http: true,
        allowed_private: &loopback,
        known_events: &known,
        examples: &[],
        tenant_connections: &[],
        resolve: false,
    };
    webhook::validate(input, &world).expect("the bench's webhooks are valid")
}

/// The delivery worker on the bench's database, allowed to send to the loopback receiver.
fn start_dispatcher(
    pool: &hookboard::db::DbPool,
    url: &str,
    secrets: &SecretBox,
) -> anyhow::Result<dispatcher::Handle> {
    let settings = hookboard::settings::Settings::from_lookup(|name| match name {
        "DATABASE_URL" => Some(url.to_owned()),
        "HOOKBOARD_ALLOW_PRIVATE_TARGETS" => Some("127.0.0.0/8".into()),
        "HOOKBOARD_SECRET_KEY" => Some("07".repeat(32)),
        // Retention runs when the history section asks, not on the worker's schedule.
        "HOOKBOARD_RETENTION_DAYS" => Some(RETENTION_DAYS.into()),
        // The dispatcher's own settings may be varied for a run.
        "HOOKBOARD_WORKER_CONCURRENCY" => std::env::var(name).ok(),
        _ => None,
    })?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let worker = Dispatcher::new(
        pool.clone(),
        &settings,
        secrets.clone(),
        clock.clone(),
        Arc::new(Metrics::default()),
    )?;
    Ok(dispatcher::start(worker, url))
}

/// The end-to-end figure: the median of [`ROUNDS`] rounds after a warm-up, each beside a
/// commit ceiling of its own.
struct Rounds {
    per_second: f64,
    /// The median round's deliveries/s over its ceiling.
    ratio: f64,
    round_ceiling: f64,
    figures: Vec<serde_json::Value>,
    /// Write-ahead log per delivery over the counted rounds, bytes.
    wal_per_delivery: f64,
    /// Blocks of the delivery tables and their indexes per delivery over the counted
    /// rounds: found in shared buffers, read from the operating system.
    blocks_hit_per_delivery: f64,
    blocks_read_per_delivery: f64,
}

/// Where the write-ahead log and the delivery tables' block counters stand.
#[derive(QueryableByName)]
struct IoMark {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    wal: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    hit: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    read: i64,
}

fn io_mark(pool: &hookboard::db::DbPool) -> anyhow::Result<IoMark> {
    Ok(diesel::sql_query(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8 AS wal,
                COALESCE(sum(COALESCE(heap_blks_hit, 0) + COALESCE(idx_blks_hit, 0)
                             + COALESCE(toast_blks_hit, 0) + COALESCE(tidx_blks_hit, 0)), 0)::int8 AS hit,
                COALESCE(sum(COALESCE(heap_blks_read, 0) + COALESCE(idx_blks_read, 0)
                             + COALESCE(toast_blks_read, 0) + COALESCE(tidx_blks_read, 0)), 0)::int8 AS read
         FROM pg_statio_user_tables
         WHERE relname = 'events' OR starts_with(relname::text, 'deliveries_')
            OR starts_with(relname::text, 'delivery_attempts_')",
    )
    .get_result(&mut pool.get()?)?)
}

async fn rounds(
    pool: &hookboard::db::DbPool,
    url: &str,
    tenant: &Tenant,
    seen: &web::Data<Seen>,
) -> anyhow::Result<Rounds> {
    // A round first that is not counted: the statements get prepared and the write-ahead
    // log grows to the size the next rounds recycle, as on a server that has been up.
    // Profiled too: the first plans of a worker are made in it (over a month of history,
    // on statistics a VACUUM took while the queue was drained, they once read whole
    // indexes for up to a minute: only this round's profile showed it).
    statements::reset()?;
    let warm_up = end_to_end(pool, tenant, seen).await?;
    statements::print("the warm-up round")?;
    println!(
        "end to end, warm-up round: {:.0}/s (not counted)",
        warm_up.per_second()
    );
    // Each round right after a checkpoint and a commit ceiling of its own. The machine's
    // load drifts over a run, and a ratio means something only next to a ceiling measured
    // at the same time. Without the checkpoint, later rounds ran out of recycled log
    // segments and measured PostgreSQL creating new ones (14.9k, 13.1k, 12.7k deliveries/s
    // in a row, also with VACUUM between rounds), which a server that has been up does not.
    let mut rounds = Vec::new();
    let (mut wal, started) = (0, io_mark(pool)?);
    statements::reset()?;
    for round in 1..=ROUNDS {
        diesel::sql_query("CHECKPOINT").execute(&mut pool.get()?)?;
        let ceiling = commit_ceiling(url, Duration::from_secs(2)).await?;
        let before = io_mark(pool)?.wal;
        let r = end_to_end(pool, tenant, seen).await?;
        let written = io_mark(pool)?.wal - before;
        wal += written;
        println!(
            "end to end, round {round}: {EVENTS} deliveries in {:.2?} = {:.0}/s = {:.2}x the {ceiling:.0} commits/s \
             just before (publishing took {:.2?}, {} delivered meanwhile; then {:.0}/s; {:.2} KB of WAL a delivery)",
            r.took,
            r.per_second(),
            r.per_second() / ceiling,
            r.published,
            r.during,
            (EVENTS - r.during) as f64 / (r.took - r.published).as_secs_f64(),
            written as f64 / EVENTS as f64 / 1000.0
        );
        rounds.push((r, ceiling));
    }
    statements::print(&format!("the {ROUNDS} rounds, with their ceilings"))?;
    // The block counters are flushed by each backend at most once a second, and by an idle
    // one within 10 s: read them once the last round's have all come in.
    actix_web::rt::time::sleep(Duration::from_secs(11)).await;
    let ended = io_mark(pool)?;
    let delivered = (EVENTS * ROUNDS) as f64;
    let (wal_per_delivery, blocks_hit_per_delivery, blocks_read_per_delivery) = (
        wal as f64 / delivered,
        (ended.hit - started.hit) as f64 / delivered,
        (ended.read - started.read) as f64 / delivered,
    );
    println!(
        "end to end, the {ROUNDS} rounds: {:.2} KB of WAL a delivery; delivery tables' blocks a delivery: \
         {blocks_hit_per_delivery:.1} in shared buffers, {blocks_read_per_delivery:.2} read from the system",
        wal_per_delivery / 1000.0
    );
    let round_figures: Vec<serde_json::Value> = rounds
        .iter()
        .map(|(r, ceiling)| json!({ "deliveries_per_s": r.per_second(), "ceiling_commits_per_s": ceiling }))
        .collect();
    rounds.sort_by(|a, b| (a.0.per_second() / a.1).total_cmp(&(b.0.per_second() / b.1)));
    let (median, round_ceiling) = &rounds[rounds.len() / 2];
    let (per_second, round_ceiling) = (median.per_second(), *round_ceiling);
    let ratio = per_second / round_ceiling;
    Ok(Rounds {
        per_second,
        ratio,
        round_ceiling,
        figures: round_figures,
        wal_per_delivery,
        blocks_hit_per_delivery,
        blocks_read_per_delivery,
    })
}

/// `hookboard serve` on the bench's database, once it answers.
async fn serve(url: &str) -> anyhow::Result<(std::process::Child, u16)> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_hookboard"))
        .arg("serve")
        .env("DATABASE_URL", url)
        .env("HOOKBOARD_BIND", format!("127.0.0.1:{port}"))
        .env("HOOKBOARD_SECRET_KEY", "07".repeat(32))
        .env("HOOKBOARD_RETENTION_DAYS", RETENTION_DAYS)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let client = reqwest::Client::new();
    let started = Instant::now();
    while client
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .is_err()
    {
        if started.elapsed() > Duration::from_secs(30) {
            stop(child)?;
            anyhow::bail!("hookboard serve did not start within 30 s");
        }
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
    }
    Ok((child, port))
}

/// Stops a `hookboard serve` started by [`serve`] and waits for it.
fn stop(mut child: std::process::Child) -> anyhow::Result<()> {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    child.wait()?;
    Ok(())
}
