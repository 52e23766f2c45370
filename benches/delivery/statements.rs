//! `HOOKBOARD_BENCH_STATEMENTS=1 make bench`: what PostgreSQL spent on each statement, from
//! `pg_stat_statements` (planning included), printed after the warm-up round, after the
//! counted delivery rounds and after each page load. The embedded server then loads the
//! extension, which costs a little of every statement: the run's other figures are not the
//! ones to report.
//!
//! Timings say how long; this says where. It found the dashboard's statements planned anew
//! at every load (0.72 ms of planning in a load of about 3 ms of the machine) and the
//! hourly aggregates read with one index probe per webhook.

use std::sync::OnceLock;

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Double, Text};
use hookboard::db::DbPool;

/// The bench's pool, once the extension is installed.
static PROFILED: OnceLock<DbPool> = OnceLock::new();

/// Statements printed in a profile, the costliest first.
const SHOWN: i64 = 12;
/// Characters of a statement's text printed.
const TEXT_CHARS: i32 = 110;

/// Whether this run profiles its statements.
pub fn enabled() -> bool {
    std::env::var("HOOKBOARD_BENCH_STATEMENTS").is_ok_and(|v| v == "1")
}

/// Creates the extension in the bench's database when profiling, and keeps `pool` for
/// [`reset`] and [`print`], which do nothing otherwise.
pub fn install(pool: &DbPool) -> anyhow::Result<()> {
    if !enabled() {
        return Ok(());
    }
    diesel::sql_query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(&mut pool.get()?)?;
    let _ = PROFILED.set(pool.clone());
    Ok(())
}

/// Forgets what was counted so far.
pub fn reset() -> anyhow::Result<()> {
    let Some(pool) = PROFILED.get() else {
        return Ok(());
    };
    diesel::sql_query("SELECT pg_stat_statements_reset()").execute(&mut pool.get()?)?;
    Ok(())
}

#[derive(QueryableByName)]
struct Statement {
    #[diesel(sql_type = BigInt)]
    calls: i64,
    #[diesel(sql_type = Double)]
    exec_ms: f64,
    #[diesel(sql_type = Double)]
    plan_ms: f64,
    #[diesel(sql_type = BigInt)]
    hit: i64,
    #[diesel(sql_type = BigInt)]
    read: i64,
    #[diesel(sql_type = Double)]
    share: f64,
    #[diesel(sql_type = Text)]
    text: String,
}

/// Prints, under `title`, the statements that took most of PostgreSQL's time since the
/// last [`reset`]: calls, their share of all statements' time, and per call the execution
/// and planning time and the buffers found in shared buffers and read from the system.
pub fn print(title: &str) -> anyhow::Result<()> {
    let Some(pool) = PROFILED.get() else {
        return Ok(());
    };
    let statements: Vec<Statement> = diesel::sql_query(
        "SELECT calls, total_exec_time AS exec_ms, total_plan_time AS plan_ms,
                shared_blks_hit AS hit, shared_blks_read AS read,
                -- Of the time of statements sent by clients, which includes that of the
                -- statements run inside them (triggers, functions), marked as inside.
                (total_exec_time + total_plan_time)
                    / nullif(sum(total_exec_time + total_plan_time) FILTER (WHERE toplevel) OVER (), 0) AS share,
                CASE WHEN toplevel THEN '' ELSE 'inside: ' END
                    || left(regexp_replace(query, '\\s+', ' ', 'g'), $1) AS text
         FROM pg_stat_statements
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
         ORDER BY total_exec_time + total_plan_time DESC
         LIMIT $2",
    )
    .bind::<diesel::sql_types::Integer, _>(TEXT_CHARS)
    .bind::<BigInt, _>(SHOWN)
    .load(&mut pool.get()?)?;
    println!(
        "\nstatements, {title} (per call: execution and planning ms, buffers hit / read):\n\
         | calls | share | exec | plan | hit | read | statement |\n|---|---|---|---|---|---|---|"
    );
    for s in statements {
        let per_call = |total: f64| total / s.calls.max(1) as f64;
        println!(
            "| {} | {:.1}% | {:.3} | {:.3} | {:.0} | {:.1} | `{}` |",
            s.calls,
            s.share * 100.0,
            per_call(s.exec_ms),
            per_call(s.plan_ms),
            per_call(s.hit as f64),
            per_call(s.read as f64),
            s.text.replace('|', "\\|").replace('`', "'"),
        );
    }
    Ok(())
}
