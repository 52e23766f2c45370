//! Cost with history: the same figures over an empty history and over 30 days of a busy
//! tenant (`HOOKBOARD_BENCH_HISTORY` deliveries with an attempt each, 20,000,000 unless
//! set), and what retention's pass over that history takes and frees.
//!
//! The measured traffic runs on ids above [`RESERVED`] (see [`reserve`]); the history is
//! written later below it, dated over the 30 days before the last one.
//!
//! The pages over the history are measured at once with the same pages over a twin of the
//! database as it stood before the history ([`twin`]), half the clients on each: two loads
//! minutes apart moved by 12-19% on this machine even on the list page, which reads no
//! delivery, and loads in turns of a second still caught the machine's hiccups on one side
//! or the other, so only pages measured side by side at once tell what the history itself
//! costs.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamptz};
use hookboard::db::DbPool;
use hookboard::models::tenant::Tenant;

use super::pages::{self, Latency, Reader};
use super::{PAGE_CLIENTS, statements};

/// Ids below this wait for the history.
const RESERVED: i64 = 1_000_000_000;
const DAYS: i64 = 30;
/// The twin's database name.
pub const TWIN: &str = "bench_twin";
/// Clients of each side when a page is measured over the history and its twin at once.
const CLIENTS_A_SIDE: usize = PAGE_CLIENTS / 2;

/// How many deliveries the history holds.
pub fn size() -> i64 {
    std::env::var("HOOKBOARD_BENCH_HISTORY")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(20_000_000)
}

/// Moves the delivery sequence past the ids kept for the history, before any traffic.
pub fn reserve(conn: &mut PgConnection) -> anyhow::Result<()> {
    diesel::sql_query(format!("SELECT setval('deliveries_id_seq', {RESERVED})")).execute(conn)?;
    Ok(())
}

/// Bytes of `deliveries` and of `delivery_attempts` (all its partitions), tables and
/// indexes.
#[derive(Debug, Clone, Copy, QueryableByName)]
pub struct HistoryBytes {
    #[diesel(sql_type = BigInt)]
    pub deliveries: i64,
    #[diesel(sql_type = BigInt)]
    pub attempts: i64,
}

impl HistoryBytes {
    fn read(conn: &mut PgConnection) -> anyhow::Result<Self> {
        Ok(diesel::sql_query(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::int8
                     FROM pg_partition_tree('deliveries')) AS deliveries,
                    (SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::int8
                     FROM pg_partition_tree('delivery_attempts')) AS attempts",
        )
        .get_result(conn)?)
    }

    fn total(&self) -> i64 {
        self.deliveries + self.attempts
    }
}

/// What seeding took.
pub struct Seeded {
    pub deliveries: i64,
    pub took: Duration,
    pub bytes: HistoryBytes,
    /// The tenant's hours the roll-up wrote, and how long it took.
    pub tenant_hours: usize,
    pub rolled_up: Duration,
    /// The start of the UTC day the history was written on: its day 0 began 31 days before.
    pub day: DateTime<Utc>,
}

/// Writes [`size`] deliveries of the tenant's webhooks, each with its attempt, spread over
/// the 30 days before the last one, a partition a day (day 0 is 31 days old).
pub async fn seed(pool: &DbPool, tenant: &Tenant) -> anyhow::Result<Seeded> {
    let (pool, tenant_id, total) = (pool.clone(), tenant.id, size());
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<Seeded> {
        let conn = &mut pool.get()?;
        let started = Instant::now();
        let per_day = total / DAYS;
        let now = Utc::now();
        let written_on = hookboard::models::delivery::day_start(now);
        // Each day into its partition, as the housekeeping adds them day by day.
        let today = now.date_naive();
        hookboard::models::delivery::add_days(conn, today - chrono::Days::new(DAYS as u64 + 1), today)?;
        for day in 0..DAYS {
            let lower = 1 + day * per_day;
            // Whole UTC days, as the attempts' partitions and the retention count them.
            let day_start = written_on - chrono::Duration::days(DAYS + 1 - day);
            diesel::sql_query(
                "INSERT INTO deliveries (id, tenant_id, webhook_id, event_id, event_type, status, attempt_count,
                                         last_status_code, created_at, updated_at, completed_at, next_attempt_at, done_on)
                 SELECT $1 + g, $3, w.ids[1 + g % array_length(w.ids, 1)], (SELECT id FROM events LIMIT 1),
                        'booking.created', 'succeeded', 1, 204, t, t, t, t, (t AT TIME ZONE 'UTC')::date
                 FROM generate_series(0, $2 - 1) g
                 CROSS JOIN (SELECT array_agg(id ORDER BY id) AS ids FROM webhooks WHERE tenant_id = $3) w
                 CROSS JOIN LATERAL (SELECT $4 + g * (interval '1 day' / $2) AS t) s",
            )
            .bind::<BigInt, _>(lower)
            .bind::<BigInt, _>(per_day)
            .bind::<BigInt, _>(tenant_id)
            .bind::<Timestamptz, _>(day_start)
            .execute(conn)?;
            // Through the table's trigger, so the hourly aggregates hold the history too.
            diesel::sql_query(
                "INSERT INTO delivery_attempts (delivery_id, tenant_id, webhook_id, attempt_number, started_at, duration_ms,
                                                status_code, succeeded, request_headers, response_headers)
                 SELECT id, tenant_id, webhook_id, 1, created_at, 3, 204, true, '{}', '{}'
                 FROM deliveries WHERE id >= $1 AND id < $1 + $2",
            )
            .bind::<BigInt, _>(lower)
            .bind::<BigInt, _>(per_day)
            .execute(conn)?;
        }
        // A month-old history has long been vacuumed (hint bits, visibility map).
        super::vacuum_analyze(conn, "deliveries, delivery_attempts")?;
        let took = started.elapsed();
        // And its hours have long been summed per tenant by the worker's housekeeping,
        // which here has them all at once. It is written after the bench's worker rolled up
        // the hours before the last one, so the mark goes back first: a server that lived
        // through the month rolled each hour up as it ended.
        let rolling_up = Instant::now();
        diesel::sql_query("UPDATE tenant_hours_rolled SET until = '-infinity'").execute(conn)?;
        let tenant_hours = hookboard::models::hourly::roll_up(conn, Utc::now())?;
        let rolled_up = rolling_up.elapsed();
        // And autovacuum has long vacuumed those hours (after every 100, migration
        // `tenant_aggregate_reads`), so a week is read from their index alone.
        super::vacuum_analyze(conn, "tenant_hours")?;
        Ok(Seeded {
            deliveries: per_day * DAYS,
            took,
            bytes: HistoryBytes::read(conn)?,
            tenant_hours,
            rolled_up,
            day: written_on,
        })
    })
    .await?
}

/// Copies the bench's database, as it stands, to [`TWIN`] through the cluster's admin
/// database. A template must have no other session: the bench pool's connections (idle:
/// the dispatcher and the page server are stopped by now) are ended first, and the pool
/// opens new ones at their next check-out.
async fn twin(databases: &super::Databases) -> anyhow::Result<()> {
    let admin_url = databases.admin.clone();
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<()> {
        let source = super::DATABASE;
        let admin = &mut PgConnection::establish(&admin_url)?;
        let mut tries = 0;
        loop {
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
            )
            .bind::<diesel::sql_types::Text, _>(source)
            .execute(admin)?;
            // FILE_COPY: the copy is not written to the WAL the history's figures count.
            let created = diesel::sql_query(format!(
                "CREATE DATABASE {TWIN} TEMPLATE {source} STRATEGY FILE_COPY"
            ))
            .execute(admin);
            match created {
                Ok(_) => return Ok(()),
                // A session that connected between the two statements.
                Err(err) if tries < 5 && err.to_string().contains("being accessed by other users") => {
                    tries += 1
                }
                Err(err) => return Err(err.into()),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    })
    .await?
}

/// `path` over the history and over the twin at once, [`CLIENTS_A_SIDE`] clients each
/// without think time for `CEILING_SECONDS`; the statements printed are the history's.
async fn side_by_side(history: &Reader, twin: &Reader, path: &str) -> anyhow::Result<[Latency; 2]> {
    history.warm_up(path).await?;
    twin.warm_up(path).await?;
    statements::reset()?;
    let period = Duration::from_secs(super::CEILING_SECONDS);
    let (with, without) = futures_util::future::try_join(
        pages::load(history, path, CLIENTS_A_SIDE, Duration::ZERO, period),
        pages::load(twin, path, CLIENTS_A_SIDE, Duration::ZERO, period),
    )
    .await?;
    println!(
        "{path} at once, {CLIENTS_A_SIDE} clients a side: over the history {:.0}/s, p50 {:.1} ms, p99 {:.1} ms; over its twin without it {:.0}/s, p50 {:.1} ms, p99 {:.1} ms",
        with.per_s, with.p50, with.p99, without.per_s, without.p50, without.p99
    );
    statements::print(&format!("{path} over the history, at once with its twin"))?;
    Ok([with, without])
}

/// Retention's pass over the history: the oldest day is past it.
pub struct Retention {
    pub took: Duration,
    pub bytes_before: HistoryBytes,
    pub bytes_after: HistoryBytes,
    pub cleaned: hookboard::models::delivery::Cleaned,
}

/// Day 0 of the history written on `day` is past a retention of [`DAYS`] days, and only it
/// (also when the run crossed a midnight since).
pub async fn retention(pool: &DbPool, day: DateTime<Utc>) -> anyhow::Result<Retention> {
    let pool = pool.clone();
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<Retention> {
        let conn = &mut pool.get()?;
        let bytes_before = HistoryBytes::read(conn)?;
        let started = Instant::now();
        let cleaned = hookboard::models::delivery::clean_up(conn, day - chrono::Duration::days(DAYS))?;
        let took = started.elapsed();
        Ok(Retention {
            took,
            bytes_before,
            bytes_after: HistoryBytes::read(conn)?,
            cleaned,
        })
    })
    .await?
}

fn gib(bytes: i64) -> f64 {
    bytes as f64 / (1u64 << 30) as f64
}

impl Retention {
    pub fn row(&self) -> String {
        let (before, after) = (self.bytes_before, self.bytes_after);
        format!(
            "| retention's pass: the oldest day past it ({} attempts, {} deliveries; days dropped {}, left {}) | {:.1} s in {} transactions, the longest {:.0} ms | history {:.2} GiB before, {:.2} GiB after: attempts {:.2} -> {:.2} GiB, deliveries {:.2} -> {:.2} GiB (each the day's partition dropped, its space given back to the system) |",
            self.cleaned.attempts,
            self.cleaned.deliveries,
            self.cleaned.days_dropped,
            self.cleaned.days_left,
            self.took.as_secs_f64(),
            self.cleaned.transactions,
            self.cleaned.longest.as_secs_f64() * 1000.0,
            gib(before.total()),
            gib(after.total()),
            gib(before.attempts),
            gib(after.attempts),
            gib(before.deliveries),
            gib(after.deliveries),
        )
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "s": self.took.as_secs_f64(),
            "attempts": self.cleaned.attempts,
            "deliveries": self.cleaned.deliveries,
            "days_dropped": self.cleaned.days_dropped,
            "days_left": self.cleaned.days_left,
            "transactions": self.cleaned.transactions,
            "longest_transaction_ms": self.cleaned.longest.as_secs_f64() * 1000.0,
            "bytes_before": self.bytes_before.total(),
            "bytes_after": self.bytes_after.total(),
            "attempt_bytes_before": self.bytes_before.attempts,
            "attempt_bytes_after": self.bytes_after.attempts,
            "delivery_bytes_before": self.bytes_before.deliveries,
            "delivery_bytes_after": self.bytes_after.deliveries,
        })
    }
}

impl Seeded {
    pub fn row(&self) -> String {
        format!(
            "| history written: {} deliveries with their attempts over 30 days | {:.0} s | {:.2} GiB; its {} hours summed per tenant in {:.2} s |",
            self.deliveries,
            self.took.as_secs_f64(),
            gib(self.bytes.total()),
            self.tenant_hours,
            self.rolled_up.as_secs_f64()
        )
    }
}

/// The figures over the history, beside those over the empty one of the same run.
pub struct Figures {
    seeded: Seeded,
    rounds: super::Rounds,
    /// Not with `BENCH=history`.
    pages: Option<Pages>,
    retention: Option<Retention>,
}

/// The pages over the history.
struct Pages {
    /// `/webhooks`, the target webhook's page, the dashboard, after a VACUUM, each over
    /// the history and over the twin at once.
    loads: [[Latency; 2]; 3],
    /// The dashboard right after the rounds, before that VACUUM: the finished deliveries'
    /// dead entries still in the due index.
    dashboard_unvacuumed: super::PageLoad,
}

/// The side of each page in [`Pages::loads`]: over the history, over the twin.
const HISTORY_SIDE: usize = 0;
const TWIN_SIDE: usize = 1;

/// Writes the history, then measures the delivery rate and the pages again over it, then
/// retention.
pub async fn run(
    pool: &DbPool,
    databases: &super::Databases,
    tenant: &Tenant,
    target_id: i64,
    seen: &actix_web::web::Data<super::Seen>,
    secrets: &hookboard::crypto::SecretBox,
) -> anyhow::Result<Figures> {
    let url = databases.bench.as_str();
    // The database as it stands is kept beside the history, to measure the pages at once.
    if !super::only("history") {
        twin(databases).await?;
    }
    let seeded = seed(pool, tenant).await?;
    println!(
        "history: {} deliveries with their attempts in {:.0?}, {:.2} GiB; {} tenant hours rolled up in {:.2?}",
        seeded.deliveries,
        seeded.took,
        gib(seeded.bytes.total()),
        seeded.tenant_hours,
        seeded.rolled_up
    );
    let handle = super::start_dispatcher(pool, url, secrets)?;
    let rounds = super::rounds(pool, url, tenant, seen).await;
    actix_web::rt::task::spawn_blocking(move || handle.shutdown(Duration::from_secs(20))).await?;
    let rounds = rounds?;
    if super::only("history") {
        return Ok(Figures {
            seeded,
            rounds,
            pages: None,
            retention: None,
        });
    }
    let (child, port) = super::serve(url).await?;
    let (twin_child, twin_port) = match super::serve(&databases.twin).await {
        Ok(server) => server,
        Err(err) => {
            super::stop(child)?;
            return Err(err.context("the twin's server"));
        }
    };
    let pages = async {
        let base = format!("http://127.0.0.1:{port}");
        let unvacuumed = super::page_load(&base, "/", child.id()).await?;
        // The pages over the empty history were measured right after a VACUUM (of the
        // deliveries the page section stores) and a checkpoint, so these are too, on both
        // databases: the comparison is then of the history alone, not of what the rounds
        // just left behind, nor of the checkpointer writing out what the VACUUM of
        // 20,000,000 rows dirtied.
        let (vacuum, twin_url) = (pool.clone(), databases.twin.clone());
        actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<()> {
            let twin = &mut PgConnection::establish(&twin_url)?;
            diesel::sql_query("VACUUM (ANALYZE) deliveries").execute(twin)?;
            let conn = &mut vacuum.get()?;
            diesel::sql_query("VACUUM (ANALYZE) deliveries").execute(conn)?;
            diesel::sql_query("CHECKPOINT").execute(conn)?;
            Ok(())
        })
        .await??;
        let history = Reader::sign_in(&base).await?;
        let twin = Reader::sign_in(&format!("http://127.0.0.1:{twin_port}")).await?;
        Ok::<_, anyhow::Error>(Pages {
            loads: [
                side_by_side(&history, &twin, "/webhooks").await?,
                side_by_side(&history, &twin, &format!("/webhooks/{target_id}")).await?,
                side_by_side(&history, &twin, "/").await?,
            ],
            dashboard_unvacuumed: unvacuumed,
        })
    }
    .await;
    super::stop(child)?;
    super::stop(twin_child)?;
    let pages = pages?;
    let retention = retention(pool, seeded.day).await?;
    Ok(Figures {
        seeded,
        rounds,
        pages: Some(pages),
        retention: Some(retention),
    })
}

impl Figures {
    /// The table's rows, each beside the same figure over the empty history (`empty_pages`:
    /// none with `BENCH=history`).
    pub fn rows(&self, empty: &super::Rounds, empty_pages: &[&super::PageLoad]) -> String {
        let mut rows = vec![self.seeded.row()];
        rows.push(format!(
            "| deliveries/s over the history, median of 3 | {:.0} ({:.2}x the commits/s just before) | {:+.0}% against {:.2}x over the empty history; target within 10% |",
            self.rounds.per_second,
            self.rounds.ratio,
            (self.rounds.ratio / empty.ratio - 1.0) * 100.0,
            empty.ratio
        ));
        rows.push(format!(
            "| a delivery over the history: WAL; delivery tables' blocks in shared buffers, read from the system | {:.2} KB; {:.1}, {:.2} | over the empty history: {:.2} KB; {:.1}, {:.2} |",
            self.rounds.wal_per_delivery / 1000.0,
            self.rounds.blocks_hit_per_delivery,
            self.rounds.blocks_read_per_delivery,
            empty.wal_per_delivery / 1000.0,
            empty.blocks_hit_per_delivery,
            empty.blocks_read_per_delivery,
        ));
        if let Some(pages) = &self.pages {
            for (name, ([with, twin], earlier)) in ["/webhooks", "webhook page", "dashboard `/`"]
                .iter()
                .zip(pages.loads.iter().zip(empty_pages))
            {
                rows.push(format!(
                    "| {name} over the history at once with its twin without it, {CLIENTS_A_SIDE} clients each: rate, p50 / p99 | {:.0}/s, {:.1} / {:.1} ms | p99 {:+.0}% against the twin's {:.1} ms ({:.0}/s), target within 10%; {:+.0}% against {:.1} ms over the empty history minutes before, {PAGE_CLIENTS} clients |",
                    with.per_s,
                    with.p50,
                    with.p99,
                    (with.p99 / twin.p99 - 1.0) * 100.0,
                    twin.p99,
                    twin.per_s,
                    (with.p99 / earlier.p99 - 1.0) * 100.0,
                    earlier.p99,
                ));
            }
            if let Some(empty) = empty_pages.get(2) {
                let before = &pages.dashboard_unvacuumed;
                rows.push(format!(
                    "| dashboard `/` right after the rounds, before a VACUUM, 16 clients: p50 / p99 | {:.1} / {:.1} ms | p99 {:+.0}% against {:.1} ms over the empty history (vacuumed) |",
                    before.p50,
                    before.p99,
                    (before.p99 / empty.p99 - 1.0) * 100.0,
                    empty.p99
                ));
            }
        }
        rows.extend(self.retention.as_ref().map(Retention::row));
        rows.join("\n")
    }

    /// One figure of each page's load on one side (over the history or its twin).
    fn by_page(&self, side: usize, figure: fn(&Latency) -> f64) -> Option<serde_json::Value> {
        self.pages.as_ref().map(|pages| {
            serde_json::json!({
                "list_page": figure(&pages.loads[0][side]),
                "webhook_page": figure(&pages.loads[1][side]),
                "dashboard_page": figure(&pages.loads[2][side]),
            })
        })
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "deliveries": self.seeded.deliveries,
            "seed_s": self.seeded.took.as_secs_f64(),
            "bytes": self.seeded.bytes.total(),
            "attempt_bytes": self.seeded.bytes.attempts,
            "tenant_hours_rolled_up": self.seeded.tenant_hours,
            "roll_up_s": self.seeded.rolled_up.as_secs_f64(),
            "deliveries_per_s": self.rounds.per_second,
            "ratio_to_commits": self.rounds.ratio,
            "rounds": self.rounds.figures,
            "wal_bytes_per_delivery": self.rounds.wal_per_delivery,
            "blocks_per_delivery": { "hit": self.rounds.blocks_hit_per_delivery, "read": self.rounds.blocks_read_per_delivery },
            "pages_p99_ms": self.by_page(HISTORY_SIDE, |load| load.p99),
            "twin_pages_p99_ms": self.by_page(TWIN_SIDE, |load| load.p99),
            // At once, the rates tell more than a 5-second p99 at 8 clients.
            "pages_per_s": self.by_page(HISTORY_SIDE, |load| load.per_s),
            "twin_pages_per_s": self.by_page(TWIN_SIDE, |load| load.per_s),
            "dashboard_unvacuumed_p99_ms": self.pages.as_ref().map(|pages| pages.dashboard_unvacuumed.p99),
            "retention": self.retention.as_ref().map(Retention::json),
        })
    }
}
