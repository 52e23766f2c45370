//! Sessions cost a stored row only once someone logs in, and expired ones are purged.

use diesel::prelude::*;
use hookboard::clock::Clock;
use hookboard::models::user::Role;

use crate::helpers::{PASSWORD, TestApp, meta_csrf};

async fn stored_sessions(app: &TestApp) -> i64 {
    app.with_conn(|conn| {
        use hookboard::schema::sessions;
        sessions::table.count().get_result(conn).unwrap()
    })
    .await
}

/// An app with a tenant whose owner is ana@alpine.example (the test password).
async fn app_with_ana() -> (TestApp, hookboard::models::tenant::Tenant) {
    let app = TestApp::spawn().await;
    let tenant = app.scale_tenant("Alpine Tours").await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    (app, tenant)
}

#[actix_web::test]
async fn anonymous_visitors_cost_no_stored_session_and_can_still_log_in() {
    let (app, _) = app_with_ana().await;

    for _ in 0..50 {
        let page = app.client().get(app.url("/login")).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(
            page.headers().get("set-cookie").is_some(),
            "the pre-login token's cookie"
        );
    }
    assert_eq!(
        stored_sessions(&app).await,
        0,
        "50 visits of the login page stored nothing"
    );

    // The login form's token works with its own cookie, and with no other.
    let visitor = app.client();
    let html = visitor
        .get(app.url("/login"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let token = meta_csrf(&html);
    let stranger = app.client();
    stranger.get(app.url("/login")).send().await.unwrap();
    let form = [
        ("email", "ana@alpine.example"),
        ("password", PASSWORD),
        ("csrf_token", token.as_str()),
    ];
    let forged = stranger.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(forged.status(), 403, "another visitor's token is refused");
    let no_cookie = reqwest::Client::new()
        .post(app.url("/login"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(no_cookie.status(), 403, "a token without its cookie is refused");
    assert_eq!(stored_sessions(&app).await, 0);

    let logged_in = visitor.post(app.url("/login")).form(&form).send().await.unwrap();
    assert_eq!(logged_in.status(), 303);
    assert_eq!(stored_sessions(&app).await, 1, "the login stores the one session");
    let dashboard = visitor.get(app.url("/")).send().await.unwrap();
    assert_eq!(dashboard.status(), 200);
}

#[actix_web::test]
async fn expired_sessions_are_purged_by_the_workers_housekeeping() {
    let (app, tenant) = app_with_ana().await;
    app.create_user(Some(&tenant), "ben@alpine.example", Role::Viewer)
        .await;
    app.logged_in("ana@alpine.example").await;
    app.logged_in("ben@alpine.example").await;
    assert_eq!(stored_sessions(&app).await, 2);
    app.with_conn(|conn| {
        use hookboard::schema::{sessions, users};
        let ana: i64 = users::table
            .filter(users::email.eq("ana@alpine.example"))
            .select(users::id)
            .first(conn)
            .unwrap();
        diesel::update(sessions::table.filter(sessions::user_id.eq(ana)))
            .set(sessions::expires_at.eq(chrono::Utc::now() - chrono::Duration::minutes(1)))
            .execute(conn)
            .unwrap();
    })
    .await;

    let engine = app.engine();
    let now = chrono::Utc::now().max(app.clock.now());
    actix_web::rt::task::spawn_blocking(move || engine.clean_up(now).unwrap())
        .await
        .unwrap();
    assert_eq!(
        stored_sessions(&app).await,
        1,
        "the expired one is gone, the live one stays"
    );
}
