//! The soak run: a real `hookboard serve` under a steady stream of events (100 a second to
//! two webhooks) and page views (a logged-in owner opening the webhook list and a webhook
//! page about 20 times a second), sampled every few seconds for resident memory, database
//! connections and the depth of the delivery queue.
//!
//! `make test` runs it for 20 seconds; `make reliability` for 15 minutes
//! (`HOOKBOARD_SOAK_SECONDS=900`). It prints the samples; it fails when memory keeps
//! growing, connections exceed the pool, the queue does not drain or anything is lost.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hookboard::auth::password;
use hookboard::models::user::{NewUser, Role, User};
use serde_json::{Value, json};

use crate::crash::{Node, Prepared, free_port, prepare};
use crate::helpers::{PASSWORD, TestDatabase, meta_csrf, tokio_block};
use crate::receiver::{Behaviour, Receiver};

/// One look at the running process.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_mib: f64,
    pending: i64,
    connections: i64,
    delivered: usize,
    views: usize,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

fn count(conn: &mut PgConnection, sql: &str) -> i64 {
    diesel::sql_query(sql)
        .get_result::<Count>(conn)
        .map(|c| c.n)
        .unwrap_or(-1)
}

#[actix_web::test]
async fn a_steady_load_keeps_memory_connections_and_the_queue_flat() {
    tokio_block(|| {
        let seconds: u64 = std::env::var("HOOKBOARD_SOAK_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(20);
        let every = Duration::from_secs(if seconds >= 300 { 15 } else { 2 });
        let db = TestDatabase::new();
        let receiver = Receiver::start(Behaviour::Answer(204, Vec::new(), Vec::new()));
        let Prepared {
            key,
            tenant_id,
            webhook_ids,
        } = prepare(&db.url, &[&receiver.url, &receiver.url]);
        let mut conn = PgConnection::establish(&db.url).unwrap();
        let hash = password::hash(PASSWORD).unwrap();
        User::create(
            &mut conn,
            NewUser {
                tenant_id: Some(tenant_id),
                email: "owner@soak.test",
                role: Role::Owner,
                password_hash: &hash,
                connection_id: None,
            },
        )
        .unwrap();
        let webhook_id = webhook_ids[0];
        let node = Node::start(&db.url, free_port());
        let stop = Arc::new(AtomicBool::new(false));
        let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
        let views = Arc::new(AtomicUsize::new(0));

        let publisher = {
            let (base, stop, accepted) = (node.base.clone(), stop.clone(), accepted.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let client = reqwest::Client::new();
                    let mut tick = tokio::time::interval(Duration::from_millis(100));
                    let mut round = 0u64;
                    while !stop.load(Ordering::SeqCst) {
                        tick.tick().await;
                        round += 1;
                        let events: Vec<Value> = (0..10)
                            .map(|i| json!({"type": "booking.created", "data": {"id": format!("soak-{round}-{i}")}}))
                            .collect();
                        let response = client
                            .post(format!("{base}/api/v1/events/batch"))
                            .bearer_auth(&key)
                            .json(&json!({ "events": events }))
                            .send()
                            .await
                            .unwrap();
                        assert_eq!(response.status(), 202, "a steady publisher is never refused");
                        let body: Value = response.json().await.unwrap();
                        let mut accepted = accepted.lock().unwrap();
                        for event in body["events"].as_array().unwrap() {
                            accepted.push(event["id"].as_str().unwrap().to_owned());
                        }
                    }
                });
            })
        };
        let viewer = {
            let (base, stop, views) = (node.base.clone(), stop.clone(), views.clone());
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
                rt.block_on(async move {
                    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
                    let login = client.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
                    let token = meta_csrf(&login);
                    let home = client
                        .post(format!("{base}/login"))
                        .form(&[("email", "owner@soak.test"), ("password", PASSWORD), ("csrf_token", &token)])
                        .send()
                        .await
                        .unwrap();
                    assert!(home.status().is_success(), "the owner logs in");
                    let pages = [format!("{base}/webhooks"), format!("{base}/webhooks/{webhook_id}")];
                    let mut tick = tokio::time::interval(Duration::from_millis(50));
                    while !stop.load(Ordering::SeqCst) {
                        tick.tick().await;
                        let page = &pages[views.load(Ordering::SeqCst) % 2];
                        let response = client.get(page).send().await.unwrap();
                        assert_eq!(response.status(), 200, "{page}");
                        let html = response.text().await.unwrap();
                        assert!(html.contains("Webhook"), "{page} shows its content");
                        views.fetch_add(1, Ordering::SeqCst);
                    }
                });
            })
        };

        let started = Instant::now();
        let mut samples = Vec::new();
        while started.elapsed() < Duration::from_secs(seconds) {
            std::thread::sleep(every);
            samples.push(Sample {
                at: started.elapsed(),
                rss_mib: node.rss_kib() as f64 / 1024.0,
                pending: count(&mut conn, "SELECT count(*) AS n FROM deliveries WHERE status = 'pending'"),
                connections: count(
                    &mut conn,
                    "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() \
                     AND pid <> pg_backend_pid()",
                ),
                delivered: receiver.count(),
                views: views.load(Ordering::SeqCst),
            });
        }
        stop.store(true, Ordering::SeqCst);
        publisher.join().expect("the publisher was never refused");
        viewer.join().expect("every page view answered 200");
        let accepted = std::mem::take(&mut *accepted.lock().unwrap());
        let deadline = Instant::now() + Duration::from_secs(60);
        while receiver.count() < accepted.len() * 2 {
            assert!(Instant::now() < deadline, "the queue did not drain after the load stopped");
            std::thread::sleep(Duration::from_millis(100));
        }
        let peak_mib = node.peak_kib() as f64 / 1024.0;
        node.terminate();

        println!("[soak] {seconds} s: t, RSS MiB, pending deliveries, database connections, delivered, page views");
        for s in &samples {
            println!(
                "[soak] {:>5.0?} {:>6.1} {:>6} {:>3} {:>8} {:>6}",
                s.at, s.rss_mib, s.pending, s.connections, s.delivered, s.views
            );
        }
        println!(
            "[soak] {} events accepted, {} deliveries, {} page views, peak RSS {peak_mib:.1} MiB",
            accepted.len(),
            receiver.count(),
            views.load(Ordering::SeqCst)
        );

        // Flat: the last third of the run grows no more than 16 MiB over the middle third
        // (the first third is warm-up: caches, pools, the allocator's arenas).
        let third = samples.len() / 3;
        assert!(third >= 1, "too few samples");
        let max_of = |part: &[Sample]| part.iter().map(|s| s.rss_mib).fold(0.0, f64::max);
        let (middle, last) = (max_of(&samples[third..2 * third]), max_of(&samples[2 * third..]));
        assert!(last <= middle + 16.0, "memory keeps growing: {middle:.1} -> {last:.1} MiB");
        let most_connections = samples.iter().map(|s| s.connections).max().unwrap();
        assert!(
            most_connections <= 16 + 2,
            "{most_connections} connections for a pool of 16 plus the listener"
        );
        let deepest = samples[third..].iter().map(|s| s.pending).max().unwrap();
        assert!(deepest <= 1000, "the queue kept growing: {deepest} pending");
        let unique: std::collections::HashSet<String> = receiver
            .requests()
            .iter()
            .map(|r| r.headers["webhook-id"].clone())
            .collect();
        assert_eq!(unique.len(), accepted.len(), "every accepted event arrived");
    })
    .await;
}
