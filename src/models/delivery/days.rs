//! The attempts' days: `delivery_attempts` is partitioned by the UTC day an attempt started
//! (migration `attempts_by_day`), so that the retention drops a day whole and its disk space
//! goes back to the system. A DEFAULT partition takes an attempt no day holds, so none is
//! ever refused; the housekeeping adds the days ahead so that it stays empty.

use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Date, Text};

use super::retention::Cleaned;

/// Days the housekeeping keeps added ahead of today: a worker stopped for less than a week
/// finds its days there when it starts again.
pub const DAYS_AHEAD: u64 = 7;

/// A day's partition is named after it (migration `attempts_by_day`, `add_attempt_day`).
const DAY_NAME: &str = "delivery_attempts_%Y_%m_%d";

/// What the DEFAULT partition is called.
pub(super) const DEFAULT_PARTITION: &str = "delivery_attempts_default";

/// How long adding or dropping a day waits for its locks before it is left for the next
/// pass. Dropping a partition locks the whole table, and the worker's writes queue behind a
/// lock that waits: so never longer than this.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '500ms'";

/// The first instant of `at`'s UTC day.
pub fn day_start(at: DateTime<Utc>) -> DateTime<Utc> {
    midnight(at.date_naive())
}

/// The first instant of `day`, UTC.
fn midnight(day: NaiveDate) -> DateTime<Utc> {
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
/// each in a transaction of its own. A day that cannot be added (its lock not had in time,
/// or attempts of it already in the DEFAULT partition) is reported and the others are still
/// added; its attempts go to the DEFAULT partition meanwhile.
pub fn add_days(conn: &mut PgConnection, first: NaiveDate, last: NaiveDate) -> QueryResult<Added> {
    let present = days(conn)?;
    let mut done = Added::default();
    for day in first.iter_days().take_while(|day| *day <= last) {
        if present.contains(&day) {
            continue;
        }
        let added = conn.transaction(|conn| {
            diesel::sql_query(LOCK_TIMEOUT).execute(conn)?;
            diesel::sql_query("SELECT add_attempt_day($1) AS added")
                .bind::<Date, _>(day)
                .get_result::<AddedDay>(conn)
        });
        match added {
            Ok(AddedDay { added: true }) => done.added += 1,
            Ok(AddedDay { added: false }) => {}
            Err(err) => done.failed.push((day, err.to_string())),
        }
    }
    Ok(done)
}

/// The days that have a partition, oldest first.
pub fn days(conn: &mut PgConnection) -> QueryResult<Vec<NaiveDate>> {
    let names: Vec<Partition> = diesel::sql_query(
        "SELECT c.relname::text AS name FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = 'delivery_attempts'::regclass",
    )
    .load(conn)?;
    let mut days: Vec<NaiveDate> = names
        .iter()
        .filter_map(|p| NaiveDate::parse_from_str(&p.name, DAY_NAME).ok())
        .collect();
    days.sort_unstable();
    Ok(days)
}

/// Drops the days that end at or before `before`, oldest first, each in a transaction of its
/// own, counting their attempts. A day whose lock is not had in time stays for the next pass
/// (counted in `days_left`).
pub(super) fn drop_days_before(
    conn: &mut PgConnection,
    before: DateTime<Utc>,
    cleaned: &mut Cleaned,
) -> QueryResult<()> {
    for day in days(conn)? {
        let Some(end) = day.succ_opt() else { continue };
        if midnight(end) > before {
            break;
        }
        let name = day.format(DAY_NAME).to_string();
        let dropped = cleaned.batch(conn, |conn| {
            let rows: Rows =
                diesel::sql_query(format!("SELECT count(*) AS rows FROM \"{name}\"")).get_result(conn)?;
            diesel::sql_query(LOCK_TIMEOUT).execute(conn)?;
            diesel::sql_query(format!("DROP TABLE \"{name}\"")).execute(conn)?;
            Ok(rows.rows)
        });
        match dropped {
            Ok(rows) => {
                cleaned.attempts += rows as usize;
                cleaned.days_dropped += 1;
            }
            Err(err) => {
                cleaned.days_left += 1;
                cleaned.last_failure = Some(format!("the attempts of {day} stay for the next pass: {err}"));
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
        let name = day.format(DAY_NAME).to_string();
        assert_eq!(name, "delivery_attempts_2026_03_09");
        assert_eq!(NaiveDate::parse_from_str(&name, DAY_NAME).ok(), Some(day));
        assert!(NaiveDate::parse_from_str(DEFAULT_PARTITION, DAY_NAME).is_err());
    }
}
