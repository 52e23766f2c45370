//! The thread that LISTENs for new work: publishing, resending and disabling NOTIFY the
//! channel, and each notification wakes the loop at once instead of at the next poll.
//! A plain thread with a connection of its own, since diesel's notifications are blocking.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use diesel::prelude::*;
use tokio::sync::Notify;

use crate::models::delivery::NOTIFY_CHANNEL;

/// Turns NOTIFYs into wake-ups. Reconnects by itself when PostgreSQL goes away.
pub(super) fn listen(url: &str, stop: &AtomicBool, wake: &Notify) {
    while !stop.load(Ordering::SeqCst) {
        let mut conn = match PgConnection::establish(url) {
            Ok(conn) => conn,
            Err(_) => {
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
        };
        if diesel::sql_query(format!("LISTEN {NOTIFY_CHANNEL}"))
            .execute(&mut conn)
            .is_err()
        {
            continue;
        }
        let mut last_check = std::time::Instant::now();
        while !stop.load(Ordering::SeqCst) {
            let mut woke = false;
            let mut broken = false;
            // On a broken connection the iterator yields errors without end: stop at the first.
            for notification in conn.notifications_iter() {
                match notification {
                    Ok(_) => woke = true,
                    Err(_) => {
                        broken = true;
                        break;
                    }
                }
            }
            if woke {
                wake.notify_one();
            }
            // notifications_iter cannot tell a dead connection from a quiet one: ask now and then.
            if broken
                || (last_check.elapsed() > Duration::from_secs(5)
                    && diesel::sql_query("SELECT 1").execute(&mut conn).is_err())
            {
                break;
            }
            if last_check.elapsed() > Duration::from_secs(5) {
                last_check = std::time::Instant::now();
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}
