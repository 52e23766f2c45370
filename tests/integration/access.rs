//! Access rules, walked over the route table itself (`hookboard::routes::ROUTES`), so a new
//! route is covered the moment it is registered.

use hookboard::models::tenant::Plan;
use hookboard::models::user::Role;
use hookboard::routes::{Access, ROUTES};

use crate::helpers::{Browser, TestApp};

/// Fills `{id}`-style segments with `id`.
pub(crate) fn concrete(path: &str, id: i64) -> String {
    path.split('/')
        .map(|seg| {
            if seg == "{path:.*}" {
                "css/hookboard.css".to_owned()
            } else if seg.starts_with('{') {
                id.to_string()
            } else {
                seg.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

pub(crate) async fn send(browser: &Browser, method: &str, path: &str, token: &str) -> u16 {
    let url = format!("{}{path}", browser.base);
    let request = match method {
        "get" => browser.client.get(url),
        "post" => browser.client.post(url).form(&[("csrf_token", token)]),
        "delete" => browser.client.delete(url).header("X-CSRF-Token", token),
        "patch" => browser.client.patch(url).header("X-CSRF-Token", token),
        "put" => browser.client.put(url).header("X-CSRF-Token", token),
        other => panic!("unknown method {other}"),
    };
    request.send().await.unwrap().status().as_u16()
}

#[actix_web::test]
async fn every_route_refuses_roles_that_may_not_use_it_and_never_fails() {
    let app = TestApp::spawn().await;
    let ours = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let theirs = app.create_tenant("Other Travel", Plan::Scale).await;
    app.create_user(Some(&ours), "owner@alpine.example", Role::Owner)
        .await;
    app.create_user(Some(&ours), "viewer@alpine.example", Role::Viewer)
        .await;
    let their_owner = app
        .create_user(Some(&theirs), "owner@other.example", Role::Owner)
        .await;
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let contract = app
        .with_conn({
            let tenant_id = ours.id;
            move |conn| {
                hookboard::models::connection::Connection::create(
                    conn,
                    hookboard::models::connection::NewConnection {
                        tenant_id,
                        name: "Sunny Resellers",
                        external_id: "CT-SUN",
                    },
                )
                .unwrap()
            }
        })
        .await;
    app.create_partner(&ours, "partner@sunny.example", contract.id)
        .await;

    let anonymous = Browser::new(&app);
    let owner = app.logged_in("owner@alpine.example").await;
    let viewer = app.logged_in("viewer@alpine.example").await;
    let operator = app.logged_in("ops@platform.example").await;
    let partner = app.logged_in("partner@sunny.example").await;
    let anon_token = anonymous.csrf_token("/login").await;
    let owner_token = owner.csrf_token("/").await;
    let viewer_token = viewer.csrf_token("/").await;
    let operator_token = operator.csrf_token("/").await;
    let partner_token = partner.csrf_token("/").await;

    // Ids that belong to the other tenant (and, for admin routes, a real row).
    let foreign_id = their_owner.id.max(theirs.id);
    for route in ROUTES {
        if route.path == "/logout" {
            continue; // Would end the session the rest of the walk needs; covered in login tests.
        }
        let path = concrete(route.path, foreign_id);
        let who: [(&str, &Browser, &str, bool); 5] = [
            (
                "anonymous",
                &anonymous,
                &anon_token,
                route.access == Access::Public,
            ),
            (
                "viewer",
                &viewer,
                &viewer_token,
                matches!(
                    route.access,
                    Access::Public | Access::User | Access::Tenant | Access::Webhooks
                ),
            ),
            (
                "owner",
                &owner,
                &owner_token,
                matches!(
                    route.access,
                    Access::Public
                        | Access::User
                        | Access::Tenant
                        | Access::Webhooks
                        | Access::Editor
                        | Access::WebhookEditor
                ),
            ),
            (
                "partner",
                &partner,
                &partner_token,
                matches!(
                    route.access,
                    Access::Public | Access::User | Access::Webhooks | Access::WebhookEditor
                ),
            ),
            (
                "operator",
                &operator,
                &operator_token,
                matches!(route.access, Access::Public | Access::User | Access::Operator),
            ),
        ];
        for (name, browser, token, allowed) in who {
            let status = send(browser, route.method, &path, token).await;
            assert!(status < 500, "{} {path} as {name}: {status}", route.method);
            if !allowed {
                let refused = matches!(status, 303 | 401 | 403 | 404);
                assert!(
                    refused,
                    "{} {path} as {name} must be refused, got {status}",
                    route.method
                );
            }
        }
    }
}

#[actix_web::test]
async fn every_unsafe_route_needs_the_sessions_own_csrf_token() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "owner@alpine.example", Role::Owner)
        .await;
    app.create_user(Some(&tenant), "admin@alpine.example", Role::Admin)
        .await;
    let owner = app.logged_in("owner@alpine.example").await;
    let other = app.logged_in("admin@alpine.example").await;
    let others_token = other.csrf_token("/").await;
    // The JSON API takes bearer keys, not sessions, and so needs no CSRF token.
    for route in ROUTES
        .iter()
        .filter(|r| r.method != "get" && r.access != Access::Api)
    {
        let path = concrete(route.path, 1);
        let without = send(&owner, route.method, &path, "").await;
        assert_eq!(without, 403, "{} {path} without a token", route.method);
        let foreign = send(&owner, route.method, &path, &others_token).await;
        assert_eq!(
            foreign, 403,
            "{} {path} with another session's token",
            route.method
        );
        let url = format!("{}{path}", owner.base);
        let own_token = owner.csrf_token("/").await;
        let cross_site = owner
            .client
            .post(url)
            .header("Sec-Fetch-Site", "cross-site")
            .header("Origin", "https://evil.example")
            .form(&[("csrf_token", own_token.as_str())])
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(cross_site, 403, "{} {path} cross-site", route.method);
    }
}

#[actix_web::test]
async fn the_session_cookie_has_the_safe_attributes() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let set_cookies = |response: &reqwest::Response| -> Vec<String> {
        response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    };

    // Before login: only the pre-login CSRF cookie, no session.
    let client = app.client();
    let page = client.get(app.url("/login")).send().await.unwrap();
    let before = set_cookies(&page);
    let prelogin = before
        .iter()
        .find(|c| c.starts_with("hookboard_csrf="))
        .unwrap_or_else(|| panic!("the pre-login cookie: {before:?}"));
    assert!(
        prelogin.contains("HttpOnly") && prelogin.contains("SameSite=Strict") && prelogin.contains("Path=/"),
        "{prelogin}"
    );
    assert!(
        !before.iter().any(|c| c.starts_with("hookboard_session=")),
        "{before:?}"
    );

    // At login: the session cookie.
    let token = crate::helpers::meta_csrf(&page.text().await.unwrap());
    let login = client
        .post(app.url("/login"))
        .form(&[
            ("email", "ana@alpine.example"),
            ("password", crate::helpers::PASSWORD),
            ("csrf_token", token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 303);
    let after = set_cookies(&login);
    let cookie = after
        .iter()
        .find(|c| c.starts_with("hookboard_session="))
        .unwrap_or_else(|| panic!("a session cookie: {after:?}"));
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert_eq!(
        hookboard::startup::session_cookie_name(true),
        "__Host-hookboard_session"
    );
    assert_eq!(
        hookboard::web::csrf::prelogin_cookie_name(true),
        "__Host-hookboard_csrf"
    );
}

/// PostgreSQL cannot store a NUL character: an address with `%00` is refused up front, and
/// a form with NULs in every field gets a clear refusal, never a server error.
#[actix_web::test]
async fn nul_characters_in_addresses_and_forms_never_fail_a_route() {
    let app = TestApp::spawn().await;
    let ours = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let tenant_id = ours.id;
    app.with_conn(move |conn| {
        hookboard::models::tenant::Tenant::set_webhooks_enabled(conn, tenant_id, true).unwrap()
    })
    .await;
    let user = app
        .create_user(Some(&ours), "owner@alpine.example", Role::Owner)
        .await;
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let secrets = app.secrets();
    let webhook = app
        .with_conn(move |conn| {
            let input = hookboard::validation::webhook::Input {
                url: "https://crm.alpine.example/hook".into(),
                events: vec!["booking.created".into()],
                active: true,
                ..Default::default()
            };
            hookboard::models::webhook::Webhook::create(
                conn,
                tenant_id,
                &crate::helpers::valid(input.clone()),
                &secrets,
            )
            .unwrap()
            .0
        })
        .await;
    let owner = app.logged_in("owner@alpine.example").await;
    let operator = app.logged_in("ops@platform.example").await;
    let owner_token = owner.csrf_token("/").await;
    let operator_token = operator.csrf_token("/").await;
    let nul = "a\0b";
    let fields = [
        "name",
        "external_id",
        "url",
        "description",
        "events",
        "connection",
        "email",
        "password",
        "current_password",
        "new_password",
        "confirm_password",
        "plan",
        "role",
        "tenant",
        "timezone",
        "header_name",
        "header_value",
        "kind",
        "type",
        "parked",
        "next",
        "capabilities",
        "enabled",
    ];
    for route in ROUTES {
        if route.path == "/logout" || route.access == Access::Api {
            continue;
        }
        let (browser, token) = match route.access {
            Access::Operator => (&operator, &operator_token),
            _ => (&owner, &owner_token),
        };
        let id = if route.path.starts_with("/admin/users") {
            user.id
        } else if route.path.starts_with("/admin") {
            tenant_id
        } else {
            webhook.id
        };
        let path = concrete(route.path, id);
        let url = format!("{}{path}", browser.base);
        let status = match route.method {
            "get" => {
                let status = browser
                    .client
                    .get(format!("{url}?url=%00&event=x%00"))
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16();
                assert_eq!(status, 400, "GET {path}?url=%00");
                status
            }
            "post" => {
                let mut form: Vec<(&str, &str)> = fields.iter().map(|f| (*f, nul)).collect();
                form.push(("csrf_token", token));
                browser
                    .client
                    .post(&url)
                    .form(&form)
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16()
            }
            _ => continue,
        };
        assert!(
            status < 500,
            "{} {path} with NUL characters: {status}",
            route.method
        );
    }
    let api = reqwest::Client::new()
        .get(app.url("/api/v1/webhooks?url=%00"))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 400);
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "bad_request");
}

/// The JSON API walked with every kind of key: a webhook's own key reads only events (every
/// other endpoint answers 403), and after a downgrade off the Scale plan both a tenant key
/// and a webhook key get the plan's 403 everywhere but the catalog, which describes the
/// product rather than the tenant's data.
#[actix_web::test]
async fn every_api_route_answers_webhook_keys_and_downgraded_tenants_as_specified() {
    use hookboard::models::tenant::Tenant;

    let app = TestApp::spawn().await;
    let tenant = app.scale_tenant("Alpine Tours").await;
    let (webhook, webhook_key) = app
        .create_webhook(
            &tenant,
            "https://crm.alpine.example/hooks",
            &["booking.created"],
            |_| {},
        )
        .await;
    let tenant_key = app.tenant_key(&tenant).await;
    let call = |method: &str, path: &str, key: &str| {
        let request = match method {
            "get" => app.client().get(app.url(path)),
            "post" => app.client().post(app.url(path)).json(&serde_json::json!({})),
            "patch" => app.client().patch(app.url(path)).json(&serde_json::json!({})),
            "delete" => app.client().delete(app.url(path)),
            other => panic!("unknown method {other}"),
        };
        let request = request.bearer_auth(key.to_owned());
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (
                status,
                body["error"]["code"].as_str().unwrap_or_default().to_owned(),
            )
        }
    };
    let api_routes: Vec<_> = ROUTES.iter().filter(|r| r.access == Access::Api).collect();
    let reads_events = |method: &str, path: &str| method == "get" && path.starts_with("/api/v1/events");

    for route in &api_routes {
        let path = concrete(route.path, webhook.id);
        let (status, code) = call(route.method, &path, &webhook_key).await;
        if reads_events(route.method, route.path) {
            assert!(
                matches!(status, 200 | 404),
                "{} {path} with the webhook's key: {status}",
                route.method
            );
        } else if route.path != "/api/v1/event-types" {
            assert_eq!(
                (status, code.as_str()),
                (403, "forbidden"),
                "{} {path} with the webhook's key",
                route.method
            );
        }
    }

    let tenant_id = tenant.id;
    app.with_conn(move |conn| Tenant::set_plan(conn, tenant_id, Plan::Starter).unwrap())
        .await;
    for route in &api_routes {
        if route.path == "/api/v1/event-types" {
            continue;
        }
        let path = concrete(route.path, webhook.id);
        for (name, key) in [("tenant key", &tenant_key), ("webhook key", &webhook_key)] {
            let (status, code) = call(route.method, &path, key).await;
            let refused =
                (status, code.as_str()) == (403, "plan") || (name == "webhook key" && status == 403);
            assert!(
                refused,
                "{} {path} with the {name} after a downgrade: {status} {code}",
                route.method
            );
        }
    }
}
