//! Operators never choose a tenant user's password (SPEC 2): creating a user or resetting
//! a password in the console gives a one-time set-password link, and only the user who
//! opens it chooses the password.

use diesel::prelude::*;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::user::Role;

use crate::helpers::{Browser, PASSWORD, TestApp, meta_csrf};

const NEW_PASSWORD: &str = "a password only ana knows";

/// The operator's console, logged in.
async fn operator(app: &TestApp) -> Browser {
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    app.logged_in("ops@platform.example").await
}

/// Creates a user through the console; answers the status and the page.
pub async fn create_in_console(
    operator: &Browser,
    email: &str,
    role: &str,
    tenant: &Tenant,
) -> (u16, String) {
    let response = operator
        .submit(
            "/admin/users",
            &[
                ("email", email),
                ("role", role),
                ("tenant", &tenant.id.to_string()),
            ],
        )
        .await;
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The set-password link a console page shows, as a path of the app.
pub fn link_path(html: &str) -> String {
    let doc = scraper::Html::parse_document(html);
    let selector = scraper::Selector::parse("#password-link").unwrap();
    let url = doc
        .select(&selector)
        .next()
        .unwrap_or_else(|| panic!("a set-password link on the page: {html}"))
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    let path = url.find("/set-password/").map(|at| url[at..].to_owned());
    assert!(url.starts_with("http://127.0.0.1:"), "an absolute link: {url}");
    path.unwrap()
}

/// Opens a link in a fresh browser and sets `password` through it.
pub async fn use_link(app: &TestApp, path: &str, password: &str) -> reqwest::Response {
    let browser = Browser::new(app);
    let page = browser.get(path).await;
    if page.status() != 200 {
        return page;
    }
    let token = meta_csrf(&page.text().await.unwrap());
    browser
        .post_form(
            path,
            &[
                ("csrf_token", token.as_str()),
                ("password", password),
                ("password_confirm", password),
            ],
        )
        .await
}

#[actix_web::test]
async fn an_owner_created_by_an_operator_chooses_their_password_through_a_one_time_link() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let operator = operator(&app).await;

    let form = operator.get("/admin/users").await.text().await.unwrap();
    assert!(!form.contains(r#"name="password""#), "no password field: {form}");
    let (status, page) = create_in_console(&operator, "ana@alpine.example", "owner", &tenant).await;
    assert_eq!(status, 200, "{page}");
    let path = link_path(&page);
    assert!(page.contains("Shown once"), "{page}");
    let nobody = Browser::new(&app).login("ana@alpine.example", PASSWORD).await;
    assert_eq!(nobody.status(), 422, "the account has no known password yet");

    let form = Browser::new(&app).get(&path).await;
    assert_eq!(form.status(), 200);
    let form = form.text().await.unwrap();
    assert!(
        form.contains("Set password") && form.contains(r#"name="password_confirm""#),
        "{form}"
    );
    let set = use_link(&app, &path, NEW_PASSWORD).await;
    assert_eq!(set.status(), 303);
    assert_eq!(set.headers()["location"], "/login?password_set=1");
    let login = Browser::new(&app).login("ana@alpine.example", NEW_PASSWORD).await;
    assert_eq!(login.status(), 303, "the chosen password logs in");

    let again = use_link(&app, &path, "another password of hers").await;
    assert_eq!(again.status(), 404, "a link works once");
    assert!(again.text().await.unwrap().contains("has been used"));
    let unchanged = Browser::new(&app).login("ana@alpine.example", NEW_PASSWORD).await;
    assert_eq!(unchanged.status(), 303);
}

/// "Send a set-password link" in the console; answers the link's path.
async fn send_link(operator: &Browser, user_id: i64) -> String {
    let response = operator
        .submit(&format!("/admin/users/{user_id}/password"), &[])
        .await;
    assert_eq!(response.status(), 200);
    let page = response.text().await.unwrap();
    assert!(page.contains("earlier links no longer work"), "{page}");
    link_path(&page)
}

#[actix_web::test]
async fn an_expired_link_answers_404() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let operator = operator(&app).await;
    let (_, page) = create_in_console(&operator, "ana@alpine.example", "admin", &tenant).await;
    let path = link_path(&page);

    app.with_conn(|conn| {
        diesel::sql_query("UPDATE password_links SET expires_at = now() - interval '1 minute'")
            .execute(conn)
            .unwrap()
    })
    .await;

    assert_eq!(Browser::new(&app).get(&path).await.status(), 404);
    assert_eq!(use_link(&app, &path, NEW_PASSWORD).await.status(), 404);
}

#[actix_web::test]
async fn a_new_link_replaces_the_earlier_one_and_ends_the_users_sessions_when_used() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let ana = app
        .create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let signed_in = app.logged_in("ana@alpine.example").await;
    let operator = operator(&app).await;

    let first = send_link(&operator, ana.id).await;
    let second = send_link(&operator, ana.id).await;
    assert_ne!(first, second);
    assert_eq!(
        Browser::new(&app).get(&first).await.status(),
        404,
        "the first link stopped working"
    );
    let still = Browser::new(&app).login("ana@alpine.example", PASSWORD).await;
    assert_eq!(still.status(), 303, "a link changes nothing until it is used");

    assert_eq!(use_link(&app, &second, NEW_PASSWORD).await.status(), 303);
    assert_eq!(
        signed_in.get("/webhooks").await.status(),
        303,
        "her sessions ended"
    );
    let old = Browser::new(&app).login("ana@alpine.example", PASSWORD).await;
    assert_eq!(old.status(), 422);
}

#[actix_web::test]
async fn a_password_that_breaks_the_rules_or_differs_is_refused_and_the_link_still_works() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let operator = operator(&app).await;
    let (_, page) = create_in_console(&operator, "ana@alpine.example", "viewer", &tenant).await;
    let path = link_path(&page);

    let short = use_link(&app, &path, "short").await;
    assert_eq!(short.status(), 422);
    assert!(short.text().await.unwrap().contains("at least 12"));
    let browser = Browser::new(&app);
    let token = meta_csrf(&browser.get(&path).await.text().await.unwrap());
    let differs = browser
        .post_form(
            &path,
            &[
                ("csrf_token", token.as_str()),
                ("password", NEW_PASSWORD),
                ("password_confirm", "something else entirely"),
            ],
        )
        .await;
    assert_eq!(differs.status(), 422);
    assert_eq!(use_link(&app, &path, NEW_PASSWORD).await.status(), 303);
}

#[actix_web::test]
async fn the_audit_log_records_the_link_and_its_use_but_never_the_token() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let operator = operator(&app).await;
    let (_, page) = create_in_console(&operator, "ana@alpine.example", "owner", &tenant).await;
    let path = link_path(&page);
    let token = path.trim_start_matches("/set-password/").to_owned();
    assert_eq!(use_link(&app, &path, NEW_PASSWORD).await.status(), 303);

    let tenant_id = tenant.id;
    let entries: Vec<(String, String, Option<String>, serde_json::Value)> = app
        .with_conn(move |conn| {
            use hookboard::schema::audit_log;
            audit_log::table
                .filter(audit_log::tenant_id.eq(tenant_id))
                .order(audit_log::id)
                .select((
                    audit_log::action,
                    audit_log::actor,
                    audit_log::target_id,
                    audit_log::details,
                ))
                .load(conn)
                .unwrap()
        })
        .await;
    let actions: Vec<(&str, &str)> = entries
        .iter()
        .map(|(action, actor, _, _)| (action.as_str(), actor.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("user.created", "ops@platform.example"),
            ("user.password_link_created", "ops@platform.example"),
            ("user.password_set_by_link", "ana@alpine.example"),
        ]
    );
    for (action, _, target, details) in &entries {
        assert_eq!(target.as_deref(), Some("ana@alpine.example"), "{action}");
        assert!(!details.to_string().contains(&token), "{action}: {details}");
    }
    let stored: Vec<String> = app
        .with_conn(|conn| {
            use hookboard::schema::password_links;
            password_links::table
                .select(password_links::token_hash)
                .load(conn)
                .unwrap()
        })
        .await;
    assert_eq!(
        stored,
        [hookboard::models::token_hash(&token)],
        "only the hash is kept"
    );
}
