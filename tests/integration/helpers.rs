//! The test harness: a PostgreSQL for the whole run (the embedded mechanism, under the
//! system temp folder, unless DATABASE_URL names one), a migrated template database, and a
//! [`TestApp`] per test: the real server on port 0 against its own copy of the template.

/// Reading the pages: parse, select, text.
pub mod html;

use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use diesel::{Connection, PgConnection, RunQueryDsl};
use hookboard::auth::password;
use hookboard::clock::ManualClock;
use hookboard::db::{
    self, DbPool,
    embedded::{EmbeddedOptions, EmbeddedPostgres},
};
use hookboard::metrics::Metrics;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::user::{NewUser, Role, User};
use hookboard::settings::Settings;
use hookboard::startup::build_server;
use hookboard::state::AppState;

pub const PASSWORD: &str = "correct horse battery staple";

/// The server every test of this run shares, and the template its databases copy.
/// Makes the connection URL of a database name on the test server.
type UrlFor = Box<dyn Fn(&str) -> String + Send + Sync>;

pub struct Cluster {
    url_for: UrlFor,
    _embedded: Option<EmbeddedPostgres>,
    template: String,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();
/// `CREATE DATABASE … TEMPLATE` refuses while another copy is being made; take turns.
static CREATE_LOCK: Mutex<()> = Mutex::new(());

pub fn cluster() -> &'static Cluster {
    CLUSTER.get_or_init(|| {
        let (url_for, embedded): (UrlFor, _) = match std::env::var("DATABASE_URL") {
            Ok(url) if !url.is_empty() => (Box::new(move |name: &str| replace_database(&url, name)), None),
            _ => {
                let server = EmbeddedPostgres::start(&EmbeddedOptions {
                    data_dir: test_data_dir(),
                    unsafe_fast: true,
                    statement_stats: false,
                })
                .expect("the test PostgreSQL starts (see the message above)");
                let base = server.url("postgres");
                (
                    Box::new(move |name: &str| replace_database(&base, name)),
                    Some(server),
                )
            }
        };
        let template = format!("hb_template_{}", std::process::id());
        let mut admin = PgConnection::establish(&url_for("postgres")).expect("connect to the test server");
        diesel::sql_query(format!("DROP DATABASE IF EXISTS {template}"))
            .execute(&mut admin)
            .unwrap();
        diesel::sql_query(format!("CREATE DATABASE {template}"))
            .execute(&mut admin)
            .unwrap();
        let mut conn = PgConnection::establish(&url_for(&template)).unwrap();
        db::run_migrations(&mut conn).expect("migrations run on the template");
        Cluster {
            url_for,
            _embedded: embedded,
            template,
        }
    })
}

/// A fresh cluster directory per test process under the system temp folder (the
/// `postgres` user must be able to reach it when the tests run as root); directories of
/// earlier runs whose process is gone are removed.
fn test_data_dir() -> PathBuf {
    run_dir()
}

/// A new empty folder for one test, removed with the run's directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = run_dir()
        .join("scratch")
        .join(format!("{name}-{}", hookboard::models::random_hex(4)));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn run_dir() -> PathBuf {
    let root = std::env::temp_dir().join("hookboard-tests");
    std::fs::create_dir_all(&root).unwrap();
    for entry in std::fs::read_dir(&root).unwrap().flatten() {
        let stale = entry
            .file_name()
            .to_str()
            .and_then(|name| name.parse::<u32>().ok())
            .is_some_and(|pid| !PathBuf::from(format!("/proc/{pid}")).exists());
        if stale {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
    root.join(std::process::id().to_string())
}

fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map(|(b, q)| (b, Some(q)))
        .unwrap_or((url, None));
    let scheme_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let path_start = base[scheme_end..]
        .find('/')
        .map(|i| i + scheme_end)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        out.push('?');
        out.push_str(query);
    }
    out
}

/// A database of its own, copied from the migrated template, dropped when the value goes.
pub struct TestDatabase {
    pub name: String,
    pub url: String,
}

impl TestDatabase {
    pub fn new() -> Self {
        let cluster = cluster();
        let name = format!("hb_test_{}", hookboard::models::random_hex(6));
        let mut admin = PgConnection::establish(&(cluster.url_for)("postgres")).unwrap();
        {
            let _turn = CREATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
            diesel::sql_query(format!("CREATE DATABASE {name} TEMPLATE {}", cluster.template))
                .execute(&mut admin)
                .unwrap();
        }
        TestDatabase {
            url: (cluster.url_for)(&name),
            name,
        }
    }

    pub fn conn(&self) -> PgConnection {
        PgConnection::establish(&self.url).unwrap()
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&(cluster().url_for)("postgres")) {
            let _ = diesel::sql_query(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name))
                .execute(&mut admin);
        }
    }
}

/// Settings for tests: defaults, plain-HTTP cookies, a fixed secret key.
pub fn test_settings(database_url: &str) -> Settings {
    test_settings_with(database_url, &[])
}

/// Test settings with some variables set otherwise.
pub fn test_settings_with(database_url: &str, overrides: &[(&str, &str)]) -> Settings {
    let url = database_url.to_owned();
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Settings::from_lookup(move |name| match name {
        _ if overrides.iter().any(|(k, _)| k == name) => {
            overrides.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
        }
        "DATABASE_URL" => Some(url.clone()),
        "HOOKBOARD_SECURE_COOKIES" => Some("false".into()),
        "HOOKBOARD_SECRET_KEY" => Some("42".repeat(32)),
        "HOOKBOARD_DB_POOL_SIZE" => Some("4".into()),
        "HOOKBOARD_WORKER" => Some("off".into()),
        _ => None,
    })
    .unwrap()
}

/// The real app on a loopback port, with its own database and a clock tests can move.
pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub pool: DbPool,
    pub clock: ManualClock,
    /// Dropped with the app, which drops the database.
    _db: TestDatabase,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(&[]).await
    }

    /// The app with some settings changed, e.g. `("HOOKBOARD_API_RATE_LIMIT", "2")`.
    pub async fn spawn_with(overrides: &[(&str, &str)]) -> TestApp {
        hookboard::delivery::http::install_crypto();
        let db = tokio_block(TestDatabase::new).await;
        let settings = test_settings_with(&db.url, overrides);
        let pool = db::connect(&db.url, settings.db_pool_size).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let clock = ManualClock::default();
        let state = AppState {
            pool: pool.clone(),
            settings,
            clock: Arc::new(clock.clone()),
            metrics: Arc::new(Metrics::default()),
            secret_key: [0x42; 32],
        };
        let server = build_server(state, listener).unwrap();
        actix_web::rt::spawn(server);
        TestApp {
            address,
            database_url: db.url.clone(),
            pool,
            clock,
            _db: db,
        }
    }

    /// The app with a Scale tenant, Alpine Tours, its Webhooks tool on and its owner
    /// (ana@alpine.example) logged in: where most page tests start.
    pub async fn spawn_with_scale_owner() -> (TestApp, Tenant, Browser) {
        let app = TestApp::spawn().await;
        let (tenant, owner) = app
            .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
            .await;
        (app, tenant, owner)
    }

    /// A Scale tenant with the Webhooks tool on.
    pub async fn scale_tenant(&self, name: &str) -> Tenant {
        let tenant = self.create_tenant(name, Plan::Scale).await;
        let id = tenant.id;
        self.with_conn(move |conn| Tenant::set_webhooks_enabled(conn, id, true).unwrap())
            .await
    }

    /// A new API key of the tenant (the booking platform's), in clear.
    pub async fn tenant_key(&self, tenant: &Tenant) -> String {
        let id = tenant.id;
        self.with_conn(move |conn| {
            hookboard::models::api_key::ApiKey::create(conn, id, "Booking platform", None)
                .unwrap()
                .1
        })
        .await
    }

    /// A Scale tenant with the Webhooks tool on, and its owner logged in.
    pub async fn scale_tenant_with_owner(&self, name: &str, email: &str) -> (Tenant, Browser) {
        let tenant = self.scale_tenant(name).await;
        let owner = self.user_logged_in(&tenant, email, Role::Owner).await;
        (tenant, owner)
    }

    /// A user of `tenant` with the test password, logged in.
    pub async fn user_logged_in(&self, tenant: &Tenant, email: &str, role: Role) -> Browser {
        self.create_user(Some(tenant), email, role).await;
        self.logged_in(email).await
    }

    /// A webhook made through the model (fast, for arranging), with its API key; `tweak`
    /// changes the defaults (active, API key and retries on).
    pub async fn create_webhook(
        &self,
        tenant: &Tenant,
        url: &str,
        events: &[&str],
        tweak: impl FnOnce(&mut hookboard::validation::webhook::Input),
    ) -> (hookboard::models::webhook::Webhook, String) {
        use hookboard::models::webhook::Webhook;
        let mut input = hookboard::validation::webhook::Input {
            url: url.into(),
            events: events.iter().map(|e| e.to_string()).collect(),
            ..Default::default()
        };
        tweak(&mut input);
        let (tenant_id, secrets) = (tenant.id, self.secrets());
        self.with_conn(move |conn| {
            Webhook::create(conn, tenant_id, &crate::helpers::valid(input.clone()), &secrets).unwrap()
        })
        .await
    }

    /// A partner login of `tenant` bound to `connection_id`, with the test password.
    pub async fn create_partner(&self, tenant: &Tenant, email: &str, connection_id: i64) -> User {
        let tenant_id = tenant.id;
        let email = email.to_owned();
        self.with_conn(move |conn| {
            let hash = password::hash(PASSWORD).unwrap();
            User::create(
                conn,
                NewUser {
                    tenant_id: Some(tenant_id),
                    email: &email,
                    role: Role::Partner,
                    password_hash: &hash,
                    connection_id: Some(connection_id),
                },
            )
            .unwrap()
        })
        .await
    }

    /// The secrets box of the app (tests use the fixed test key).
    pub fn secrets(&self) -> hookboard::crypto::SecretBox {
        hookboard::crypto::SecretBox::new(&[0x42; 32])
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Runs database work off the async threads.
    pub async fn with_conn<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut PgConnection) -> T + Send + 'static,
    ) -> T {
        let pool = self.pool.clone();
        tokio_block(move || work(&mut pool.get().unwrap())).await
    }

    pub async fn create_tenant(&self, name: &str, plan: Plan) -> Tenant {
        let name = name.to_owned();
        self.with_conn(move |conn| Tenant::create(conn, &name, plan).unwrap())
            .await
    }

    /// A user with the test password; `tenant` None makes an operator.
    pub async fn create_user(&self, tenant: Option<&Tenant>, email: &str, role: Role) -> User {
        let tenant_id = tenant.map(|t| t.id);
        let email = email.to_owned();
        self.with_conn(move |conn| {
            let hash = password::hash(PASSWORD).unwrap();
            User::create(
                conn,
                NewUser {
                    tenant_id,
                    email: &email,
                    role,
                    password_hash: &hash,
                    connection_id: None,
                },
            )
            .unwrap()
        })
        .await
    }

    /// A delivery engine of this app that may reach loopback receivers, with a 2 s timeout.
    pub fn engine(&self) -> hookboard::delivery::dispatcher::Dispatcher {
        self.engine_on(self.pool.clone(), true, "2s")
    }

    /// An engine on `pool`, with loopback allowed or not and the given delivery timeout.
    pub fn engine_on(
        &self,
        pool: DbPool,
        allow_loopback: bool,
        timeout: &str,
    ) -> hookboard::delivery::dispatcher::Dispatcher {
        let allow = if allow_loopback { "127.0.0.0/8,::1/128" } else { "" };
        self.engine_with_settings(
            pool,
            &[
                ("HOOKBOARD_ALLOW_PRIVATE_TARGETS", allow),
                ("HOOKBOARD_DELIVERY_TIMEOUT", timeout),
            ],
        )
    }

    /// An engine with these settings (and loopback receivers allowed unless they say
    /// otherwise), e.g. `("HOOKBOARD_SMTP_URL", &sink.url)`.
    pub fn engine_with_settings(
        &self,
        pool: DbPool,
        overrides: &[(&str, &str)],
    ) -> hookboard::delivery::dispatcher::Dispatcher {
        let url = self.database_url.clone();
        let base = test_settings(&url);
        let mut values: Vec<(String, String)> = vec![
            ("DATABASE_URL".into(), url.clone()),
            (
                "HOOKBOARD_ALLOW_PRIVATE_TARGETS".into(),
                "127.0.0.0/8,::1/128".into(),
            ),
            ("HOOKBOARD_DELIVERY_TIMEOUT".into(), "2s".into()),
            ("HOOKBOARD_SECRET_KEY".into(), "42".repeat(32)),
        ];
        for (name, value) in overrides {
            values.retain(|(n, _)| n != name);
            values.push((name.to_string(), value.to_string()));
        }
        let settings =
            Settings::from_lookup(move |name| values.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone()))
                .unwrap();
        assert_eq!(base.secret_key, settings.secret_key);
        hookboard::delivery::dispatcher::Dispatcher::new(
            pool,
            &settings,
            self.secrets(),
            Arc::new(self.clock.clone()),
            Arc::new(Metrics::default()),
        )
        .unwrap()
    }

    /// A browser-like client: keeps cookies, does not follow redirects.
    pub fn client(&self) -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
    }

    /// A client logged in as `email` (with the test password).
    pub async fn logged_in(&self, email: &str) -> Browser {
        let browser = Browser::new(self);
        let response = browser.login(email, PASSWORD).await;
        assert_eq!(response.status(), 303, "login of {email} succeeds");
        browser
    }
}

/// A cookie-keeping client that knows the page's CSRF token.
pub struct Browser {
    pub client: reqwest::Client,
    pub base: String,
    jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new(app: &TestApp) -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            client,
            base: app.address.clone(),
            jar,
        }
    }

    /// The `Cookie` header this browser sends, e.g. to replay it from another client.
    pub fn cookie_header(&self) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&self.base.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    /// The CSRF token from a page's `<meta name="csrf-token">`.
    pub async fn csrf_token(&self, path: &str) -> String {
        let html = self.get(path).await.text().await.unwrap();
        meta_csrf(&html)
    }

    pub async fn login(&self, email: &str, password: &str) -> reqwest::Response {
        let token = self.csrf_token("/login").await;
        self.post_form(
            "/login",
            &[("email", email), ("password", password), ("csrf_token", &token)],
        )
        .await
    }

    /// A POST as htmx sends it: `HX-Request`, the CSRF header, the page it came from.
    pub async fn htmx_post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token("/").await;
        self.client
            .post(format!("{}{path}", self.base))
            .header("HX-Request", "true")
            .header("HX-Current-URL", format!("{}/webhooks", self.base))
            .header("X-CSRF-Token", token)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// A GET as htmx sends it, aimed at `target`.
    pub async fn htmx_get(&self, path: &str, target: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .header("HX-Request", "true")
            .header("HX-Target", target)
            .send()
            .await
            .unwrap()
    }

    /// A form post with this browser's CSRF token added.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf_token("/").await;
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push(("csrf_token", &token));
        self.post_form(path, &all).await
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(format!("{}{path}", self.base))
            .form(fields)
            .send()
            .await
            .unwrap()
    }
}

/// A webhook as a test sets it up (receivers on loopback over plain http, any host name),
/// checked by the same validation as every webhook, in a world that allows those.
pub fn valid(input: hookboard::validation::webhook::Input) -> hookboard::validation::webhook::Valid {
    use hookboard::validation::{ssrf, webhook};
    let known = input.events.clone();
    let connections: Vec<i64> = input.connection_id.into_iter().collect();
    let anywhere = ssrf::parse_allow_list(&["0.0.0.0/0".into(), "::/0".into()]).unwrap();
    let world = webhook::Context {
        allow_http: true,
        allowed_private: &anywhere,
        known_events: &known,
        examples: &[],
        tenant_connections: &connections,
        resolve: false,
    };
    webhook::validate(input, &world).unwrap_or_else(|errors| panic!("a test webhook is valid: {errors:?}"))
}

/// `done_on` as the store writes it for a delivery set to `status` at `at`: the UTC day it
/// finished on, 'infinity' while it waits (migration `deliveries_by_day`). For tests that
/// arrange a delivery's state by hand.
pub fn done_on(
    status: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> diesel::expression::SqlLiteral<diesel::sql_types::Date> {
    match status {
        "pending" | "parked" => diesel::dsl::sql("'infinity'::date"),
        _ => diesel::dsl::sql(&format!("'{}'::date", at.date_naive())),
    }
}

pub fn meta_csrf(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse(r#"meta[name="csrf-token"]"#).unwrap();
    doc.select(&selector)
        .next()
        .and_then(|m| m.value().attr("content"))
        .expect("the page has a csrf-token meta tag")
        .to_owned()
}

/// Runs blocking work on a thread of its own (the test runtime is single-threaded).
pub async fn tokio_block<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::rt::task::spawn_blocking(work).await.unwrap()
}

/// A single-threaded tokio runtime, for test code that drives async clients from a plain
/// thread (outside the test's own runtime).
pub fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
