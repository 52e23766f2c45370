//! Failed logins per client address: the per-account throttle stops guessing one
//! account's password, this one stops a single source from walking many accounts. Past
//! `HOOKBOARD_LOGIN_FAILURES_PER_ADDRESS` failures in 15 minutes, every login from that
//! address is refused without a lookup or a hash until the window has passed. The address
//! is the TCP peer (never a forwarded header, which a client writes itself); IPv6 clients
//! are counted per /64, since one host holds a whole /64. Kept in memory, per process.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::throttle::WINDOW;

/// Addresses kept at most; past it, windows that ended are swept first.
const MAX_TRACKED: usize = 100_000;

pub struct AddressThrottle {
    /// Failures allowed per window; 0 turns the throttle off.
    limit: u32,
    /// Per address: failures in the window, and when the window started.
    failures: Mutex<HashMap<IpAddr, (u32, DateTime<Utc>)>>,
}

impl AddressThrottle {
    pub fn new(limit: u32) -> Self {
        AddressThrottle {
            limit,
            failures: Mutex::default(),
        }
    }

    /// Whether logins from `ip` are refused at `now`.
    pub fn is_blocked(&self, ip: IpAddr, now: DateTime<Utc>) -> bool {
        if self.limit == 0 {
            return false;
        }
        let failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        failures
            .get(&key(ip))
            .is_some_and(|(count, since)| *count >= self.limit && now - *since < WINDOW)
    }

    /// One more failed login from `ip` at `now`.
    pub fn record_failure(&self, ip: IpAddr, now: DateTime<Utc>) {
        if self.limit == 0 {
            return;
        }
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        if failures.len() >= MAX_TRACKED {
            failures.retain(|_, (_, since)| now - *since < WINDOW);
            if failures.len() >= MAX_TRACKED {
                // Under a flood from more addresses than this holds, forget the oldest.
                if let Some(oldest) = failures.iter().min_by_key(|(_, (_, s))| *s).map(|(k, _)| *k) {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(key(ip)).or_insert((0, now));
        if now - entry.1 >= WINDOW {
            *entry = (0, now);
        }
        entry.0 += 1;
    }
}

/// IPv4 as it is (also when mapped into IPv6); IPv6 by its /64.
pub(super) fn key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(minutes: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap() + chrono::Duration::minutes(minutes)
    }

    #[test]
    fn an_address_is_refused_past_the_limit_until_the_window_passes() {
        let throttle = AddressThrottle::new(3);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..3 {
            assert!(!throttle.is_blocked(ip, at(0)));
            throttle.record_failure(ip, at(0));
        }
        assert!(throttle.is_blocked(ip, at(0)));
        assert!(!throttle.is_blocked("203.0.113.8".parse().unwrap(), at(0)));
        assert!(throttle.is_blocked(ip, at(14)));
        assert!(!throttle.is_blocked(ip, at(15)));
    }

    #[test]
    fn an_ipv6_host_is_counted_by_its_slash_64_and_zero_turns_it_off() {
        let throttle = AddressThrottle::new(2);
        throttle.record_failure("2001:db8:1:2::1".parse().unwrap(), at(0));
        throttle.record_failure("2001:db8:1:2::ffff".parse().unwrap(), at(0));
        assert!(throttle.is_blocked("2001:db8:1:2:abcd::9".parse().unwrap(), at(0)));
        assert!(!throttle.is_blocked("2001:db8:1:3::1".parse().unwrap(), at(0)));

        let off = AddressThrottle::new(0);
        let ip: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..100 {
            off.record_failure(ip, at(0));
        }
        assert!(!off.is_blocked(ip, at(0)));
    }
}
