//! The history's days. `delivery_attempts` is partitioned by the UTC day an attempt started
//! (migration `attempts_by_day`), and `deliveries` by the UTC day a delivery finished, with
//! those still to send in a partition of their own (migration `deliveries_by_day`), so that
//! the retention drops a day whole and its disk space goes back to the system. A DEFAULT
//! partition of each takes a row no day holds, so none is ever refused; the housekeeping
//! adds the days ahead so that they stay empty.

use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Text};

use super::retention::Cleaned;

/// Days the housekeeping keeps added ahead of today: a worker stopped for less than a week
/// finds its days there when it starts again.
pub const DAYS_AHEAD: u64 = 7;

/// A table of the history kept by day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct History {
    /// The partitioned table.
    pub table: &'static str,
    /// A day's partition is named after it (`chrono` format).
    day_name: &'static str,
    /// The SQL function that adds a day's partition.
    add_day: &'static str,
    /// The partition that takes what no day holds.
    pub default: &'static str,
}

/// The attempts, by the day they started on.
pub const ATTEMPTS: History = History {
    table: "delivery_attempts",
    day_name: "delivery_attempts_%Y_%m_%d",
    add_day: "add_attempt_day",
    default: "delivery_attempts_default",
};

/// The finished deliveries, by the day they finished on.
pub const DELIVERIES: History = History {
    table: "deliveries",
    day_name: "deliveries_%Y_%m_%d",
    add_day: "add_delivery_day",
    default: "deliveries_default",
};

/// Both, in the order the retention drops a day's partitions: a day's attempts go no later
/// than their deliveries.
const HISTORY: [History; 2] = [ATTEMPTS, DELIVERIES];

/// How long adding or dropping a day waits for its locks before it is left for the next
/// pass. Dropping a partition locks the whole table, and the worker's writes queue behind a
/// lock that waits: so never longer than this.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '500ms'";

/// The first instant of `at`'s UTC day.
pub fn day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    midnight(at.date_naive())
}

/// The first instant of `day`, UTC.
pub(super) fn midnight(day: NaiveDate) -> DateTime<Utc> {
    day.and_time(chrono::NaiveTime::MIN).and_utc()
}

/// Days added, and those that could not be (each with why).
#[derive(Debug, Default)]
pub struct Added {
    pub added: usize,
    pub failed: Vec<(NaiveDate, String)>,
}

/// Adds `today`'s partition and those of the [`DAYS_AHEAD`] days after it that are missing
/// (see [`add_days`]): at start-up and on the housekeeping's schedule.
pub fn add_days_ahead(conn: &mut PgConnection, today: NaiveDate) -> QueryResult<Added> {
    let last = today.checked_add_days(Days::new(DAYS_AHEAD)).unwrap_or(today);
    add_days(conn, today, last)
}

/// Adds the partitions of the days from `first` to `last` (both included) that are missing,
/// to both tables, each in a transaction of its own. A day that cannot be added (its lock
/// not had in time, or rows of it already in the DEFAULT partition) is reported and the
/// others are still added; its rows go to the DEFAULT partition meanwhile.
pub fn add_days(conn: &mut PgConnection, first: NaiveDate, last: NaiveDate) -> QueryResult<Added> {
    let mut done = Added::default();
    for history in HISTORY {
        let present = days(conn, history)?;
        for day in first.iter_days().take_while(|day| *day <= last) {
            if present.contains(&day) {
                continue;
            }
            let added = conn.transaction(|conn| {
                diesel::sql_query(LOCK_TIMEOUT).execute(conn)?;
                diesel::sql_query(format!("SELECT {}($1) AS added", history.add_day))
                    .bind::<Date, _>(day)
                    .get_result::<AddedDay>(conn)
            });
            match added {
                Ok(AddedDay { added: true }) => done.added += 1,
                Ok(AddedDay { added: false }) => {}
                Err(err) => done.failed.push((day, format!("{}: {err}", history.table))),
            }
        }
    }
    Ok(done)
}

/// The days of `history` that have a partition, oldest first.
pub fn days(conn: &mut PgConnection, history: History) -> QueryResult<Vec<NaiveDate>> {
    let names: Vec<Partition> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = $1::regclass",
    )
    .bind::<Text, _>(history.table)
    .load(conn)?;
    let mut days: Vec<NaiveDate> = names
        .iter()
        .filter_map(|p| NaiveDate::parse_from_str(&p.name, history.day_name).ok())
        .collect();
    days.sort_unstable();
    Ok(days)
}

/// Drops the days that end at or before `before`, oldest first, each table's day in a
/// transaction of its own, counting their rows. A day whose lock is not had in time stays
/// for the next pass (counted in `days_left`).
pub(super) fn drop_days_before(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    cleaned: &mut Cleaned,
) -> QueryResult<()> {
    for history in HISTORY {
        for day in days(conn, history)? {
            let Some(end) = day.succ_opt() else { continue };
            if midnight(end) > before {
                break;
            }
            let name = day.format(history.day_name).to_string();
            let dropped = cleaned.batch(conn, |conn| {
                let rows: Rows =
                    diesel::sql_query(format!("SELECT count(*) AS rows FROM \"{name}\"")).get_result(conn)?;
                diesel::sql_query(LOCK_TIMEOUT).execute(conn)?;
                diesel::sql_query(format!("DROP TABLE \"{name}\"")).execute(conn)?;
                Ok(rows.rows as usize)
            });
            match dropped {
                Ok(rows) => {
                    if history == ATTEMPTS {
                        cleaned.attempts += rows;
                    } else {
                        cleaned.deliveries += rows;
                    }
                    cleaned.days_dropped += 1;
                }
                Err(err) => {
                    cleaned.days_left += 1;
                    cleaned.last_failure = Some(format!(
                        "the {} of {day} stay for the next pass: {err}",
                        history.table
                    ));
                }
            }
        }
    }
    Ok(())
}

#[derive(QueryableByName)]
struct AddedDay {
    #[diesel(sql_type = Bool)]
    added: bool,
}

#[derive(QueryableByName)]
struct Partition {
    #[diesel(sql_type = Text)]
    name: String,
}

#[derive(QueryableByName)]
struct Rows {
    #[diesel(sql_type = BigInt)]
    rows: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_starts_at_utc_midnight() {
        let at = "2026-11-28T23:59:59.5Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(
            day_start(at),
            "2026-11-28T00:00:00Z".parse::<DateTime<Utc>>().unwrap()
        );
        assert_eq!(day_start(day_start(at)), day_start(at));
    }

    #[test]
    fn a_partitions_name_reads_back_as_its_day_and_nothing_else_does() {
        let day = NaiveDate::from_ymd_opt(2026, 3, 9).unwrap();
        for (history, expected) in [
            (ATTEMPTS, "delivery_attempts_2026_03_09"),
            (DELIVERIES, "deliveries_2026_03_09"),
        ] {
            let name = day.format(history.day_name).to_string();
            assert_eq!(name, expected);
            assert_eq!(NaiveDate::parse_from_str(&name, history.day_name).ok(), Some(day));
            assert!(NaiveDate::parse_from_str(history.default, history.day_name).is_err());
        }
        // A delivery day's format never reads an attempts' partition, nor the waiting one.
        assert!(NaiveDate::parse_from_str("deliveries_waiting", DELIVERIES.day_name).is_err());
    }
}
