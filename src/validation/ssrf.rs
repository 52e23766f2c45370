//! The SSRF guard: which addresses a webhook may never reach. Every address a host resolves
//! to is checked before connecting, and when a webhook is saved. Loopback, private,
//! link-local (cloud metadata at 169.254.169.254 included), CGNAT, multicast, broadcast,
//! documentation, benchmarking, reserved and unspecified ranges are refused, in IPv4, in
//! IPv6, and in the IPv6 forms that embed an IPv4 address (mapped, translated, compatible,
//! NAT64, 6to4), following the IANA special-purpose address registries of both families,
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

impl Cidr {
    const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8) -> Cidr {
        Cidr {
            network: IpAddr::V4(Ipv4Addr::new(a, b, c, d)),
            prefix,
        }
    }

    const fn v6(s: [u16; 8], prefix: u8) -> Cidr {
        Cidr {
            network: IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7])),
            prefix,
        }
    }
}

/// The IANA IPv4 Special-Purpose Address Registry (RFC 6890 and its updates), plus
/// multicast and the limited broadcast address; every entry is refused, including those the
/// registry calls globally reachable (AS112, AMT, the 6to4 relay), since no webhook has a
/// reason to reach them. The first match names the refusal, so narrower ranges come first.
pub const SPECIAL_V4: &[(Cidr, &str)] = &[
    (Cidr::v4(0, 0, 0, 0, 8), "an unspecified address"),
    (Cidr::v4(10, 0, 0, 0, 8), "a private address"),
    (Cidr::v4(100, 64, 0, 0, 10), "a carrier-grade NAT address"),
    (Cidr::v4(127, 0, 0, 0, 8), "a loopback address"),
    (
        Cidr::v4(169, 254, 0, 0, 16),
        "a link-local address (cloud metadata lives here)",
    ),
    (Cidr::v4(172, 16, 0, 0, 12), "a private address"),
    (Cidr::v4(192, 0, 0, 0, 24), "a reserved protocol address"),
    (Cidr::v4(192, 0, 2, 0, 24), "a documentation address"),
    (Cidr::v4(192, 31, 196, 0, 24), "an AS112 DNS address"),
    (Cidr::v4(192, 52, 193, 0, 24), "an AMT relay address"),
    (Cidr::v4(192, 88, 99, 0, 24), "a reserved relay address"),
    (Cidr::v4(192, 168, 0, 0, 16), "a private address"),
    (Cidr::v4(192, 175, 48, 0, 24), "an AS112 DNS address"),
    (Cidr::v4(198, 18, 0, 0, 15), "a benchmarking address"),
    (Cidr::v4(198, 51, 100, 0, 24), "a documentation address"),
    (Cidr::v4(203, 0, 113, 0, 24), "a documentation address"),
    (Cidr::v4(224, 0, 0, 0, 4), "a multicast address"),
    (Cidr::v4(255, 255, 255, 255, 32), "the broadcast address"),
    (Cidr::v4(240, 0, 0, 0, 4), "a reserved address"),
];

/// The IANA IPv6 Special-Purpose Address Registry, plus multicast, site-local and the
/// deprecated IPv4-compatible range. The forms that embed an IPv4 address and may lead to
/// a public one (mapped, translated, NAT64, 6to4) are judged by that address first, in
/// [`embedded_v4`]; everything here is refused outright. Narrower ranges come first.
pub const SPECIAL_V6: &[(Cidr, &str)] = &[
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 128), "an unspecified address"),
    (Cidr::v6([0, 0, 0, 0, 0, 0, 0, 1], 128), "a loopback address"),
    (
        Cidr::v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        "a deprecated IPv4-compatible address",
    ),
    (
        Cidr::v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48),
        "a local-use NAT64 address",
    ),
    (
        Cidr::v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        "a discard-only address",
    ),
    (
        Cidr::v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        "a documentation address",
    ),
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),
        "a Teredo tunnel address",
    ),
    (
        Cidr::v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        "a reserved protocol address",
    ),
    (
        Cidr::v6([0x2620, 0x4f, 0x8000, 0, 0, 0, 0, 0], 48),
        "an AS112 DNS address",
    ),
    (
        Cidr::v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        "a documentation address",
    ),
    (
        Cidr::v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        "a segment-routing address",
    ),
    (
        Cidr::v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        "a private (unique local) address",
    ),
    (
        Cidr::v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        "a link-local address",
    ),
    (
        Cidr::v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        "a site-local address",
    ),
    (Cidr::v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8), "a multicast address"),
];

/// The IPv4 address inside the IPv6 forms that carry one to where the packet ends up:
/// IPv4-mapped (`::ffff:0:0/96`), IPv4-translated (`::ffff:0:0:0/96`, RFC 6052/6145),
/// NAT64 (`64:ff9b::/96`, RFC 6052) and 6to4 (`2002::/16`, RFC 3056). Such an address is
/// as public as the IPv4 address it carries.
pub fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    let v4 = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    match s {
        [0, 0, 0, 0, 0, 0xffff, hi, lo]
        | [0, 0, 0, 0, 0xffff, 0, hi, lo]
        | [0x64, 0xff9b, 0, 0, 0, 0, hi, lo]
        | [0x2002, hi, lo, ..] => Some(v4(hi, lo)),
        _ => None,
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    SPECIAL_V4
        .iter()
        .find(|(range, _)| range.contains(IpAddr::V4(ip)))
        .map(|(_, why)| *why)
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }
    SPECIAL_V6
        .iter()
        .find(|(range, _)| range.contains(IpAddr::V6(ip)))
        .map(|(_, why)| *why)
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

    /// Each range of the IANA IPv4 and IPv6 Special-Purpose Address Registries, and the
    /// other ranges no webhook may reach, by name.
    const REFUSED_RANGES: &[(&str, &str)] = &[
        ("0.0.0.0/8", "this network"),
        ("10.0.0.0/8", "private use"),
        ("100.64.0.0/10", "shared address space (CGNAT)"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link local"),
        ("172.16.0.0/12", "private use"),
        ("192.0.0.0/24", "IETF protocol assignments"),
        ("192.0.2.0/24", "documentation (TEST-NET-1)"),
        ("192.31.196.0/24", "AS112-v4"),
        ("192.52.193.0/24", "AMT"),
        ("192.88.99.0/24", "deprecated 6to4 relay anycast"),
        ("192.168.0.0/16", "private use"),
        ("192.175.48.0/24", "direct delegation AS112 service"),
        ("198.18.0.0/15", "benchmarking"),
        ("198.51.100.0/24", "documentation (TEST-NET-2)"),
        ("203.0.113.0/24", "documentation (TEST-NET-3)"),
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),
        ("255.255.255.255/32", "limited broadcast"),
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("::/96", "IPv4-compatible (deprecated)"),
        ("::ffff:0:0/96", "IPv4-mapped"),
        ("::ffff:0:0:0/96", "IPv4-translated"),
        ("64:ff9b::/96", "IPv4-IPv6 translation (NAT64)"),
        ("64:ff9b:1::/48", "local-use IPv4/IPv6 translation"),
        ("100::/64", "discard-only"),
        ("2001::/23", "IETF protocol assignments"),
        ("2001::/32", "Teredo"),
        ("2001:2::/48", "benchmarking"),
        ("2001:db8::/32", "documentation"),
        ("2002::/16", "6to4"),
        ("2620:4f:8000::/48", "direct delegation AS112 service"),
        ("3fff::/20", "documentation"),
        ("5f00::/16", "segment routing (SRv6) SIDs"),
        ("fc00::/7", "unique local"),
        ("fe80::/10", "link-local unicast"),
        ("fec0::/10", "site-local (deprecated)"),
        ("ff00::/8", "multicast"),
    ];

    /// The first and the last address of a range.
    fn bounds(range: Cidr) -> (IpAddr, IpAddr) {
        match range.network {
            IpAddr::V4(net) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(range.prefix)).unwrap_or(0);
                let first = u32::from(net) & mask;
                (IpAddr::V4(first.into()), IpAddr::V4((first | !mask).into()))
            }
            IpAddr::V6(net) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(range.prefix)).unwrap_or(0);
                let first = u128::from(net) & mask;
                (IpAddr::V6(first.into()), IpAddr::V6((first | !mask).into()))
            }
        }
    }

    #[test]
    fn every_special_purpose_range_is_refused_from_its_first_to_its_last_address() {
        for (text, name) in REFUSED_RANGES {
            let range: Cidr = text.parse().unwrap();
            let (first, last) = bounds(range);
            for ip in [first, last] {
                assert!(classify(ip).is_some(), "{ip} of {name} ({text}) must be refused");
            }
        }
    }

    #[test]
    fn the_reported_ipv4_translated_loopback_is_refused() {
        assert_eq!(
            classify("::ffff:0:7f00:1".parse().unwrap()),
            Some("a loopback address")
        );
    }

    #[test]
    fn ipv6_forms_that_embed_ipv4_are_as_public_as_the_ipv4_address() {
        for form in ["::ffff:{}", "::ffff:0:{}", "64:ff9b::{}"] {
            for private in ["127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.1"] {
                let ip = form.replace("{}", private);
                assert!(refused(&ip), "{ip} must be refused");
            }
            let public = form.replace("{}", "8.8.8.8");
            assert!(!refused(&public), "{public} leads to a public address");
        }
        // 6to4 carries the IPv4 address in its second and third groups.
        assert!(refused("2002:a9fe:a9fe::1"));
        assert!(!refused("2002:808:808::1"));
        // The IPv4-compatible form and Teredo are refused whatever they carry.
        assert!(refused("::8.8.8.8"));
        assert!(refused("2001:0:4136:e378:8000:63bf:f7f7:f7f7"));
    }

    #[test]
    fn addresses_next_to_the_special_ranges_pass() {
        for ip in [
            "192.31.195.255",
            "192.31.197.0",
            "192.52.192.255",
            "192.175.49.0",
            "198.17.255.255",
            "198.20.0.0",
            "223.255.255.255",
            "2001:200::1",
            "2620:4f:8001::1",
            "3fff:1000::1",
            "5f01::1",
            "64:ff9b:2::1",
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
