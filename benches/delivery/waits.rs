//! What PostgreSQL's other sessions waited on while a page was loaded: a thread samples
//! `pg_stat_activity` every [`EVERY`] and keeps what was not running on a core (a lock, an
//! I/O, an internal lock) and every autovacuum worker, so that slow requests can be laid
//! beside what the database was doing when they started.

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

/// Each kind of wait: in how many samples it was seen, and when first and last (ms since
/// the sampler started).
pub struct Waits {
    samples: usize,
    seen: BTreeMap<String, (usize, u128, u128)>,
}

impl Sampler {
    /// Starts sampling on a connection of its own, taken from `pool` now.
    pub fn start(pool: &DbPool) -> anyhow::Result<Sampler> {
        let mut conn = pool.get()?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let started = Instant::now();
            let mut waits = Waits {
                samples: 0,
                seen: BTreeMap::new(),
            };
            while !stopped.load(Ordering::Relaxed) {
                let rows: Vec<Activity> = diesel::sql_query(
                    "SELECT backend_type || ': ' || coalesce(wait_event_type || ' ' || wait_event, 'on a core')
                            || coalesce(' (' || left(regexp_replace(query, '\\s+', ' ', 'g'), 60) || ')', '') AS what
                     FROM pg_stat_activity
                     WHERE pid <> pg_backend_pid()
                       AND (backend_type = 'autovacuum worker'
                            OR (state = 'active' AND wait_event_type IN ('Lock', 'LWLock', 'IO', 'IPC', 'BufferPin')))",
                )
                .load(&mut conn)
                .unwrap_or_default();
                let at = started.elapsed().as_millis();
                waits.samples += 1;
                for row in rows {
                    let entry = waits.seen.entry(row.what).or_insert((0, at, at));
                    entry.0 += 1;
                    entry.2 = at;
                }
                std::thread::sleep(EVERY);
            }
            waits
        });
        Ok(Sampler { stop, thread })
    }

    pub fn finish(self) -> Waits {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or(Waits {
            samples: 0,
            seen: BTreeMap::new(),
        })
    }
}

impl Waits {
    /// `n samples; kind: seen in k, from a to b ms; ...`, the most seen first.
    pub fn figure(&self) -> String {
        let mut seen: Vec<_> = self.seen.iter().collect();
        seen.sort_by_key(|(_, (count, ..))| std::cmp::Reverse(*count));
        let listed: Vec<String> = seen
            .iter()
            .take(SHOWN)
            .map(|(what, (count, first, last))| format!("{what}: in {count}, {first}-{last} ms"))
            .collect();
        format!(
            "{} samples every {} ms, {} kinds of wait; {}",
            self.samples,
            EVERY.as_millis(),
            self.seen.len(),
            if listed.is_empty() {
                "none".to_owned()
            } else {
                listed.join("; ")
            }
        )
    }
}
