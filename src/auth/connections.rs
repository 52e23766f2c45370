//! Open connections per client address: past `HOOKBOARD_CONNECTIONS_PER_ADDRESS`, a
//! connection's requests are answered 429 and the connection is closed, so one source
//! cannot hold every slot of the server with slow or idle connections. actix-web accepts a
//! connection before anything sees its peer, so the cap applies at its first request: the
//! extra connection costs a moment, never a worker's attention for long. The address is the
//! TCP peer (IPv6 by /64, as for failed logins). Kept in memory, per process.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::address_throttle::key;

/// The connections open per address.
pub struct ConnectionCounts {
    /// Connections allowed per address at once; 0 turns the cap off.
    limit: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One open connection's place in the count, given back when the connection closes (the
/// server drops it with the connection).
pub struct Slot {
    counts: Arc<ConnectionCounts>,
    address: IpAddr,
    /// Whether this connection is over its address's cap.
    pub over: bool,
}

impl ConnectionCounts {
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(ConnectionCounts {
            limit,
            open: Mutex::default(),
        })
    }

    /// Counts a new connection from `ip`.
    pub fn open(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.limit == 0 {
            return None;
        }
        let address = key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_default();
        *count += 1;
        Some(Slot {
            counts: self.clone(),
            address,
            over: *count > self.limit,
        })
    }

    /// Connections open from `ip` now.
    pub fn open_from(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        open.get(&key(ip)).copied().unwrap_or(0)
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.counts.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.address);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_past_the_cap_are_over_and_closing_one_frees_its_place() {
        let counts = ConnectionCounts::new(2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = counts.open(ip).unwrap();
        let second = counts.open(ip).unwrap();
        let third = counts.open(ip).unwrap();
        assert!(!first.over && !second.over && third.over);
        let other = counts.open("192.0.2.8".parse().unwrap()).unwrap();
        assert!(!other.over, "another address has its own count");
        drop(third);
        drop(first);
        assert_eq!(counts.open_from(ip), 1);
        assert!(!counts.open(ip).unwrap().over);
        drop(second);
        assert!(ConnectionCounts::new(0).open(ip).is_none(), "0 turns the cap off");
    }
}
