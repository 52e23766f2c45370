//! What PostgreSQL's other sessions waited on while a page was loaded: a thread samples
//! `pg_stat_activity` every [`EVERY`] and keeps what was not running on a core (a lock, an
//! I/O, an internal lock) and every autovacuum worker, timed like the slow requests (seconds
//! since the page clients' sign-in), so that the two can be laid side by side.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use diesel::sql_types::Text;
use hookboard::db::DbPool;

const EVERY: Duration = Duration::from_millis(20);
/// Kinds of waits printed, the most seen first.
const SHOWN: usize = 12;

#[derive(QueryableByName)]
struct Activity {
    #[diesel(sql_type = Text)]
    what: String,
}

/// A running sampler; [`Sampler::finish`] stops it.
pub struct Sampler {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Waits>,
}

/// Each kind of wait: in how many samples it was seen, and when first and last.
#[derive(Default)]
pub struct Waits {
    samples: usize,
    /// Samples whose query failed: "none" only means none when this is 0.
    failed: usize,
    seen: BTreeMap<String, (usize, Duration, Duration)>,
}

impl Sampler {
    /// Starts sampling on a connection of its own, taken from `pool` now; times are
    /// since `origin`.
    pub fn start(pool: &DbPool, origin: Instant) -> anyhow::Result<Sampler> {
        let mut conn = pool.get()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut waits = Waits::default();
            while !stopped.load(Ordering::Relaxed) {
                let at = origin.elapsed();
                let sample = diesel::sql_query(
                    "SELECT backend_type || ': ' || coalesce(wait_event_type || ' ' || wait_event, 'on a core')
                            || coalesce(' (' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) || ')', '') AS what
                     FROM pg_stat_activity
                     WHERE pid <> pg_backend_pid()
                       AND (backend_type = 'autovacuum worker'
                            OR (state = 'active' AND wait_event_type IN ('Lock', 'LWLock', 'IO', 'IPC', 'BufferPin')))",
                )
                .load::<Activity>(&mut conn);
                waits.samples += 1;
                match sample {
                    Ok(rows) => {
                        for row in rows {
                            let entry = waits.seen.entry(row.what).or_insert((0, at, at));
                            entry.0 += 1;
                            entry.2 = at;
                        }
                    }
                    Err(_) => waits.failed += 1,
                }
                std::thread::sleep(EVERY);
            }
            waits
        });
        Ok(Sampler { stop, thread })
    }

    pub fn finish(self) -> Waits {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

impl Waits {
    /// `n samples (m failed), k kinds of wait; kind: in c, a-b s; ...`, the most seen first,
    /// in seconds after the page clients' sign-in.
    pub fn figure(&self) -> String {
        let mut seen: Vec<_> = self.seen.iter().collect();
        seen.sort_by_key(|(_, (count, ..))| std::cmp::Reverse(*count));
        let listed: Vec<String> = seen
            .iter()
            .take(SHOWN)
            .map(|(what, (count, first, last))| {
                format!(
                    "{what}: in {count}, {:.2}-{:.2}s",
                    first.as_secs_f64(),
                    last.as_secs_f64()
                )
            })
            .collect();
        format!(
            "{} samples every {} ms ({} failed), {} kinds of wait [s after sign-in]; {}",
            self.samples,
            EVERY.as_millis(),
            self.failed,
            self.seen.len(),
            if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join("; ")
            }
        )
    }
}
