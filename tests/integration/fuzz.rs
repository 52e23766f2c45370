//! Hostile input, generated: the SSRF classifier against a reference table written from the
//! IANA special-purpose registries, webhook URLs in every notation an IP address can take,
//! custom headers, event JSON sent to the API, the filter query strings of the pages
//! and the API, and webhook filters (CEL, `fuzz_filters.rs`).
//!
//! cargo-fuzz needs a nightly compiler, which this project does not use; these targets use
//! proptest's generators instead. `make test` runs a fixed-seed sample of each (so a failure
//! comes back on the next run); `make reliability` runs each for `HOOKBOARD_FUZZ_SECONDS`
//! (600 there) with a fresh seed that it prints. `HOOKBOARD_FUZZ_SEED=n` replays a seed.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use hookboard::models::tenant::{Plan, Tenant};
use hookboard::validation::ssrf;
use hookboard::validation::webhook::{self, Context, Input};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
use serde_json::{Value, json};

use crate::helpers::TestApp;
use crate::openapi::any_json;

/// Filters (SPEC 9d): the validator, the API, the form's test and publishing.
#[path = "fuzz_filters.rs"]
mod filters;

/// How long a target runs: a fixed number of cases, or a wall-clock budget.
struct Budget {
    seed: u64,
    cases: Option<u64>,
    until: Option<Instant>,
}

impl Budget {
    fn of(fast_cases: u64) -> Budget {
        let env = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
        match env("HOOKBOARD_FUZZ_SECONDS") {
            Some(seconds) => Budget {
                seed: env("HOOKBOARD_FUZZ_SEED").unwrap_or_else(|| {
                    std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .unwrap()
                        .as_nanos() as u64
                }),
                cases: None,
                until: Some(Instant::now() + Duration::from_secs(seconds)),
            },
            None => Budget {
                seed: env("HOOKBOARD_FUZZ_SEED").unwrap_or(11),
                cases: Some(fast_cases),
                until: None,
            },
        }
    }

    fn runner(&self) -> TestRunner {
        let mut bytes = [0u8; 32];
        bytes[..8].copy_from_slice(&self.seed.to_le_bytes());
        TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &bytes),
        )
    }

    fn more(&self, done: u64) -> bool {
        match (self.cases, self.until) {
            (Some(cases), _) => done < cases,
            (None, Some(until)) => Instant::now() < until,
            (None, None) => false,
        }
    }

    fn report(&self, target: &str, done: u64, started: Instant) {
        println!(
            "[fuzz {target}] seed {}: {done} cases in {:.0?}, no failure",
            self.seed,
            started.elapsed()
        );
    }
}

/// Runs `check` on generated values within the budget; a failure names seed and case.
fn run<S: Strategy>(
    target: &str,
    fast_cases: u64,
    strategy: S,
    mut check: impl FnMut(&S::Value) -> Result<(), String>,
) where
    S::Value: std::fmt::Debug,
{
    let budget = Budget::of(fast_cases);
    let mut runner = budget.runner();
    let started = Instant::now();
    let mut done = 0;
    while budget.more(done) {
        let value = strategy.new_tree(&mut runner).unwrap().current();
        if let Err(why) = check(&value) {
            panic!(
                "[fuzz {target}] seed {} case {done}: {value:?}: {why}",
                budget.seed
            );
        }
        done += 1;
    }
    budget.report(target, done, started);
}

// ---------------------------------------------------------------------------------------
// The reference: IANA's IPv4 and IPv6 special-purpose address registries, as ranges, plus
// the documented rule for forms that embed an IPv4 address. Written apart from the guard
// (integer ranges instead of octet matching) so the two can disagree.

const V4_REFUSED: [(u32, u8); 16] = [
    (0x0000_0000, 8),  // 0.0.0.0/8 "this network"
    (0x0a00_0000, 8),  // 10/8 private
    (0x6440_0000, 10), // 100.64/10 shared (CGNAT)
    (0x7f00_0000, 8),  // 127/8 loopback
    (0xa9fe_0000, 16), // 169.254/16 link-local
    (0xac10_0000, 12), // 172.16/12 private
    (0xc000_0000, 24), // 192.0.0/24 IETF protocol assignments
    (0xc000_0200, 24), // 192.0.2/24 TEST-NET-1
    (0xc058_6300, 24), // 192.88.99/24 6to4 relay anycast (deprecated)
    (0xc0a8_0000, 16), // 192.168/16 private
    (0xc612_0000, 15), // 198.18/15 benchmarking
    (0xc633_6400, 24), // 198.51.100/24 TEST-NET-2
    (0xcb00_7100, 24), // 203.0.113/24 TEST-NET-3
    (0xe000_0000, 4),  // 224/4 multicast
    (0xf000_0000, 4),  // 240/4 reserved
    (0xffff_ffff, 32), // broadcast
];

const V6_REFUSED: [(u128, u8); 12] = [
    (0, 128),                     // unspecified
    (1, 128),                     // loopback
    (0x0064_ff9b_0001 << 80, 48), // local-use NAT64
    (0x0100 << 112, 64),          // discard-only
    (0x2001 << 112, 23),          // IETF protocol assignments
    (0x2001_0db8 << 96, 32),      // documentation
    (0x3fff << 112, 20),          // documentation (2024)
    (0xfc00 << 112, 7),           // unique local
    (0xfe80 << 112, 10),          // link-local
    (0xfec0 << 112, 10),          // site-local (deprecated)
    (0xff00 << 112, 8),           // multicast
    (0, 96),                      // IPv4-compatible (deprecated), all of it
];

fn in_range<T: Copy + Into<u128>>(value: T, network: T, prefix: u8, bits: u8) -> bool {
    let (value, network) = (value.into(), network.into());
    let shift = bits - prefix;
    prefix == 0 || (value >> shift) == (network >> shift)
}

fn reference_v4(ip: Ipv4Addr) -> bool {
    let value = u32::from(ip);
    V4_REFUSED
        .iter()
        .any(|&(network, prefix)| in_range(value, network, prefix, 32))
}

fn reference(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => reference_v4(v4),
        IpAddr::V6(v6) => {
            let value = u128::from(v6);
            let low32 = Ipv4Addr::from(value as u32);
            // ::ffff:0:0/96 (mapped) and 64:ff9b::/96 (NAT64) are judged by the IPv4 inside.
            if in_range(value, 0xffff << 32, 96, 128) || in_range(value, 0x0064_ff9b << 96, 96, 128) {
                return reference_v4(low32);
            }
            // 2002::/16 (6to4) carries the IPv4 address in bits 16..48.
            if in_range(value, 0x2002 << 112, 16, 128) {
                return reference_v4(Ipv4Addr::from((value >> 80) as u32));
            }
            V6_REFUSED
                .iter()
                .any(|&(network, prefix)| in_range(value, network, prefix, 128))
        }
    }
}

/// Addresses spread over the whole space, with extra weight on the edges of every special
/// range and on the IPv6 forms that carry an IPv4 address.
fn any_address() -> impl Strategy<Value = IpAddr> {
    let v4_edges: Vec<u32> = V4_REFUSED
        .iter()
        .flat_map(|&(network, prefix)| {
            let size = if prefix == 0 {
                u32::MAX
            } else {
                (1u64 << (32 - prefix)) as u32
            };
            [
                network,
                network.wrapping_sub(1),
                network.wrapping_add(size.wrapping_sub(1)),
                network.wrapping_add(size),
            ]
        })
        .collect();
    let v6_edges: Vec<u128> = V6_REFUSED
        .iter()
        .flat_map(|&(network, prefix)| {
            let size: u128 = if prefix == 0 {
                u128::MAX
            } else {
                1u128 << (128 - prefix)
            };
            [
                network,
                network.wrapping_sub(1),
                network.wrapping_add(size - 1),
                network.wrapping_add(size),
            ]
        })
        .collect();
    let v4 = prop_oneof![
        any::<u32>(),
        prop::sample::select(v4_edges.clone()),
        (prop::sample::select(v4_edges.clone()), 0u32..256)
            .prop_map(|(edge, delta)| edge.wrapping_add(delta)),
    ];
    prop_oneof![
        v4.clone().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        prop::sample::select(v6_edges).prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        // mapped, compatible, NAT64 and 6to4 forms of interesting IPv4 addresses
        (v4.clone(), 0..4u8).prop_map(|(v, form)| {
            let v = u128::from(v);
            IpAddr::V6(Ipv6Addr::from(match form {
                0 => (0xffff << 32) | v,
                1 => v,
                2 => (0x0064_ff9b << 96) | v,
                _ => (0x2002 << 112) | (v << 80),
            }))
        }),
    ]
}

#[test]
fn the_ssrf_classifier_agrees_with_the_reference_table() {
    run("ssrf-classifier", 20_000, any_address(), |ip| {
        let guard = ssrf::classify(*ip);
        if guard.is_some() != reference(*ip) {
            return Err(format!(
                "guard says {guard:?}, the registries say refused={}",
                reference(*ip)
            ));
        }
        // What the standard library knows for sure must be refused too.
        let std_says = match ip {
            IpAddr::V4(v4) => {
                v4.is_private()
                    || v4.is_loopback()
                    || v4.is_link_local()
                    || v4.is_broadcast()
                    || v4.is_documentation()
                    || v4.is_multicast()
                    || v4.is_unspecified()
            }
            IpAddr::V6(v6) => v6.is_loopback() || v6.is_multicast() || v6.is_unspecified(),
        };
        if std_says && guard.is_none() {
            return Err("the standard library calls it special, the guard lets it through".into());
        }
        // An allow-list entry for exactly this address lets it through; nothing else does.
        let exact: ssrf::Cidr = format!("{ip}/{}", if ip.is_ipv4() { 32 } else { 128 })
            .parse()
            .unwrap();
        if ssrf::refusal(*ip, &[exact]).is_some() {
            return Err("an allow-list entry for the address itself did not allow it".into());
        }
        Ok(())
    });
}

/// The textual forms a URL parser (WHATWG) reads as an IPv4 address: dotted decimal, one
/// 32-bit number, hexadecimal and octal parts, shortened forms, a trailing dot.
fn ipv4_notation(ip: Ipv4Addr, form: u8) -> String {
    let [a, b, c, d] = ip.octets();
    let value = u32::from(ip);
    match form % 8 {
        0 => format!("{a}.{b}.{c}.{d}"),
        1 => format!("{value}"),
        2 => format!("0x{value:x}"),
        3 => format!("0{a:o}.0{b:o}.0{c:o}.0{d:o}"),
        4 => format!("0x{a:X}.{b}.0{c:o}.{d}"),
        5 => format!("{a}.{}", value & 0x00ff_ffff),
        6 => format!("{a}.{b}.{}", value & 0xffff),
        _ => format!("{a}.{b}.{c}.{d}."),
    }
}

fn ipv6_notation(ip: Ipv6Addr, form: u8) -> String {
    let s = ip.segments();
    match form % 4 {
        0 => format!("[{ip}]"),
        1 => format!(
            "[{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{:x}]",
            s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]
        ),
        2 => format!("[{}]", ip.to_string().to_uppercase()),
        // the last 32 bits written as an IPv4 address
        _ => format!(
            "[{:x}:{:x}:{:x}:{:x}:{:x}:{:x}:{}]",
            s[0],
            s[1],
            s[2],
            s[3],
            s[4],
            s[5],
            Ipv4Addr::from(u128::from(ip) as u32)
        ),
    }
}

#[test]
fn webhook_urls_in_any_ip_notation_are_refused_exactly_when_the_address_is_private() {
    let known = vec!["booking.created".to_owned()];
    let strategy = (
        any_address(),
        any::<u8>(),
        prop::option::of(1u16..),
        "[a-z0-9/._~-]{0,30}",
        any::<bool>(),
    );
    run(
        "webhook-url",
        20_000,
        strategy,
        |(ip, form, port, path, upper_scheme)| {
            let host = match ip {
                IpAddr::V4(v4) => ipv4_notation(*v4, *form),
                IpAddr::V6(v6) => ipv6_notation(*v6, *form),
            };
            let scheme = if *upper_scheme { "HTTPS" } else { "https" };
            let port = port.map(|p| format!(":{p}")).unwrap_or_default();
            let url = format!("{scheme}://{host}{port}/{path}");
            let input = Input {
                url: url.clone(),
                events: known.clone(),
                ..Input::default()
            };
            let refused = webhook::validate(input, &offline(&known))
                .err()
                .and_then(|mut e| e.remove("url"));
            match (refused, reference(*ip)) {
                (None, false) | (Some(_), true) => Ok(()),
                (None, true) => Err(format!("{url} was accepted but points at a private address")),
                (Some(why), false) => Err(format!("{url} was refused ({why}) but {ip} is public")),
            }
        },
    );
}

/// What validation knows in these targets: https only, no private ranges allowed, no DNS.
fn offline(known: &[String]) -> Context<'_> {
    Context {
        allow_http: false,
        allowed_private: &[],
        known_events: known,
        examples: &[],
        tenant_connections: &[],
        resolve: false,
    }
}

/// Header names and values from every corner: tokens, separators, spaces, controls,
/// non-ASCII, very long, reserved names in any case.
fn any_header() -> impl Strategy<Value = (String, String)> {
    let name = prop_oneof![
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,40}",
        prop::sample::select(vec![
            "Host",
            "content-LENGTH",
            "Transfer-Encoding",
            "Connection",
            "User-Agent",
            "Content-Type",
            "webhook-signature",
            "Authorization",
        ])
        .prop_map(str::to_owned),
        any::<String>(),
        "[ -~]{0,20}",
        "[a-z]{1,10}[\\x00-\\x1f\\x7f :;,\"()/\\[\\]{}?=@\\\\][a-z]{0,10}",
    ];
    let value = prop_oneof![
        "[ -~]{0,200}",
        any::<String>(),
        "[a-z]{0,10}[\\x00-\\x1f\\x7f][a-z]{0,10}",
        (4090usize..4200).prop_map(|n| "v".repeat(n)),
        "[ \\t]{0,3}[a-z]{1,10}[ \\t]{0,3}",
    ];
    (name, value)
}

#[test]
fn custom_headers_that_pass_validation_can_always_be_sent() {
    let known = vec!["booking.created".to_owned()];
    run(
        "custom-headers",
        3_000,
        prop::collection::vec(any_header(), 0..24),
        |headers| {
            let input = Input {
                url: "https://crm.example.com/hooks".into(),
                events: known.clone(),
                headers: headers.clone(),
                ..Input::default()
            };
            match webhook::validate(input, &offline(&known)) {
                Ok(clean) => {
                    if clean.headers.len() > 20 {
                        return Err(format!("{} headers accepted", clean.headers.len()));
                    }
                    for (name, value) in &clean.headers {
                        if webhook::RESERVED_HEADERS.contains(&name.to_ascii_lowercase().as_str()) {
                            return Err(format!("reserved header {name} accepted"));
                        }
                        if name.len() + value.len() > 4096 {
                            return Err(format!("{name} is over 4 KiB"));
                        }
                        http::HeaderName::from_bytes(name.as_bytes())
                            .map_err(|e| format!("accepted name {name:?} cannot be sent: {e}"))?;
                        http::HeaderValue::from_str(value)
                            .map_err(|e| format!("accepted value {value:?} cannot be sent: {e}"))?;
                    }
                    Ok(())
                }
                Err(errors) => match errors.get("headers") {
                    Some(message) if !message.is_empty() => Ok(()),
                    _ => Err(format!("refused without a header message: {errors:?}")),
                },
            }
        },
    );
}

/// Event bodies: mostly well-formed envelopes with hostile fields, some anything at all.
fn any_event() -> impl Strategy<Value = Value> {
    let codes = vec![
        "booking.created",
        "payment.refunded",
        "product.updated",
        "no.such",
        "",
    ];
    prop_oneof![
        any_json(),
        (
            prop::sample::select(codes),
            any_json(),
            prop::option::of(prop_oneof![
                Just(Value::from("2026-11-22T10:00:00Z")),
                any_json(),
                "[0-9TZ:+.-]{0,30}".prop_map(Value::from)
            ]),
            prop::option::of(any_json()),
            prop::option::of(any_json()),
            prop::option::of(prop_oneof![
                "[a-zA-Z0-9-]{0,300}".prop_map(Value::from),
                any_json()
            ]),
        )
            .prop_map(|(kind, data, occurred, connection, language, key)| {
                let mut event = json!({"type": kind, "data": data});
                for (field, value) in [
                    ("occurred_at", occurred),
                    ("connection", connection),
                    ("language", language),
                    ("idempotency_key", key),
                ] {
                    if let Some(value) = value {
                        event[field] = value;
                    }
                }
                event
            }),
    ]
}

#[actix_web::test]
async fn event_json_sent_to_the_api_is_stored_exactly_or_refused_clearly() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_API_RATE_LIMIT", "0")]).await;
    let tenant = app.create_tenant("Fuzz Tours", Plan::Scale).await;
    let id = tenant.id;
    app.with_conn(move |conn| Tenant::set_webhooks_enabled(conn, id, true).unwrap())
        .await;
    let key = app
        .with_conn(move |conn| {
            hookboard::models::api_key::ApiKey::create(conn, id, "fuzz", None)
                .unwrap()
                .1
        })
        .await;
    let base = app.address.clone();
    crate::helpers::tokio_block(move || {
        let rt = crate::helpers::current_thread_runtime();
        let _context = rt.enter();
        let client = reqwest::Client::new();
        let mut statuses = std::collections::BTreeMap::<u16, u64>::new();
        run("event-ingest", 300, any_event(), |event| {
            rt.block_on(async {
                let response = client
                    .post(format!("{base}/api/v1/events"))
                    .bearer_auth(&key)
                    .json(event)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = response.status().as_u16();
                let body: Value = response
                    .json()
                    .await
                    .map_err(|e| format!("{status} not JSON: {e}"))?;
                *statuses.entry(status).or_default() += 1;
                match status {
                    202 => {
                        let id = body["id"].as_str().ok_or("no id")?;
                        let stored: Value = client
                            .get(format!("{base}/api/v1/events/{id}"))
                            .bearer_auth(&key)
                            .send()
                            .await
                            .map_err(|e| e.to_string())?
                            .json()
                            .await
                            .map_err(|e| e.to_string())?;
                        // A repeated idempotency_key answers with the first event instead.
                        let replayable = event.get("idempotency_key").is_some_and(|k| !k.is_null());
                        if !replayable
                            && (!same(&stored["payload"]["data"], &event["data"])
                                || stored["type"] != event["type"])
                        {
                            return Err(format!("stored differently: {stored}"));
                        }
                        Ok(())
                    }
                    400 | 409 | 422 => match body["error"]["message"].as_str() {
                        Some(m) if !m.is_empty() => Ok(()),
                        _ => Err(format!("{status} without a message: {body}")),
                    },
                    other => Err(format!("answered {other}: {body}")),
                }
            })
        });
        assert!(
            statuses.contains_key(&202) && statuses.contains_key(&422),
            "{statuses:?}"
        );
    })
    .await;
}

/// JSON equality with numbers compared as numbers (PostgreSQL's jsonb writes `-0.0` as
/// `-0` and `1e300` in full, which read back as the same value).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// Query strings of any shape: known parameters with odd values, repeated, unknown, badly
/// percent-encoded.
fn any_query() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        prop::sample::select(vec![
            "url",
            "event",
            "status",
            "connection",
            "sort",
            "dir",
            "page",
            "before",
            "outcome",
            "type",
            "q",
        ])
        .prop_map(str::to_owned),
        "[a-z%_\\[\\]]{1,10}",
    ];
    let value = prop_oneof![
        "[a-z0-9._-]{0,20}",
        "-?[0-9]{1,25}",
        "%[0-9A-Fa-f]{0,2}[a-z]{0,3}",
        any::<String>().prop_map(|s| s
            .chars()
            .filter(|c| !matches!(c, '&' | '#' | '\0'))
            .collect::<String>()),
        prop::sample::select(vec![
            "active",
            "inactive",
            "auto_disabled",
            "failed",
            "succeeded",
            "booking.created",
            "asc",
            "desc",
            "%00",
            "%ff",
            "+",
            ""
        ])
        .prop_map(str::to_owned),
    ];
    prop::collection::vec((name, value), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(n, v)| {
                let v: String = v
                    .chars()
                    .map(|c| match c {
                        ' ' => "+".to_owned(),
                        c if c.is_ascii_graphic() => c.to_string(),
                        c => c.to_string().bytes().map(|b| format!("%{b:02X}")).collect(),
                    })
                    .collect();
                format!("{n}={v}")
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

#[actix_web::test]
async fn filter_query_strings_never_break_a_page_or_the_api() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_API_RATE_LIMIT", "0")]).await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Query Tours", "owner@query.test")
        .await;
    let id = tenant.id;
    let (key, webhook_id) = app
        .with_conn(move |conn| {
            let input = Input {
                url: "https://crm.example.com/hooks".into(),
                events: vec!["booking.created".into()],
                ..Input::default()
            };
            let secrets = hookboard::crypto::SecretBox::new(&[0x42; 32]);
            let webhook = hookboard::models::webhook::Webhook::create(
                conn,
                id,
                &crate::helpers::valid(input.clone()),
                &secrets,
            )
            .unwrap()
            .0;
            let key = hookboard::models::api_key::ApiKey::create(conn, id, "fuzz", None)
                .unwrap()
                .1;
            (key, webhook.id)
        })
        .await;
    let base = app.address.clone();
    let cookie = owner.cookie_header();
    crate::helpers::tokio_block(move || {
        let rt = crate::helpers::current_thread_runtime();
        let _context = rt.enter();
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        let pages: Vec<(String, bool)> = vec![
            ("/webhooks".into(), true),
            (format!("/webhooks/{webhook_id}"), true),
            ("/webhooks/export.xlsx".into(), true),
            ("/api/v1/webhooks".into(), false),
            (format!("/api/v1/webhooks/{webhook_id}/deliveries"), false),
            ("/api/v1/events".into(), false),
        ];
        run(
            "filter-queries",
            400,
            (prop::sample::select(pages), any_query()),
            |((path, page), query)| {
                rt.block_on(async {
                    let url = format!("{base}{path}?{query}");
                    let mut request = client.get(&url);
                    request = if *page {
                        request.header("Cookie", &cookie)
                    } else {
                        request.bearer_auth(&key)
                    };
                    let response = request.send().await.map_err(|e| e.to_string())?;
                    let status = response.status().as_u16();
                    let text = response.text().await.unwrap_or_default();
                    match status {
                        200 | 400 | 404 | 422 => Ok(()),
                        other => Err(format!(
                            "{url} answered {other}: {}",
                            text.chars().take(300).collect::<String>()
                        )),
                    }
                })
            },
        );
    })
    .await;
}
