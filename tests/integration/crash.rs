//! Crash tests with real processes: `hookboard serve` killed with SIGKILL while events are
//! published, PostgreSQL stopped the way `pg_ctl -m immediate` stops it (SIGQUIT to the
//! postmaster: no checkpoint, crash recovery at the next start), and two processes sharing
//! one database with one of them killed.
//!
//! The promise under test (SPEC section 5): every event the API answered 2xx is delivered
//! at least once; duplicates stay within what was in flight (sent, result not yet
//! committed: at most `HOOKBOARD_WORKER_CONCURRENCY`) when a process died; what a
//! dead process held is taken over once its lease runs out; the dispatcher finds the
//! database again by itself.
//!
//! `make test` runs a short version of each scenario; `make reliability` sets
//! `HOOKBOARD_RELIABILITY=long` for thousands of events and more crashes. Each scenario
//! prints its figures (events, deliveries, duplicates, crashes, recovery, peak memory).

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hookboard::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use hookboard::models::api_key::ApiKey;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::webhook::Webhook;
use hookboard::validation::webhook::Input;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::{Value, json};

use crate::embedded::{alive, postmaster_pid};
use crate::helpers::{TestDatabase, scratch_dir, tokio_block};
use crate::receiver::{Behaviour, Receiver};

/// The delivery timeout the processes run with; their lease is twice this plus 5 s.
const TIMEOUT: Duration = Duration::from_secs(2);
/// `HOOKBOARD_WORKER_CONCURRENCY` of the processes.
const CONCURRENCY: usize = 64;
/// Deliveries sent and not yet written, at most, so what one crash can make go out twice.
const IN_FLIGHT: usize = CONCURRENCY * hookboard::delivery::dispatcher::UNRECORDED_PER_REQUEST;
const LEASE: Duration = Duration::from_secs(2 * 2 + 5);

/// How hard a run pushes: the short version for `make test`, the long one for
/// `make reliability`.
struct Scale {
    events: usize,
    crashes: usize,
}

fn scale() -> Scale {
    if std::env::var("HOOKBOARD_RELIABILITY").as_deref() == Ok("long") {
        Scale {
            events: 6000,
            crashes: 5,
        }
    } else {
        Scale {
            events: 600,
            crashes: 2,
        }
    }
}

/// One running `hookboard serve` with the worker on.
pub(crate) struct Node {
    child: Option<Child>,
    pub(crate) base: String,
    /// What the process logged (warnings and errors), shown when a check on it fails.
    log: std::path::PathBuf,
}

impl Node {
    pub(crate) fn start(database_url: &str, port: u16) -> Node {
        let log = scratch_dir("node").join("serve.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_hookboard"))
            .arg("serve")
            .env("DATABASE_URL", database_url)
            .env("HOOKBOARD_BIND", format!("127.0.0.1:{port}"))
            .env("HOOKBOARD_SECRET_KEY", "42".repeat(32))
            .env("HOOKBOARD_SECURE_COOKIES", "false")
            .env("HOOKBOARD_ALLOW_HTTP_TARGETS", "true")
            .env("HOOKBOARD_ALLOW_PRIVATE_TARGETS", "127.0.0.0/8")
            .env("HOOKBOARD_DELIVERY_TIMEOUT", format!("{}s", TIMEOUT.as_secs()))
            .env("HOOKBOARD_RETRY_SCHEDULE", "1s")
            .env("HOOKBOARD_API_RATE_LIMIT", "0")
            .env("HOOKBOARD_WORKER", "on")
            .env("HOOKBOARD_WORKER_CONCURRENCY", CONCURRENCY.to_string())
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            let Some(Ok(line)) = lines.next() else { break };
            if line.starts_with("Hookboard is running at ") {
                let mut file = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
                std::thread::spawn(move || {
                    use std::io::Write;
                    for line in lines.map_while(Result::ok) {
                        let _ = writeln!(file, "{line}");
                    }
                });
                return Node {
                    child: Some(child),
                    base: format!("http://127.0.0.1:{port}"),
                    log,
                };
            }
        }
        let _ = child.kill();
        panic!(
            "hookboard serve did not start: {:?}\n{}",
            child.wait(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// Highest resident memory of the process so far (VmHWM), in KiB.
    pub(crate) fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Resident memory of the process now (VmRSS), in KiB.
    pub(crate) fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    fn status_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    pub(crate) fn kill_hard(mut self) {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        let _ = child.wait();
    }

    /// SIGTERM, and the process must end on its own, successfully, within the shutdown
    /// timeout.
    pub(crate) fn terminate(mut self) {
        let mut child = self.child.take().expect("running");
        kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success(), "serve ends cleanly on SIGTERM: {status}");
                return;
            }
            if Instant::now() > deadline {
                let threads = threads(child.id());
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "serve did not end within 30 s of SIGTERM; its threads: {threads}\nits log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What [`prepare`] made.
pub(crate) struct Prepared {
    /// A tenant API key.
    pub(crate) key: String,
    pub(crate) tenant_id: i64,
    pub(crate) webhook_ids: Vec<i64>,
}

/// A migrated database with a Scale tenant (tool on), one webhook for booking.created per
/// URL, and an API key.
pub(crate) fn prepare(database_url: &str, urls: &[&str]) -> Prepared {
    let mut conn = PgConnection::establish(database_url).unwrap();
    hookboard::db::run_migrations(&mut conn).unwrap();
    let tenant = Tenant::create(&mut conn, "Crash Test Tours", Plan::Scale).unwrap();
    Tenant::set_webhooks_enabled(&mut conn, tenant.id, true).unwrap();
    let secrets = hookboard::crypto::SecretBox::new(&[0x42; 32]);
    let webhook_ids = urls
        .iter()
        .map(|url| {
            let input = Input {
                url: url.to_string(),
                events: vec!["booking.created".into()],
                ..Input::default()
            };
            Webhook::create(
                &mut conn,
                tenant.id,
                &crate::helpers::valid(input.clone()),
                &secrets,
            )
            .unwrap()
            .0
            .id
        })
        .collect();
    let key = ApiKey::create(&mut conn, tenant.id, "Booking platform", None)
        .unwrap()
        .1;
    Prepared {
        key,
        tenant_id: tenant.id,
        webhook_ids,
    }
}

/// Publishes batches of 20 events round-robin to the given nodes until `target` were
/// accepted or it is stopped; connection errors (a node being killed) are retried with the
/// next batch. Only events whose batch got a 2xx count as accepted.
struct Publisher {
    accepted: Arc<Mutex<Vec<String>>>,
    refused: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    fn start(bases: Vec<String>, key: String, target: usize) -> Publisher {
        let accepted: Arc<Mutex<Vec<String>>> = Arc::default();
        let refused: Arc<AtomicUsize> = Arc::default();
        let stop: Arc<AtomicBool> = Arc::default();
        let (acc, ref_, stop_) = (accepted.clone(), refused.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            hookboard::delivery::http::install_crypto();
            let rt = crate::helpers::current_thread_runtime();
            rt.block_on(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .unwrap();
                let mut round = 0usize;
                while !stop_.load(Ordering::SeqCst) && acc.lock().unwrap().len() < target {
                    let base = &bases[round % bases.len()];
                    let events: Vec<Value> = (0..20)
                        .map(|i| {
                            json!({"type": "booking.created", "data": {"id": format!("bk-{round}-{i}"), "pricing": {"total": 10800}}})
                        })
                        .collect();
                    round += 1;
                    let answer = client
                        .post(format!("{base}/api/v1/events/batch"))
                        .bearer_auth(&key)
                        .json(&json!({ "events": events }))
                        .send()
                        .await;
                    match answer {
                        Ok(response) if response.status().is_success() => {
                            let body: Value = response.json().await.unwrap();
                            let ids = body["events"].as_array().unwrap();
                            let mut acc = acc.lock().unwrap();
                            acc.extend(ids.iter().map(|e| e["id"].as_str().unwrap().to_owned()));
                        }
                        Ok(response) => {
                            // A clear refusal while the database is away (503) is allowed;
                            // anything else is a bug.
                            let status = response.status().as_u16();
                            assert_eq!(status, 503, "{}", response.text().await.unwrap_or_default());
                            ref_.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                        Err(_) => {
                            ref_.fetch_add(1, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    }
                    // A steady stream rather than a flood: crashes land mid-publishing.
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            });
        });
        Publisher {
            accepted,
            refused,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.lock().unwrap().len()
    }

    fn wait_for(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(180);
        while self.accepted() < count {
            assert!(
                Instant::now() < deadline,
                "only {} events accepted",
                self.accepted()
            );
            assert!(
                !self.thread.as_ref().unwrap().is_finished() || self.accepted() >= count,
                "the publisher stopped early"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn finish(mut self) -> (Vec<String>, usize) {
        self.stop.store(true, Ordering::SeqCst);
        self.thread
            .take()
            .unwrap()
            .join()
            .expect("the publisher did not fail");
        let accepted = std::mem::take(&mut *self.accepted.lock().unwrap());
        (accepted, self.refused.load(Ordering::SeqCst))
    }
}

/// How many requests the receiver got, and for how many distinct event ids.
fn arrivals(receiver: &Receiver) -> (usize, HashMap<String, usize>) {
    let mut by_id: HashMap<String, usize> = HashMap::new();
    let requests = receiver.requests();
    for request in &requests {
        *by_id.entry(request.headers["webhook-id"].clone()).or_default() += 1;
    }
    (requests.len(), by_id)
}

/// Waits until every accepted event arrived at least `per_event` times (once per webhook)
/// and returns how long that took.
fn wait_delivered(receiver: &Receiver, accepted: &[String], per_event: usize) -> Duration {
    let started = Instant::now();
    let deadline = started + LEASE * 3 + Duration::from_secs(60);
    loop {
        let (_, by_id) = arrivals(receiver);
        let missing = accepted
            .iter()
            .filter(|id| by_id.get(*id).copied().unwrap_or(0) < per_event)
            .count();
        if missing == 0 {
            return started.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "{missing} of {} accepted events were never delivered",
            accepted.len()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until the database agrees: every delivery succeeded and none is claimed. (A
/// delivery a killed process sent but did not record has arrived, yet stays claimed until
/// its lease runs out and a live process sends it again.)
fn wait_settled(database_url: &str) -> Duration {
    use hookboard::schema::deliveries as d;
    let started = Instant::now();
    let deadline = started + LEASE * 3 + Duration::from_secs(60);
    let mut conn = PgConnection::establish(database_url).unwrap();
    loop {
        let open: i64 = d::table
            .filter(d::status.ne("succeeded").or(d::claimed_by.is_not_null()))
            .count()
            .get_result(&mut conn)
            .unwrap();
        if open == 0 {
            return started.elapsed();
        }
        assert!(Instant::now() < deadline, "{open} deliveries never settled");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits until a request arrives after `since` and returns how long after `since`.
fn first_arrival_after(receiver: &Receiver, since: Instant) -> Duration {
    let deadline = since + Duration::from_secs(60);
    loop {
        if let Some(at) = receiver
            .requests()
            .iter()
            .map(|r| r.at)
            .filter(|at| *at > since)
            .min()
        {
            return at - since;
        }
        assert!(Instant::now() < deadline, "no delivery within 60 s of {since:?}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Watches the deliveries table: the longest any claim was seen past its lease (a claim of
/// a dead process must be taken over once it runs out, within a poll interval or two).
struct LeaseWatch {
    worst: Arc<Mutex<f64>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl LeaseWatch {
    fn start(database_url: &str) -> LeaseWatch {
        let (worst, stop): (Arc<Mutex<f64>>, Arc<AtomicBool>) = Default::default();
        let (w, s, url) = (worst.clone(), stop.clone(), database_url.to_owned());
        let thread = std::thread::spawn(move || {
            #[derive(QueryableByName)]
            struct Overdue {
                #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
                seconds: Option<f64>,
            }
            let mut conn: Option<PgConnection> = None;
            while !s.load(Ordering::SeqCst) {
                if conn.is_none() {
                    conn = PgConnection::establish(&url).ok();
                }
                if let Some(c) = conn.as_mut() {
                    let row: Result<Overdue, _> = diesel::sql_query(
                        "SELECT EXTRACT(EPOCH FROM max(now() - claimed_until))::float8 AS seconds \
                         FROM deliveries WHERE claimed_by IS NOT NULL AND claimed_until < now()",
                    )
                    .get_result(c);
                    match row {
                        Ok(Overdue { seconds: Some(secs) }) => {
                            let mut worst = w.lock().unwrap();
                            *worst = worst.max(secs);
                        }
                        Ok(_) => {}
                        Err(_) => conn = None,
                    }
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        });
        LeaseWatch {
            worst,
            stop,
            thread: Some(thread),
        }
    }

    /// The longest overdue claim seen, in seconds.
    fn finish(mut self) -> f64 {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.thread.take().unwrap().join();
        *self.worst.lock().unwrap()
    }
}

/// Checks what every scenario promises once the nodes are stopped, prints the figures and
/// returns the duplicates.
fn settle(
    name: &str,
    database_url: &str,
    receiver: &Receiver,
    accepted: &[String],
    refused: usize,
    crashes: usize,
    webhooks: usize,
) -> usize {
    let unique: HashSet<&String> = accepted.iter().collect();
    assert_eq!(unique.len(), accepted.len(), "event ids are unique");
    let (requests, by_id) = arrivals(receiver);
    let delivered_once: usize = accepted
        .iter()
        .map(|id| by_id.get(id).copied().unwrap_or(0).min(webhooks))
        .sum();
    assert_eq!(
        delivered_once,
        accepted.len() * webhooks,
        "every accepted event arrived once per webhook"
    );
    let duplicates = requests - by_id.values().map(|n| (*n).min(webhooks)).sum::<usize>();
    let mut conn = PgConnection::establish(database_url).unwrap();
    use hookboard::schema::deliveries as d;
    let claimed: i64 = d::table
        .filter(d::claimed_by.is_not_null())
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(claimed, 0, "nothing stays claimed after a clean stop");
    let unfinished: i64 = d::table
        .filter(d::status.ne("succeeded"))
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert_eq!(unfinished, 0, "every stored delivery succeeded");
    println!(
        "[{name}] accepted {} events ({refused} batches refused or cut off), {requests} requests \
         for {webhooks} webhook(s), {duplicates} duplicates after {crashes} crash(es)",
        accepted.len()
    );
    duplicates
}

/// `hookboard serve` is killed with SIGKILL several times while events are published and
/// started again at once; the restarted process takes over what the dead one held when its
/// lease runs out.
#[actix_web::test]
async fn sigkill_while_publishing_loses_nothing_and_duplicates_stay_within_what_was_in_flight() {
    tokio_block(|| {
        let Scale { events, crashes } = scale();
        let db = TestDatabase::new();
        let receiver = Receiver::start(Behaviour::Answer(204, Vec::new(), Vec::new()));
        let key = prepare(&db.url, &[&receiver.url]).key;
        let port = free_port();
        let watch = LeaseWatch::start(&db.url);
        let mut node = Node::start(&db.url, port);
        let publisher = Publisher::start(vec![node.base.clone()], key, events);
        let (mut recoveries, mut peak) = (Vec::new(), 0u64);
        for crash in 1..=crashes {
            publisher.wait_for(events * crash / (crashes + 1));
            peak = peak.max(node.peak_kib());
            node.kill_hard();
            let restarted = Instant::now();
            node = Node::start(&db.url, port);
            recoveries.push(first_arrival_after(&receiver, restarted));
        }
        publisher.wait_for(events);
        let (accepted, refused) = publisher.finish();
        let drained = wait_delivered(&receiver, &accepted, 1);
        let settled = wait_settled(&db.url);
        peak = peak.max(node.peak_kib());
        node.terminate();
        let overdue = watch.finish();
        let duplicates = settle("sigkill", &db.url, &receiver, &accepted, refused, crashes, 1);
        println!(
            "[sigkill] first delivery after each restart: {recoveries:?}; all delivered {drained:?} \
             after publishing ended, all recorded {settled:?} after that; longest claim past its \
             lease {overdue:.1} s; peak RSS {} MiB",
            peak / 1024
        );
        assert!(
            duplicates <= crashes * IN_FLIGHT,
            "{duplicates} duplicates after {crashes} crashes (at most {IN_FLIGHT} unrecorded each)"
        );
        assert!(overdue < 5.0, "a claim stayed {overdue:.1} s past its lease");
    })
    .await;
}

/// Two processes share one database; one is killed with SIGKILL (and, in the long run,
/// started again, turn about). The survivor takes over what the dead one held.
#[actix_web::test]
async fn two_processes_share_the_work_and_the_survivor_takes_over_from_the_killed_one() {
    tokio_block(|| {
        let Scale { events, crashes } = scale();
        let db = TestDatabase::new();
        let receiver = Receiver::start(Behaviour::Answer(204, Vec::new(), Vec::new()));
        let key = prepare(&db.url, &[&receiver.url, &receiver.url]).key;
        let ports = [free_port(), free_port()];
        let watch = LeaseWatch::start(&db.url);
        let mut nodes = [
            Some(Node::start(&db.url, ports[0])),
            Some(Node::start(&db.url, ports[1])),
        ];
        let bases: Vec<String> = nodes.iter().map(|n| n.as_ref().unwrap().base.clone()).collect();
        let publisher = Publisher::start(bases, key, events);
        let mut takeovers = Vec::new();
        for crash in 1..=crashes {
            publisher.wait_for(events * crash / (crashes + 1));
            let victim = crash % 2;
            nodes[victim].take().unwrap().kill_hard();
            let killed = Instant::now();
            // The survivor alone keeps delivering while the victim is down.
            takeovers.push(first_arrival_after(&receiver, killed));
            std::thread::sleep(Duration::from_millis(500));
            nodes[victim] = Some(Node::start(&db.url, ports[victim]));
        }
        publisher.wait_for(events);
        let (accepted, refused) = publisher.finish();
        let drained = wait_delivered(&receiver, &accepted, 2);
        let settled = wait_settled(&db.url);
        for node in nodes.into_iter().flatten() {
            node.terminate();
        }
        let overdue = watch.finish();
        let duplicates = settle(
            "two processes",
            &db.url,
            &receiver,
            &accepted,
            refused,
            crashes,
            2,
        );
        println!(
            "[two processes] first delivery after each kill: {takeovers:?}; all delivered \
             {drained:?} after publishing ended, all recorded {settled:?} after that; longest \
             claim past its lease {overdue:.1} s"
        );
        assert!(
            duplicates <= crashes * IN_FLIGHT,
            "{duplicates} duplicates after {crashes} kills (at most {IN_FLIGHT} unrecorded each)"
        );
        assert!(overdue < 5.0, "a claim stayed {overdue:.1} s past its lease");
    })
    .await;
}

/// PostgreSQL (a durable cluster of its own) is stopped the way `pg_ctl -m immediate`
/// stops it while events are published, and started again: the dispatcher and the API
/// find it again by themselves and nothing accepted is lost.
#[actix_web::test]
async fn postgres_stopped_immediately_and_restarted_loses_nothing() {
    tokio_block(|| {
        let Scale { events, crashes } = scale();
        let data_dir = scratch_dir("pg-crash");
        let options = EmbeddedOptions {
            data_dir: data_dir.clone(),
            unsafe_fast: false,
            statement_stats: false,
        };
        let mut server = Some(EmbeddedPostgres::start(&options).expect("a cluster of its own starts"));
        let url = server.as_ref().unwrap().url("hookboard");
        let receiver = Receiver::start(Behaviour::Answer(204, Vec::new(), Vec::new()));
        let key = prepare(&url, &[&receiver.url]).key;
        let node = Node::start(&url, free_port());
        let publisher = Publisher::start(vec![node.base.clone()], key, events);
        let mut reconnects = Vec::new();
        for crash in 1..=crashes {
            publisher.wait_for(events * crash / (crashes + 1));
            stop_immediately(&data_dir);
            drop(server.take());
            std::thread::sleep(Duration::from_secs(1));
            server = Some(EmbeddedPostgres::start(&options).expect("the cluster recovers"));
            let back = Instant::now();
            reconnects.push(first_arrival_after(&receiver, back));
        }
        publisher.wait_for(events);
        let (accepted, refused) = publisher.finish();
        let drained = wait_delivered(&receiver, &accepted, 1);
        wait_settled(&url);
        node.terminate();
        let duplicates = settle(
            "postgres immediate stop",
            &url,
            &receiver,
            &accepted,
            refused,
            crashes,
            1,
        );
        println!(
            "[postgres immediate stop] first delivery after each restart of PostgreSQL: \
             {reconnects:?}; all delivered {drained:?} after publishing ended"
        );
        assert!(
            duplicates <= crashes * IN_FLIGHT,
            "{duplicates} duplicates after {crashes} database crashes"
        );
        if let Some(server) = server {
            server.stop();
        }
    })
    .await;
}

/// What `pg_ctl stop -m immediate` does: SIGQUIT to the postmaster, which ends every
/// backend at once without a checkpoint; waits until it is gone.
fn stop_immediately(data_dir: &Path) {
    let pid = postmaster_pid(data_dir).expect("postgres runs");
    kill(Pid::from_raw(pid), Signal::SIGQUIT).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while alive(pid) {
        assert!(Instant::now() < deadline, "postgres did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The threads of a process and what each waits in, for a process that does not end.
fn threads(pid: u32) -> String {
    let mut out = Vec::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .into_iter()
        .flatten()
        .flatten()
    {
        let read = |name: &str| std::fs::read_to_string(task.path().join(name)).unwrap_or_default();
        out.push(format!("{} ({})", read("comm").trim(), read("wchan").trim()));
    }
    out.join(", ")
}

/// A real process delivering to every kind of misbehaving endpoint (and one fast one) for a
/// while: its memory stays flat and the fast webhook keeps receiving every event promptly.
#[actix_web::test]
async fn misbehaving_endpoints_keep_a_real_process_flat_and_the_fast_webhook_on_time() {
    tokio_block(|| {
        let rounds = if std::env::var("HOOKBOARD_RELIABILITY").as_deref() == Ok("long") {
            120
        } else {
            20
        };
        let db = TestDatabase::new();
        let fast = Receiver::start(Behaviour::Answer(204, Vec::new(), Vec::new()));
        let bad = [
            Receiver::start(Behaviour::Hang),
            Receiver::start(Behaviour::Drip),
            Receiver::start(Behaviour::Answer(200, vec![], vec![b'x'; 10 * 1024 * 1024])),
            Receiver::start(Behaviour::Answer(
                200,
                vec![("Content-Encoding".into(), "gzip".into())],
                crate::delivery::gzip_bomb(),
            )),
            Receiver::start(Behaviour::Reset),
            Receiver::answering(500),
            Receiver::start(Behaviour::Answer(
                429,
                vec![("Retry-After".into(), "1".into())],
                vec![],
            )),
        ];
        let tls = crate::receiver::tls_with_self_signed_certificate();
        let urls: Vec<&str> = std::iter::once(fast.url.as_str())
            .chain(bad.iter().map(|r| r.url.as_str()))
            .chain([tls.as_str()])
            .collect();
        let key = prepare(&db.url, &urls).key;
        let node = Node::start(&db.url, free_port());
        hookboard::delivery::http::install_crypto();
        let rt = crate::helpers::current_thread_runtime();
        let client = rt.block_on(async { reqwest::Client::new() });
        let mut rss = Vec::new();
        let mut lags = Vec::new();
        for round in 0..rounds {
            let sent = Instant::now();
            let before = fast.count();
            let status = rt.block_on(async {
                client
                    .post(format!("{}/api/v1/events", node.base))
                    .bearer_auth(&key)
                    .json(&json!({"type": "booking.created", "data": {"id": format!("bad-{round}")}}))
                    .send()
                    .await
                    .unwrap()
                    .status()
            });
            assert_eq!(status, 202);
            while fast.count() == before {
                assert!(
                    sent.elapsed() < Duration::from_secs(10),
                    "the fast webhook waited 10 s"
                );
                std::thread::sleep(Duration::from_millis(2));
            }
            lags.push(sent.elapsed());
            rss.push(node.rss_kib() as f64 / 1024.0);
            std::thread::sleep(Duration::from_millis(500));
        }
        let peak = node.peak_kib() as f64 / 1024.0;
        node.terminate();
        lags.sort();
        let p95 = lags[lags.len() * 95 / 100];
        let third = rss.len() / 3;
        let max_of = |part: &[f64]| part.iter().copied().fold(0.0, f64::max);
        let (middle, last) = (max_of(&rss[third..2 * third]), max_of(&rss[2 * third..]));
        println!(
            "[misbehaving] {rounds} events to 8 bad endpoints and a fast one: fast webhook lag \
             median {:?}, p95 {p95:?}, max {:?}; RSS middle third {middle:.1} MiB, last third \
             {last:.1} MiB, peak {peak:.1} MiB",
            lags[lags.len() / 2],
            lags[lags.len() - 1]
        );
        assert!(
            last <= middle + 16.0,
            "memory keeps growing: {middle:.1} -> {last:.1} MiB"
        );
        assert!(
            p95 < Duration::from_secs(1),
            "the fast webhook was held up by the bad ones: p95 {p95:?}"
        );
    })
    .await;
}

/// SIGTERM in the middle of slow deliveries: the process stops claiming, lets the attempts
/// in flight finish and records them, gives back what it held, and ends within the
/// delivery timeout plus its grace.
#[actix_web::test]
async fn sigterm_finishes_what_is_in_flight_and_gives_back_the_rest() {
    tokio_block(|| {
        let db = TestDatabase::new();
        let slow = Receiver::start(Behaviour::Slow(Duration::from_millis(700)));
        let key = prepare(&db.url, &[&slow.url]).key;
        let node = Node::start(&db.url, free_port());
        let publisher = Publisher::start(vec![node.base.clone()], key, 100);
        publisher.wait_for(100);
        let (accepted, _) = publisher.finish();
        while slow.count() < 8 {
            std::thread::sleep(Duration::from_millis(10));
        }
        let asked = Instant::now();
        node.terminate();
        let took = asked.elapsed();
        let sent = slow.count();
        let mut conn = PgConnection::establish(&db.url).unwrap();
        use hookboard::schema::deliveries as d;
        let by_status: Vec<(String, i64)> = d::table
            .group_by(d::status)
            .select((d::status, diesel::dsl::count_star()))
            .load(&mut conn)
            .unwrap();
        let count =
            |status: &str| by_status.iter().find(|(s, _)| s == status).map_or(0, |(_, n)| *n) as usize;
        let claimed: i64 = d::table
            .filter(d::claimed_by.is_not_null())
            .count()
            .get_result(&mut conn)
            .unwrap();
        println!(
            "[sigterm] ended {took:?} after SIGTERM; {sent} sent and recorded, {} given back",
            count("pending")
        );
        assert_eq!(
            count("succeeded"),
            sent,
            "every request sent is recorded: {by_status:?}"
        );
        assert_eq!(
            count("pending"),
            accepted.len() - sent,
            "the rest waits: {by_status:?}"
        );
        assert_eq!(claimed, 0, "nothing stays claimed after SIGTERM");
        assert!(sent < accepted.len(), "SIGTERM came before the queue ran dry");
        // The delivery timeout (2 s) plus the grace (2 s), with room for a busy machine.
        assert!(took < Duration::from_secs(15), "SIGTERM took {took:?}");
    })
    .await;
}
