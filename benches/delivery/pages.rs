//! The pages beside the machine's floors (issue #17): a burst of 40 logins next to the
//! argon2 ceiling measured alone, with the latency of other pages meanwhile; the list page
//! saturated next to a static file, one after the other and at once, with where its slow
//! requests fall; and 16 users with think time on the list page, the webhook page and
//! `/healthz`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use hookboard::db::DbPool;
use hookboard::models::tenant::Tenant;
use hookboard::models::user::{NewUser, Role, User};
use serde_json::json;

use super::{PAGE_CLIENTS, csrf_of, logged_in, percentile};

/// The account of every page client; the login clients have one account each.
pub const READER: &str = "reader@bench.example";
pub const PASSWORD: &str = "bench password 1234";
/// Concurrent login clients of the burst, each logging in again as soon as it is in.
const LOGIN_CLIENTS: usize = 40;
/// Clients of each page while the logins run.
const READERS: usize = 2;
const THINK: Duration = Duration::from_millis(20);
const PERIOD: Duration = Duration::from_secs(5);
/// The static file of the saturated pair: what every page links.
const STATIC_FILE: &str = "/static/css/hookboard.css";
/// Requests slower than this are listed with when they started.
const SLOW: Duration = Duration::from_millis(100);

/// One request: when it started (since the page clients' session began) and how long it
/// took, in µs.
#[derive(Clone, Copy)]
struct Sample {
    at_us: u64,
    took_us: u64,
}

/// Latency of one path under one load.
pub struct Latency {
    path: String,
    pub per_s: f64,
    pub p50: f64,
    pub p99: f64,
    /// Requests slower than [`SLOW`], by start time.
    slow: Vec<Sample>,
}

impl Latency {
    fn of(path: &str, mut samples: Vec<Sample>, period: Duration) -> Latency {
        let mut took: Vec<u64> = samples.iter().map(|s| s.took_us).collect();
        took.sort_unstable();
        samples.retain(|s| s.took_us >= SLOW.as_micros() as u64);
        samples.sort_unstable_by_key(|s| s.at_us);
        Latency {
            path: path.to_owned(),
            per_s: took.len() as f64 / period.as_secs_f64(),
            p50: percentile(&took, 0.50),
            p99: percentile(&took, 0.99),
            slow: samples,
        }
    }

    fn figure(&self) -> String {
        format!(
            "{:.0}/s, p50 / p99 {:.1} / {:.1} ms",
            self.per_s, self.p50, self.p99
        )
    }

    /// The slow requests as `start s: ms`, so clusters show, and whether they line up with
    /// the session's last-seen time, written again once a minute.
    fn slow_requests(&self) -> String {
        let listed: Vec<String> = self
            .slow
            .iter()
            .take(40)
            .map(|s| format!("{:.2}s: {:.0}", s.at_us as f64 / 1e6, s.took_us as f64 / 1e3))
            .collect();
        format!(
            "{} over {} ms [s after sign-in: ms, {}]",
            self.slow.len(),
            SLOW.as_millis(),
            listed.join(", ")
        )
    }

    fn json(&self) -> serde_json::Value {
        json!({ "per_s": self.per_s, "p50_ms": self.p50, "p99_ms": self.p99, "slow": self.slow.len() })
    }
}

/// The figures of this section.
pub struct Figures {
    /// Hashes per second with one thread per core, nothing else running.
    argon2_per_s: f64,
    logins_per_s: f64,
    failed_logins: usize,
    during_logins: Vec<Latency>,
    static_saturated: Latency,
    list_saturated: Latency,
    /// The same pair at once: the reading, where the static file's tail is the
    /// machine's and the list page's excess over it is the page's own.
    together: [Latency; 2],
    /// What PostgreSQL's checkpointer did during the saturated pair.
    checkpointer: Checkpointer,
    with_think_time: Vec<Latency>,
}

/// Creates the page and login accounts of `tenant`, then measures; the server at `base`
/// is `hookboard serve` over the bench's database, `webhook` one of its webhooks.
pub async fn run(pool: &DbPool, tenant: &Tenant, base: &str, webhook: i64) -> anyhow::Result<Figures> {
    let (setup, tenant_id) = (pool.clone(), tenant.id);
    actix_web::rt::task::spawn_blocking(move || -> anyhow::Result<()> {
        let hash = hookboard::auth::password::hash(PASSWORD)?;
        let conn = &mut setup.get()?;
        for email in (0..LOGIN_CLIENTS).map(login_email).chain([READER.to_owned()]) {
            User::create(
                conn,
                NewUser {
                    tenant_id: Some(tenant_id),
                    email: &email,
                    role: Role::Owner,
                    password_hash: &hash,
                    connection_id: None,
                },
            )?;
        }
        Ok(())
    })
    .await??;
    let reader = Reader::sign_in(base).await?;
    let webhook_page = format!("/webhooks/{webhook}");
    let pages = ["/webhooks", webhook_page.as_str(), "/healthz"];

    let argon2_per_s = argon2_ceiling().await?;
    println!("ceiling: {argon2_per_s:.1} argon2 hashes/s (one thread per core)");

    // The burst: every login client logs in again as soon as it is in, for PERIOD; the
    // rate counts until the last one is in. Each client keeps its connection: a new HTTP
    // client per login (root certificates and all) would spend on the load generator's
    // side the cores the logins are measured against.
    let done = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + PERIOD;
    let storm: Vec<_> = (0..LOGIN_CLIENTS)
        .map(|i| {
            let (base, done, failed) = (base.to_owned(), done.clone(), failed.clone());
            actix_web::rt::spawn(async move {
                let client = reqwest::Client::builder()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()?;
                while Instant::now() < deadline {
                    let counter = match log_in(&client, &base, &login_email(i)).await {
                        Ok(_) => &done,
                        Err(_) => &failed,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                anyhow::Ok(())
            })
        })
        .collect();
    let during: Vec<_> = pages
        .iter()
        .map(|path| load(&reader, path, READERS, THINK, PERIOD))
        .collect();
    let during_logins = futures_util::future::try_join_all(during).await?;
    for task in storm {
        task.await??;
    }
    let logins_per_s = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let failed_logins = failed.load(Ordering::Relaxed);
    println!(
        "{LOGIN_CLIENTS} login clients: {logins_per_s:.1} logins/s = {:.0}% of the argon2 ceiling ({failed_logins} failed)",
        100.0 * logins_per_s / argon2_per_s
    );
    for page in &during_logins {
        println!(
            "  meanwhile {} ({READERS} clients, {} ms think time): {}",
            page.path,
            THINK.as_millis(),
            page.figure()
        );
    }

    // Saturated: a static file, then the list page, the same clients without think time.
    let checkpointer_before = Checkpointer::now(pool)?;
    let static_saturated = load(&reader, STATIC_FILE, PAGE_CLIENTS, Duration::ZERO, PERIOD).await?;
    // Where the list page's slow requests have clustered (its first second, now and then):
    // what the database waited on meanwhile.
    let sampler = super::waits::Sampler::start(pool, reader.signed_in())?;
    let list_saturated = load(&reader, "/webhooks", PAGE_CLIENTS, Duration::ZERO, PERIOD).await?;
    let list_waits = sampler.finish();
    let together = futures_util::future::try_join(
        load(&reader, STATIC_FILE, PAGE_CLIENTS, Duration::ZERO, PERIOD),
        load(&reader, "/webhooks", PAGE_CLIENTS, Duration::ZERO, PERIOD),
    )
    .await?;
    let together = [together.0, together.1];
    let checkpointer = Checkpointer::now(pool)?.since(&checkpointer_before);
    for page in [&static_saturated, &list_saturated] {
        println!(
            "saturated {} ({PAGE_CLIENTS} clients): {}; {}",
            page.path,
            page.figure(),
            page.slow_requests()
        );
    }
    for page in &together {
        println!(
            "saturated together, {PAGE_CLIENTS} clients each: {} {}; {}",
            page.path,
            page.figure(),
            page.slow_requests()
        );
    }
    println!(
        "  PostgreSQL's sessions meanwhile /webhooks was saturated: {}",
        list_waits.figure()
    );
    println!(
        "saturated: the list page's p99 is {:.1}x the static file's one after the other, {:.1}x at once; meanwhile {}",
        list_saturated.p99 / static_saturated.p99,
        together[1].p99 / together[0].p99,
        checkpointer.figure()
    );

    let mut with_think_time = Vec::new();
    for path in pages {
        let page = load(&reader, path, PAGE_CLIENTS, THINK, PERIOD).await?;
        println!(
            "{path}, {PAGE_CLIENTS} clients with {} ms think time: {}",
            THINK.as_millis(),
            page.figure()
        );
        with_think_time.push(page);
    }
    Ok(Figures {
        argon2_per_s,
        logins_per_s,
        failed_logins,
        during_logins,
        static_saturated,
        list_saturated,
        together,
        checkpointer,
        with_think_time,
    })
}

fn login_email(i: usize) -> String {
    format!("login{i}@bench.example")
}

/// One login as a new browser would: the form, then the form sent back with the cookies
/// it came with (no session yet).
async fn log_in(client: &reqwest::Client, base: &str, email: &str) -> anyhow::Result<()> {
    let form = client.get(format!("{base}/login")).send().await?;
    let cookies: Vec<String> = form
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|cookie| Some(cookie.to_str().ok()?.split(';').next()?.to_owned()))
        .collect();
    let token = csrf_of(&form.text().await?);
    let response = client
        .post(format!("{base}/login"))
        .header(reqwest::header::COOKIE, cookies.join("; "))
        .form(&[("email", email), ("password", PASSWORD), ("csrf_token", &token)])
        .send()
        .await?;
    anyhow::ensure!(response.status() == 303, "login failed: {}", response.status());
    Ok(())
}

/// Hashes per second of one thread per core hashing for [`PERIOD`], with the parameters
/// logins use.
async fn argon2_ceiling() -> anyhow::Result<f64> {
    actix_web::rt::task::spawn_blocking(|| -> anyhow::Result<f64> {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let started = Instant::now();
        let deadline = started + PERIOD;
        let threads: Vec<_> = (0..cores)
            .map(|_| {
                std::thread::spawn(move || -> anyhow::Result<u64> {
                    let mut hashes = 0;
                    while Instant::now() < deadline {
                        hookboard::auth::password::hash(PASSWORD)?;
                        hashes += 1;
                    }
                    Ok(hashes)
                })
            })
            .collect();
        let mut hashes = 0;
        for thread in threads {
            hashes += thread
                .join()
                .map_err(|_| anyhow::anyhow!("a hashing thread panicked"))??;
        }
        Ok(hashes as f64 / started.elapsed().as_secs_f64())
    })
    .await?
}

/// The page clients' one session, and when it began.
pub struct Reader {
    pub client: reqwest::Client,
    base: String,
    signed_in: Instant,
}

impl Reader {
    /// The session of [`READER`], signed in now.
    pub async fn sign_in(base: &str) -> anyhow::Result<Reader> {
        Ok(Reader {
            client: logged_in(base, READER).await?,
            base: base.to_owned(),
            signed_in: Instant::now(),
        })
    }

    /// Five requests for `path` before it is measured (first queries, caches).
    pub async fn warm_up(&self, path: &str) -> anyhow::Result<()> {
        for _ in 0..5 {
            let response = self.client.get(format!("{}{path}", self.base)).send().await?;
            anyhow::ensure!(response.status() == 200, "{path} answered {}", response.status());
            response.bytes().await?;
        }
        Ok(())
    }

    /// When the session began: the origin of every request's and wait's start time.
    pub fn signed_in(&self) -> Instant {
        self.signed_in
    }
}

/// `clients` tasks of the reader's session asking for `path` for `period`, each waiting
/// `think` after every answer.
pub async fn load(
    reader: &Reader,
    path: &str,
    clients: usize,
    think: Duration,
    period: Duration,
) -> anyhow::Result<Latency> {
    let url = format!("{}{path}", reader.base);
    let deadline = Instant::now() + period;
    let tasks: Vec<_> = (0..clients)
        .map(|_| {
            let (client, url, signed_in) = (reader.client.clone(), url.clone(), reader.signed_in);
            actix_web::rt::spawn(async move {
                let mut samples = Vec::new();
                while Instant::now() < deadline {
                    let sent = Instant::now();
                    let response = client.get(&url).send().await?;
                    anyhow::ensure!(response.status() == 200, "{url} answered {}", response.status());
                    response.bytes().await?;
                    samples.push(Sample {
                        at_us: (sent - signed_in).as_micros() as u64,
                        took_us: sent.elapsed().as_micros() as u64,
                    });
                    if !think.is_zero() {
                        actix_web::rt::time::sleep(think).await;
                    }
                }
                Ok(samples)
            })
        })
        .collect();
    let mut samples = Vec::new();
    for task in tasks {
        samples.extend(task.await??);
    }
    Ok(Latency::of(path, samples, period))
}

/// PostgreSQL's checkpointer counters: a checkpoint writes its buffers spread over minutes
/// and then syncs them, which can hold up every commit meanwhile (a session write, a login).
#[derive(QueryableByName)]
struct Checkpointer {
    /// Checkpoints begun.
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    begun: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    buffers_written: i64,
    #[diesel(sql_type = diesel::sql_types::Double)]
    sync_ms: f64,
}

impl Checkpointer {
    fn now(pool: &DbPool) -> anyhow::Result<Checkpointer> {
        Ok(diesel::sql_query(
            "SELECT checkpoints_timed + checkpoints_req AS begun, buffers_checkpoint AS buffers_written, \
             checkpoint_sync_time AS sync_ms FROM pg_stat_bgwriter",
        )
        .get_result(&mut pool.get()?)?)
    }

    fn since(&self, before: &Checkpointer) -> Checkpointer {
        Checkpointer {
            begun: self.begun - before.begun,
            buffers_written: self.buffers_written - before.buffers_written,
            sync_ms: self.sync_ms - before.sync_ms,
        }
    }

    fn figure(&self) -> String {
        format!(
            "{} checkpoints begun, {} buffers written by the checkpointer, {:.0} ms syncing",
            self.begun, self.buffers_written, self.sync_ms
        )
    }
}

impl Figures {
    pub fn rows(&self) -> String {
        let mut rows = vec![
            format!(
                "| argon2 hashes/s, one thread per core (ceiling) | {:.1} | |",
                self.argon2_per_s
            ),
            format!(
                "| logins/s, {LOGIN_CLIENTS} clients at once | {:.1} ({} failed) | {:.0}% of the argon2 ceiling; target >= 50% |",
                self.logins_per_s,
                self.failed_logins,
                100.0 * self.logins_per_s / self.argon2_per_s
            ),
        ];
        for page in &self.during_logins {
            rows.push(format!(
                "| {} meanwhile, {READERS} clients, {} ms think time | {} | p99 < 50 ms |",
                page.path,
                THINK.as_millis(),
                page.figure()
            ));
        }
        rows.push(format!(
            "| saturated, {PAGE_CLIENTS} clients: {} / `/webhooks` | {} / {} | {:.1}x ({} over {} ms); target <= 3x |",
            self.static_saturated.path,
            self.static_saturated.figure(),
            self.list_saturated.figure(),
            self.list_saturated.p99 / self.static_saturated.p99,
            self.list_saturated.slow.len(),
            SLOW.as_millis(),
        ));
        let [static_file, list] = &self.together;
        rows.push(format!(
            "| saturated at once, {PAGE_CLIENTS} clients each: {} / `/webhooks` | {} / {} | {:.1}x ({} over {} ms); target <= 3x |",
            static_file.path,
            static_file.figure(),
            list.figure(),
            list.p99 / static_file.p99,
            list.slow.len(),
            SLOW.as_millis(),
        ));
        for (page, target) in self.with_think_time.iter().zip(["15", "25", "5"]) {
            rows.push(format!(
                "| {}, {PAGE_CLIENTS} clients with {} ms think time | {} | p99 < {target} ms |",
                page.path,
                THINK.as_millis(),
                page.figure()
            ));
        }
        rows.join("\n")
    }

    pub fn json(&self) -> serde_json::Value {
        let by_path = |pages: &[Latency]| -> serde_json::Map<String, serde_json::Value> {
            pages.iter().map(|p| (p.path.clone(), p.json())).collect()
        };
        json!({
            "ceiling_argon2_per_s": self.argon2_per_s,
            "logins": {
                "clients": LOGIN_CLIENTS,
                "per_s": self.logins_per_s,
                "to_argon2_ceiling": self.logins_per_s / self.argon2_per_s,
                "failed": self.failed_logins,
                "pages_meanwhile": by_path(&self.during_logins),
            },
            "saturated": {
                "clients": PAGE_CLIENTS,
                "static_file": self.static_saturated.json(),
                "list_page": self.list_saturated.json(),
                "list_to_static_p99": self.list_saturated.p99 / self.static_saturated.p99,
                "together": {
                    "static_file": self.together[0].json(),
                    "list_page": self.together[1].json(),
                    "list_to_static_p99": self.together[1].p99 / self.together[0].p99,
                },
                "checkpointer": {
                    "checkpoints_begun": self.checkpointer.begun,
                    "buffers_written": self.checkpointer.buffers_written,
                    "sync_ms": self.checkpointer.sync_ms,
                },
            },
            "think_time": { "clients": PAGE_CLIENTS, "think_ms": THINK.as_millis() as u64, "pages": by_path(&self.with_think_time) },
        })
    }
}
