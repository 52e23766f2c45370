//! Misbehaving endpoints: hanging, dripping, huge or compressed answers, resets, bad TLS,
//! rate limits. `make reliability` runs these by `delivery::misbehaving`.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hookboard::clock::Clock;

use super::{Fixture, booking};
use crate::receiver::{Behaviour, Receiver};

/// Every kind of misbehaving endpoint at once: each attempt ends within the timeout plus
/// one second, is classified so staff can read why, retries when it should (honouring
/// `Retry-After`), and the fast webhook on the same event type is not held up.
#[actix_web::test]
async fn misbehaving_endpoints_are_cut_off_classified_and_do_not_delay_another_webhook() {
    let fx = Fixture::new().await;
    let hanging = Receiver::start(Behaviour::Hang);
    let dripping = Receiver::start(Behaviour::Drip);
    let huge = Receiver::start(Behaviour::Answer(200, vec![], vec![b'x'; 10 * 1024 * 1024]));
    let bomb = Receiver::start(Behaviour::Answer(
        200,
        vec![("Content-Encoding".into(), "gzip".into())],
        gzip_bomb(),
    ));
    let reset = Receiver::start(Behaviour::Reset);
    let failing = Receiver::answering(500);
    let limited = Receiver::start(Behaviour::Answer(
        429,
        vec![("Retry-After".into(), "15".into())],
        b"slow down".to_vec(),
    ));
    let tls = crate::receiver::tls_with_self_signed_certificate();
    let fast = Receiver::answering(204);
    let mut hooks = HashMap::new();
    for (name, url) in [
        ("hang", &hanging.url),
        ("drip", &dripping.url),
        ("huge", &huge.url),
        ("bomb", &bomb.url),
        ("reset", &reset.url),
        ("500", &failing.url),
        ("429", &limited.url),
        ("tls", &tls),
        ("fast", &fast.url),
    ] {
        let hook = fx.webhook(url).await;
        hooks.insert(hook.id, name);
    }
    fx.publish(&booking("b")).await;
    let started = Instant::now();
    let now = fx.app.clock.now();
    let summary = fx.engine_with(true, "2s").run_due_once(now).await.unwrap();
    let took = started.elapsed();
    assert_eq!(summary.attempted, 9);
    assert!(
        took < Duration::from_secs(3) + Duration::from_secs(2),
        "bounded by the timeout: {took:?}"
    );
    let fast_arrival = fast.requests()[0].at.duration_since(started);
    assert!(
        fast_arrival < Duration::from_secs(1),
        "the fast webhook was not held up: {fast_arrival:?}"
    );
    type Row = (
        i64,
        i32,
        Option<i32>,
        Option<String>,
        Option<String>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = fx
        .app
        .with_conn(|conn| {
            use hookboard::schema::delivery_attempts as a;
            a::table
                .select((
                    a::webhook_id,
                    a::duration_ms,
                    a::status_code,
                    a::error_class,
                    a::error_message,
                    a::response_body,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    let by_name: HashMap<&str, &Row> = rows.iter().map(|row| (hooks[&row.0], row)).collect();
    assert!(
        rows.iter().all(|row| row.1 <= 3000),
        "every attempt ends within the timeout plus one second: {:?}",
        rows.iter().map(|r| (hooks[&r.0], r.1)).collect::<Vec<_>>()
    );
    assert!(
        rows.iter()
            .all(|row| row.5.as_ref().map_or(0, Vec::len) <= 64 * 1024),
        "at most 64 KiB of any answer kept"
    );
    let class = |name: &str| by_name[name].3.as_deref();
    assert_eq!(class("hang"), Some("timeout"));
    assert_eq!(
        class("drip"),
        None,
        "a 2xx answer counts even when its body drips"
    );
    assert!(
        by_name["drip"]
            .4
            .as_deref()
            .is_some_and(|m| m.contains("reading the answer failed")),
        "{:?}",
        by_name["drip"].4
    );
    assert_eq!(class("reset"), Some("reset"), "{:?}", by_name["reset"].4);
    assert_eq!(class("tls"), Some("tls"), "{:?}", by_name["tls"].4);
    assert_eq!(by_name["500"].2, Some(500));
    assert_eq!(by_name["429"].2, Some(429));
    assert_eq!(class("fast"), None);
    let bomb_body = by_name["bomb"].5.as_ref().expect("the bomb's answer is kept");
    assert!(
        bomb_body.starts_with(&[0x1f, 0x8b]) && bomb_body.len() <= 64 * 1024,
        "the gzip body is kept compressed, never inflated"
    );

    // The failures retry: 500 on the schedule (10 s ± 20%), 429 when it asked (15 s, within
    // [10 s, 20 s]); the 2xx answers are done.
    let next: HashMap<i64, (String, chrono::DateTime<chrono::Utc>)> = fx
        .app
        .with_conn(|conn| {
            use hookboard::schema::deliveries as d;
            d::table
                .select((d::webhook_id, (d::status, d::next_attempt_at)))
                .load(conn)
                .unwrap()
                .into_iter()
                .collect()
        })
        .await;
    let wait = |name: &str| {
        let (id, _) = hooks.iter().find(|(_, n)| **n == name).unwrap();
        let (status, at) = &next[id];
        (status.clone(), (*at - now).num_milliseconds())
    };
    assert_eq!(wait("fast").0, "succeeded");
    assert_eq!(
        wait("huge").0,
        "succeeded",
        "a 10 MB answer is a success, read only in part"
    );
    let (status, after) = wait("500");
    assert!(
        status == "pending" && (7_000..=13_000).contains(&after),
        "{status} {after}"
    );
    let (status, after) = wait("429");
    assert!(
        status == "pending" && (14_000..=16_500).contains(&after),
        "{status} {after}"
    );
    assert_eq!(wait("drip").0, "succeeded");
    for name in ["hang", "reset", "tls"] {
        assert_eq!(wait(name).0, "pending", "{name} retries");
    }
}

/// 1 GiB of zeros as gzip: one compressed MiB repeated as 1,024 gzip members (about 1 MiB).
pub(crate) fn gzip_bomb() -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 1024 * 1024]).unwrap();
    encoder.finish().unwrap().repeat(1024)
}
