//! Findings of the penetration and load tests, each kept closed by a test through the
//! real app.

use hookboard::delivery::http;
use hookboard::models::api_key::ApiKey;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::user::Role;
use serde_json::{Value, json};

use crate::helpers::{Browser, PASSWORD, TestApp};
use crate::receiver::Receiver;

/// Logs in with `next` in the form, as the login page posts it; answers the response.
async fn login_with_next(browser: &Browser, next: &str) -> reqwest::Response {
    let token = browser.csrf_token("/login").await;
    browser
        .post_form(
            "/login",
            &[
                ("email", "ana@alpine.example"),
                ("password", PASSWORD),
                ("csrf_token", &token),
                ("next", next),
            ],
        )
        .await
}

#[actix_web::test]
async fn after_login_next_never_leads_to_another_origin_however_it_is_spelled() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    for next in [
        format!("/\t/127.0.0.1:{port}/x"),
        format!("/\n/127.0.0.1:{port}/x"),
        format!("/\r\n/127.0.0.1:{port}/x"),
        format!("\\\\127.0.0.1:{port}/x"),
        format!(" //127.0.0.1:{port}/x"),
        format!("/.//127.0.0.1:{port}/x"),
        "https://evil.example/".to_owned(),
    ] {
        let browser = Browser::new(&app);
        let response = login_with_next(&browser, &next).await;
        assert_eq!(response.status(), 303, "{next:?}");
        assert_eq!(response.headers()["location"], "/", "{next:?}");
    }

    let browser = Browser::new(&app);
    let response = login_with_next(&browser, "/webhooks?status=active").await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        response.headers()["location"],
        "/webhooks?status=active",
        "a path of this site is still followed"
    );
}

/// A Scale tenant with the tool on, a tenant API key and a logged-in owner.
async fn scale_tenant_with_key(app: &TestApp) -> (Tenant, Browser, String) {
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let id = tenant.id;
    let key = app
        .with_conn(move |conn| ApiKey::create(conn, id, "CRM integration", None).unwrap().1)
        .await;
    (tenant, owner, key)
}

/// Creates a webhook through the API; answers the status and the JSON.
async fn api_create(app: &TestApp, key: &str, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/webhooks"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn hop_by_hop_and_framing_headers_are_refused_by_the_form_and_the_api() {
    let app = TestApp::spawn().await;
    let (_, owner, key) = scale_tenant_with_key(&app).await;
    for name in [
        "Expect",
        "TE",
        "Upgrade",
        "Keep-Alive",
        "Trailer",
        "Proxy-Connection",
        "Content-Encoding",
    ] {
        let (status, error) = api_create(
            &app,
            &key,
            json!({"url": "https://crm.example/x", "events": ["booking.created"], "headers": {name: "x"}}),
        )
        .await;
        assert_eq!(status, 422, "{name}: {error}");
        let message = error["error"]["message"].as_str().unwrap().to_owned();
        assert!(message.contains("cannot be set"), "{name}: {message}");

        let response = owner
            .htmx_post(
                "/webhooks",
                &[
                    ("url", "https://crm.example/x"),
                    ("events", "booking.created"),
                    ("header_name", name),
                    ("header_value", "x"),
                ],
            )
            .await;
        assert_eq!(response.status(), 422, "{name}");
        let html = response.text().await.unwrap();
        assert!(
            html.contains("controls how the request is framed or forwarded"),
            "{name}"
        );
    }
    let stored = app
        .with_conn(|conn| {
            use diesel::prelude::*;
            hookboard::schema::webhooks::table
                .count()
                .get_result::<i64>(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stored, 0, "nothing was saved");
}

#[actix_web::test]
async fn a_hop_by_hop_header_stored_before_the_rule_is_never_sent() {
    let receiver = Receiver::answering(204);
    let allowed = vec!["127.0.0.0/8".parse().unwrap()];
    let client = http::client(std::time::Duration::from_secs(5), allowed.clone()).unwrap();
    let headers = [
        ("Expect", "100-continue"),
        ("TE", "trailers"),
        ("Upgrade", "h2c"),
        ("Keep-Alive", "timeout=5"),
        ("Content-Encoding", "gzip"),
        ("X-Team", "sales"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    let outcome = http::send(
        &client,
        &http::parse(&receiver.url).unwrap(),
        headers,
        bytes::Bytes::from_static(b"{}"),
        &allowed,
    )
    .await;
    assert!(outcome.succeeded, "{:?}", outcome.error_message);
    let received = &receiver.requests()[0].headers;
    assert_eq!(received.get("x-team").map(String::as_str), Some("sales"));
    for name in ["expect", "te", "upgrade", "keep-alive", "content-encoding"] {
        assert!(!received.contains_key(name), "{name} was sent: {received:?}");
    }
}

#[actix_web::test]
async fn an_ipv4_translated_loopback_url_is_refused_at_save_and_the_allow_list_still_works() {
    let app = TestApp::spawn_with(&[
        ("HOOKBOARD_ALLOW_HTTP_TARGETS", "true"),
        ("HOOKBOARD_ALLOW_PRIVATE_TARGETS", "127.0.0.0/8"),
    ])
    .await;
    let (_, owner, key) = scale_tenant_with_key(&app).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    for url in [
        format!("http://[::ffff:0:7f00:1]:{port}/"),
        format!("http://[::ffff:0:a9fe:a9fe]:{port}/"),
        format!("http://[64:ff9b::7f00:1]:{port}/"),
        format!("http://[2002:a00:1::1]:{port}/"),
        format!("http://192.31.196.1:{port}/"),
        format!("http://[5f00::1]:{port}/"),
    ] {
        let (status, error) =
            api_create(&app, &key, json!({"url": url, "events": ["booking.created"]})).await;
        assert_eq!(status, 422, "{url}: {error}");
        assert_eq!(error["error"]["field"], "url", "{url}");
        let response = owner
            .htmx_post("/webhooks", &[("url", &url), ("events", "booking.created")])
            .await;
        assert_eq!(response.status(), 422, "{url}");
        assert!(response.text().await.unwrap().contains("public server"), "{url}");
    }
    let (status, created) = api_create(
        &app,
        &key,
        json!({"url": format!("http://127.0.0.1:{port}/"), "events": ["booking.created"]}),
    )
    .await;
    assert_eq!(status, 201, "a listed private range is still allowed: {created}");
}

const JOSE_PRECOMPOSED: &str = "jos\u{e9}@alpine.example";
const JOSE_DECOMPOSED: &str = "jose\u{301}@alpine.example";

#[actix_web::test]
async fn an_email_is_one_account_whatever_its_unicode_form_or_case() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let operator = app.logged_in("ops@platform.example").await;
    let create = |email: &'static str| {
        let operator = &operator;
        let tenant_id = tenant.id.to_string();
        async move {
            let token = operator.csrf_token("/admin/users").await;
            operator
                .post_form(
                    "/admin/users",
                    &[
                        ("csrf_token", &token),
                        ("email", email),
                        ("role", "owner"),
                        ("tenant", &tenant_id),
                    ],
                )
                .await
        }
    };

    let created = create(JOSE_PRECOMPOSED).await;
    assert_eq!(created.status(), 200);
    let link = crate::password_links::link_path(&created.text().await.unwrap());
    assert_eq!(
        crate::password_links::use_link(&app, &link, PASSWORD)
            .await
            .status(),
        303
    );
    for other in [JOSE_DECOMPOSED, "JOSE\u{301}@ALPINE.example"] {
        let response = Browser::new(&app).login(other, PASSWORD).await;
        assert_eq!(response.status(), 303, "{other:?} logs into the same account");
    }
    let again = create(JOSE_DECOMPOSED).await;
    assert_eq!(again.status(), 422);
    assert!(again.text().await.unwrap().contains("exists already"));

    let cli = crate::cli::hookboard(
        &[
            "user",
            "create",
            "--tenant",
            &tenant.slug,
            "--email",
            "JOSE\u{301}@alpine.example",
            "--role",
            "viewer",
        ],
        &[("DATABASE_URL", app.database_url.as_str())],
        Some(PASSWORD),
    );
    assert!(!cli.status.success(), "the CLI refuses the same account too");
    assert!(String::from_utf8_lossy(&cli.stderr).contains("exists already"));

    let stored: Vec<String> = app
        .with_conn(|conn| {
            use diesel::prelude::*;
            hookboard::schema::users::table
                .select(hookboard::schema::users::email)
                .order(hookboard::schema::users::id)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(stored, ["ops@platform.example", JOSE_PRECOMPOSED]);
}

#[actix_web::test]
async fn the_migration_normalizes_stored_emails_and_leaves_colliding_ones_for_an_operator() {
    use diesel::prelude::*;
    use diesel_migrations::MigrationHarness;
    let db = crate::helpers::tokio_block(crate::helpers::TestDatabase::new).await;
    let mut conn = db.conn();
    // Back to just before the normalization.
    while conn
        .applied_migrations()
        .unwrap()
        .iter()
        .any(|v| v.to_string() == "20261127000011")
    {
        conn.revert_last_migration(hookboard::db::MIGRATIONS).unwrap();
    }
    let tenant = hookboard::models::tenant::Tenant::create(&mut conn, "Alpine", Plan::Scale)
        .unwrap()
        .id;
    for email in [
        "Ana@Alpine.example",
        "JOSE\u{301}@alpine.example",
        "\u{c9}mile@alpine.example",
        "e\u{301}mile@alpine.example",
    ] {
        diesel::sql_query(
            "INSERT INTO users (tenant_id, email, role, password_hash) VALUES ($1, $2, 'owner', 'x')",
        )
        .bind::<diesel::sql_types::BigInt, _>(tenant)
        .bind::<diesel::sql_types::Text, _>(email)
        .execute(&mut conn)
        .unwrap();
    }
    hookboard::db::run_migrations(&mut conn).unwrap();
    let stored: Vec<String> = hookboard::schema::users::table
        .select(hookboard::schema::users::email)
        .order(hookboard::schema::users::id)
        .load(&mut conn)
        .unwrap();
    assert_eq!(
        stored,
        [
            "ana@alpine.example",
            JOSE_PRECOMPOSED,
            "\u{c9}mile@alpine.example",
            "e\u{301}mile@alpine.example",
        ]
    );
}

/// Posts the password change form of `browser`.
async fn change_password(browser: &Browser, current: &str, new: &str) -> reqwest::Response {
    let token = browser.csrf_token("/profile").await;
    browser
        .post_form(
            "/profile/password",
            &[
                ("csrf_token", &token),
                ("current_password", current),
                ("new_password", new),
                ("confirm_password", new),
            ],
        )
        .await
}

#[actix_web::test]
async fn wrong_current_passwords_pause_password_changes_like_logins() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = app.logged_in("ana@alpine.example").await;
    for guess in 0..8 {
        let response = change_password(
            &browser,
            &format!("wrong guess number {guess}"),
            "an entirely new passphrase",
        )
        .await;
        assert_eq!(response.status(), 422, "guess {guess}");
    }
    let right = change_password(&browser, PASSWORD, "an entirely new passphrase").await;
    assert_eq!(right.status(), 422, "the right one is paused too");
    assert!(
        right
            .text()
            .await
            .unwrap()
            .contains(hookboard::web::profile::PASSWORD_CHECKS_PAUSED)
    );
    assert_eq!(
        Browser::new(&app)
            .login("ana@alpine.example", PASSWORD)
            .await
            .status(),
        422,
        "one throttle per account: the login is paused as well"
    );

    app.clock.advance(std::time::Duration::from_secs(61));
    let right = change_password(&browser, PASSWORD, "an entirely new passphrase").await;
    assert_eq!(right.status(), 200, "the pause ran out");
}

/// `hookboard_password_checks_total` from /metrics.
async fn password_checks(app: &TestApp) -> u64 {
    let text = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|line| line.strip_prefix("hookboard_password_checks_total "))
        .expect("the metric is exposed")
        .parse()
        .unwrap()
}

/// `count` browsers on the login page, each with its connection open and its token, ready
/// to post at once.
async fn login_pages(app: &TestApp, count: usize) -> Vec<(Browser, String)> {
    let mut ready = Vec::new();
    for _ in 0..count {
        let browser = Browser::new(app);
        let token = browser.csrf_token("/login").await;
        ready.push((browser, token));
    }
    ready
}

#[actix_web::test]
async fn forty_logins_at_once_get_five_password_checks_and_the_right_one_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let checks_before = password_checks(&app).await;
    let ready = login_pages(&app, 40).await;
    let guesses: Vec<String> = (0..39)
        .map(|i| format!("wrong guess number {i}"))
        .chain([PASSWORD.to_owned()])
        .collect();
    let statuses = futures_util::future::join_all(ready.iter().zip(&guesses).map(
        |((browser, token), guess)| async move {
            browser
                .post_form(
                    "/login",
                    &[
                        ("email", "ana@alpine.example"),
                        ("password", guess),
                        ("csrf_token", token),
                    ],
                )
                .await
                .status()
                .as_u16()
        },
    ))
    .await;
    assert_eq!(statuses[39], 422, "the right password is refused in the burst");
    assert!(statuses.iter().all(|s| *s == 422), "{statuses:?}");
    let checked = password_checks(&app).await - checks_before;
    assert!((1..=5).contains(&checked), "{checked} passwords were checked");

    app.clock.advance(std::time::Duration::from_secs(16 * 60));
    assert_eq!(
        Browser::new(&app)
            .login("ana@alpine.example", PASSWORD)
            .await
            .status(),
        303,
        "after the window the right password works"
    );
}

#[actix_web::test]
async fn one_address_cannot_walk_many_accounts() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_LOGIN_FAILURES_PER_ADDRESS", "3")]).await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    for name in ["ana", "ben", "cai", "dee"] {
        app.create_user(Some(&tenant), &format!("{name}@alpine.example"), Role::Owner)
            .await;
    }
    let browser = Browser::new(&app);
    for name in ["ana", "ben", "nobody"] {
        let response = browser
            .login(&format!("{name}@alpine.example"), "a wrong guess here")
            .await;
        assert_eq!(response.status(), 422);
    }
    let checks_before = password_checks(&app).await;
    let refused = Browser::new(&app).login("dee@alpine.example", PASSWORD).await;
    assert_eq!(refused.status(), 422, "this address is paused");
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains(&hookboard::web::login::LOGIN_REFUSED[..40]),
        "with the same message"
    );
    assert_eq!(password_checks(&app).await, checks_before, "and no hash");

    app.clock.advance(std::time::Duration::from_secs(15 * 60));
    assert_eq!(
        Browser::new(&app)
            .login("dee@alpine.example", PASSWORD)
            .await
            .status(),
        303
    );
}

#[actix_web::test]
async fn credential_like_headers_are_masked_for_viewers_and_kept_when_the_form_is_saved() {
    let app = TestApp::spawn().await;
    let (tenant, owner, key) = scale_tenant_with_key(&app).await;
    app.create_user(Some(&tenant), "vic@alpine.example", Role::Viewer)
        .await;
    let viewer = app.logged_in("vic@alpine.example").await;
    let secrets = [
        ("Cookie", "session=cookie0123456789"),
        ("X-Session", "sess_0123456789abcdef"),
        ("X-Signature-Hmac", "hmac_fedcba9876543210"),
    ];
    let mut headers = serde_json::Map::new();
    for (name, value) in secrets {
        headers.insert(name.into(), value.into());
    }
    headers.insert("X-Team".into(), "sales".into());
    let (status, created) = api_create(
        &app,
        &key,
        json!({"url": "https://crm.example/x", "events": ["booking.created"], "headers": headers}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_i64().unwrap();

    let page = viewer.get(&format!("/webhooks/{id}")).await.text().await.unwrap();
    let api = reqwest::Client::new()
        .get(app.url(&format!("/api/v1/webhooks/{id}")))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    for (name, value) in secrets {
        assert!(!page.contains(value), "{name} is not on the page");
        assert_ne!(api["headers"][name], value, "{name} is not in the API");
        assert!(
            api["headers"][name].as_str().unwrap().contains("••••"),
            "{name} is masked"
        );
    }
    assert!(page.contains("sales"), "a harmless header is shown");
    assert_eq!(api["headers"]["X-Team"], "sales");

    let mut edited: Vec<(&str, String)> = vec![
        ("url", "https://crm.example/x".into()),
        ("events", "booking.created".into()),
        ("active", "on".into()),
    ];
    for (name, _) in secrets {
        edited.push(("header_name", name.into()));
        edited.push(("header_value", api["headers"][name].as_str().unwrap().to_owned()));
    }
    let fields: Vec<(&str, &str)> = edited.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let response = owner.htmx_post(&format!("/webhooks/{id}"), &fields).await;
    assert_eq!(response.status(), 200);
    let tenant_id = tenant.id;
    let stored = app
        .with_conn(move |conn| hookboard::models::webhook::Webhook::find(conn, tenant_id, id).unwrap())
        .await;
    let expected: Vec<(String, String)> = secrets
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    assert_eq!(stored.headers(&app.secrets()).unwrap(), expected);
}

/// GETs an API path with a key; answers the status and the JSON.
async fn api_get(app: &TestApp, key: &str, path: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .get(app.url(path))
        .bearer_auth(key)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Publishes one event with the tenant key; answers its id.
async fn publish(app: &TestApp, key: &str, body: Value) -> String {
    let response = reqwest::Client::new()
        .post(app.url("/api/v1/events"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    accepted["id"].as_str().unwrap().to_owned()
}

#[actix_web::test]
async fn after_a_downgrade_neither_key_reads_events() {
    let app = TestApp::spawn().await;
    let (tenant, _, key) = scale_tenant_with_key(&app).await;
    let (_, created) = api_create(
        &app,
        &key,
        json!({"url": "https://crm.example/x", "events": ["booking.created"]}),
    )
    .await;
    let webhook_key = created["api_key"].as_str().unwrap().to_owned();
    let id = publish(
        &app,
        &key,
        json!({"type": "booking.created", "data": {"booking": {"id": 1}}}),
    )
    .await;
    for k in [&key, &webhook_key] {
        assert_eq!(api_get(&app, k, &format!("/api/v1/events/{id}")).await.0, 200);
    }

    let tenant_id = tenant.id;
    app.with_conn(move |conn| {
        hookboard::models::tenant::Tenant::set_plan(conn, tenant_id, Plan::Starter).unwrap()
    })
    .await;
    for k in [&key, &webhook_key] {
        for path in [format!("/api/v1/events/{id}"), "/api/v1/events".to_owned()] {
            let (status, error) = api_get(&app, k, &path).await;
            assert_eq!(status, 403, "{path}: {error}");
            assert_eq!(error["error"]["code"], "plan", "{path}");
            assert_eq!(
                error["error"]["message"],
                hookboard::services::SCALE_PLAN_NOTICE,
                "{path}"
            );
        }
    }
}

#[actix_web::test]
async fn a_webhook_key_reads_only_the_events_of_its_own_connection() {
    use hookboard::models::connection::{Connection, NewConnection};
    let app = TestApp::spawn().await;
    let (tenant, _, key) = scale_tenant_with_key(&app).await;
    let tenant_id = tenant.id;
    app.with_conn(move |conn| {
        for external_id in ["CT-A1", "CT-A2"] {
            Connection::create(
                conn,
                NewConnection {
                    tenant_id,
                    name: external_id,
                    external_id,
                },
            )
            .unwrap();
        }
    })
    .await;
    let (status, created) = api_create(
        &app,
        &key,
        json!({"url": "https://crm.example/x", "events": ["booking.created"], "connection": "CT-A1"}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let webhook_key = created["api_key"].as_str().unwrap().to_owned();
    let event = |connection: Option<&str>| json!({"type": "booking.created", "data": {"booking": {"id": 1}}, "connection": connection});
    let mine = publish(&app, &key, event(Some("CT-A1"))).await;
    let theirs = publish(&app, &key, event(Some("CT-A2"))).await;
    let nobodys = publish(&app, &key, event(None)).await;

    assert_eq!(
        api_get(&app, &webhook_key, &format!("/api/v1/events/{mine}"))
            .await
            .0,
        200
    );
    for other in [&theirs, &nobodys] {
        let (status, _) = api_get(&app, &webhook_key, &format!("/api/v1/events/{other}")).await;
        assert_eq!(status, 404, "{other} is another connection's");
    }
    let (status, page) = api_get(&app, &webhook_key, "/api/v1/events").await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.as_str()]);
    let (_, all) = api_get(&app, &key, "/api/v1/events").await;
    assert_eq!(
        all["events"].as_array().unwrap().len(),
        3,
        "the tenant key reads them all"
    );
}
