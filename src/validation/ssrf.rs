//! The SSRF guard: which addresses a webhook may never reach. Every address a host resolves
//! to is checked before connecting, and when a webhook is saved. Loopback, private,
//! link-local (cloud metadata at 169.254.169.254 included), CGNAT, multicast, broadcast,
//! documentation, benchmarking, reserved and unspecified ranges are refused, in IPv4, in
//! IPv6, and in the IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4),
//! unless an operator lists a range in `HOOKBOARD_ALLOW_PRIVATE_TARGETS`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// An address range like `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            (IpAddr::V6(net), IpAddr::V6(ip)) => prefix_match(&net.octets(), &ip.octets(), self.prefix),
            _ => false,
        }
    }
}

fn prefix_match(a: &[u8], b: &[u8], prefix: u8) -> bool {
    let full = usize::from(prefix / 8);
    let rest = prefix % 8;
    a[..full] == b[..full] && (rest == 0 || (a[full] ^ b[full]) & (0xff << (8 - rest)) == 0)
}

impl FromStr for Cidr {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = text.split_once('/').unwrap_or((text, ""));
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("`{text}` is not an address range like 10.0.0.0/8"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = if prefix.is_empty() {
            max
        } else {
            prefix
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("`{text}` has a bad prefix length"))?
        };
        Ok(Cidr { network, prefix })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Names reserved by RFC 2606 and RFC 6761 that never resolve in public DNS (`.example`,
/// `.invalid`, `.test`): they are answered "no address" without asking a DNS server.
pub fn never_resolves(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    ["example", "invalid", "test"]
        .iter()
        .any(|tld| host == *tld || host.ends_with(&format!(".{tld}")))
}

/// Parses `HOOKBOARD_ALLOW_PRIVATE_TARGETS`.
pub fn parse_allow_list(items: &[String]) -> Result<Vec<Cidr>, String> {
    items.iter().map(|item| item.parse()).collect()
}

/// Why an address is refused, or `None` when a webhook may connect to it.
pub fn refusal(ip: IpAddr, allowed: &[Cidr]) -> Option<&'static str> {
    if allowed.iter().any(|cidr| cidr.contains(ip)) {
        return None;
    }
    classify(ip)
}

/// The class of a non-public address.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    match (a, b, c) {
        (0, _, _) => Some("an unspecified address"),
        (10, _, _) => Some("a private address"),
        (100, 64..=127, _) => Some("a carrier-grade NAT address"),
        (127, _, _) => Some("a loopback address"),
        (169, 254, _) => Some("a link-local address (cloud metadata lives here)"),
        (172, 16..=31, _) => Some("a private address"),
        (192, 0, 0) => Some("a reserved protocol address"),
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => Some("a documentation address"),
        (192, 88, 99) => Some("a reserved relay address"),
        (192, 168, _) => Some("a private address"),
        (198, 18..=19, _) => Some("a benchmarking address"),
        (224..=239, _, _) => Some("a multicast address"),
        (255, 255, 255) if ip == Ipv4Addr::BROADCAST => Some("the broadcast address"),
        (240..=255, _, _) => Some("a reserved address"),
        _ => None,
    }
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    if ip.is_loopback() {
        return Some("a loopback address");
    }
    // Forms that carry an IPv4 address are judged by that address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::new((hi >> 8) as u8, hi as u8, (lo >> 8) as u8, lo as u8);
    if s[0..6] == [0, 0, 0, 0, 0, 0] {
        // IPv4-compatible (deprecated): ::a.b.c.d
        return classify_v4(embedded(s[6], s[7])).or(Some("a deprecated IPv4-compatible address"));
    }
    if s[0..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return classify_v4(embedded(s[1], s[2])).map(|_| "a 6to4 address of a private network");
    }
    match s[0] {
        0x0064 if s[1] == 0xff9b && s[2] == 0x0001 => Some("a local-use NAT64 address"),
        0x0100 if s[1..4] == [0, 0, 0] => Some("a discard-only address"),
        0x2001 if s[1] == 0x0db8 => Some("a documentation address"),
        0x2001 if s[1] < 0x0200 => Some("a reserved protocol address"),
        0x3fff if s[1] < 0x1000 => Some("a documentation address"),
        x if x & 0xfe00 == 0xfc00 => Some("a private (unique local) address"),
        x if x & 0xffc0 == 0xfe80 => Some("a link-local address"),
        x if x & 0xffc0 == 0xfec0 => Some("a site-local address"),
        x if x & 0xff00 == 0xff00 => Some("a multicast address"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> bool {
        classify(text.parse().unwrap()).is_some()
    }

    #[test]
    fn reserved_names_never_resolve_and_others_may() {
        for name in ["crm.example", "EXAMPLE.", "a.b.invalid", "hooks.test"] {
            assert!(never_resolves(name), "{name}");
        }
        for name in ["example.com", "crm.examples", "testing.io", "latest"] {
            assert!(!never_resolves(name), "{name}");
        }
    }

    #[test]
    fn private_and_special_ipv4_ranges_are_refused() {
        for ip in [
            "0.0.0.0",
            "10.1.2.3",
            "100.64.0.1",
            "100.127.255.255",
            "127.0.0.1",
            "127.8.9.10",
            "169.254.169.254",
            "172.16.0.1",
            "172.31.255.255",
            "192.0.0.8",
            "192.0.2.1",
            "192.88.99.1",
            "192.168.1.1",
            "198.18.0.1",
            "198.51.100.7",
            "203.0.113.9",
            "224.0.0.1",
            "239.255.255.250",
            "240.0.0.1",
            "255.255.255.255",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_ipv4_addresses_pass() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "100.63.255.255",
            "100.128.0.1",
            "172.15.0.1",
            "172.32.0.1",
            "93.184.216.34",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn ipv6_and_embedded_ipv4_forms_are_refused() {
        for ip in [
            "::",
            "::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::127.0.0.1",
            "64:ff9b::10.0.0.1",
            "64:ff9b::127.0.0.1",
            "64:ff9b:1::1",
            "2002:7f00:1::",
            "2002:c0a8:0101::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "100::1",
            "2001::1",
        ] {
            assert!(refused(ip), "{ip} must be refused");
        }
    }

    #[test]
    fn public_ipv6_addresses_pass() {
        for ip in [
            "2606:4700:4700::1111",
            "2a00:1450:4001:80b::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(!refused(ip), "{ip} is public");
        }
    }

    #[test]
    fn the_allow_list_opens_listed_ranges_only() {
        let allowed = parse_allow_list(&["127.0.0.0/8".into(), "fd00::/8".into()]).unwrap();
        assert_eq!(refusal("127.0.0.1".parse().unwrap(), &allowed), None);
        assert_eq!(refusal("fd00::5".parse().unwrap(), &allowed), None);
        assert!(refusal("10.0.0.1".parse().unwrap(), &allowed).is_some());
        assert!(parse_allow_list(&["10.0.0.0/33".into()]).is_err());
        assert!(parse_allow_list(&["banana".into()]).is_err());
        assert!(
            "10.0.0.0/8"
                .parse::<Cidr>()
                .unwrap()
                .contains("10.200.3.4".parse().unwrap())
        );
        assert!(
            !"10.0.0.0/8"
                .parse::<Cidr>()
                .unwrap()
                .contains("11.0.0.1".parse().unwrap())
        );
    }
}
