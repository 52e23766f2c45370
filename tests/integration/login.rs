use hookboard::models::tenant::Plan;
use hookboard::models::user::Role;

use crate::helpers::{Browser, PASSWORD, TestApp};

#[actix_web::test]
async fn the_login_page_has_the_form_the_spec_names() {
    let app = TestApp::spawn().await;
    let html = reqwest::get(app.url("/login"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&html);
    let select = |css: &str| doc.select(&scraper::Selector::parse(css).unwrap()).count();
    assert_eq!(
        select(r#"form[method="post"][action="/login"] input[name="email"]"#),
        1
    );
    assert_eq!(
        select(r#"form[method="post"][action="/login"] input[name="password"][type="password"]"#),
        1
    );
    assert_eq!(select(r#"input[name="csrf_token"]"#), 1);
    let button = doc
        .select(&scraper::Selector::parse("form button").unwrap())
        .next()
        .expect("a button")
        .text()
        .collect::<String>();
    assert_eq!(button.trim(), "Log in");
}

#[actix_web::test]
async fn pages_redirect_to_the_login_when_nobody_is_logged_in() {
    let app = TestApp::spawn().await;
    let response = app.client().get(app.url("/")).send().await.unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
}

#[actix_web::test]
async fn an_owner_logs_in_and_sees_the_dashboard_of_their_tenant() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = app.logged_in("ANA@alpine.example").await;
    let html = browser.get("/").await.text().await.unwrap();
    assert!(html.contains("Alpine Tours"), "{html}");
    assert!(html.contains("ana@alpine.example"));
}

#[actix_web::test]
async fn wrong_password_and_unknown_email_get_the_same_message() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = Browser::new(&app);
    let wrong = browser.login("ana@alpine.example", "not the password").await;
    assert_eq!(wrong.status(), 422);
    let wrong = wrong.text().await.unwrap();
    let unknown = browser
        .login("nobody@alpine.example", PASSWORD)
        .await
        .text()
        .await
        .unwrap();
    let message = hookboard::web::login::LOGIN_REFUSED
        .split_whitespace()
        .take(6)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(wrong.contains(&message) && unknown.contains(&message));
    assert!(
        wrong.contains(r#"value="ana@alpine.example""#),
        "the typed email is kept"
    );
}

#[actix_web::test]
async fn a_login_without_the_csrf_token_is_refused() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = Browser::new(&app);
    browser.get("/login").await;
    let response = browser
        .post_form(
            "/login",
            &[("email", "ana@alpine.example"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 403);
}

#[actix_web::test]
async fn after_logout_the_old_cookie_opens_nothing() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = app.logged_in("ana@alpine.example").await;
    let cookie = browser.cookie_header();
    let token = browser.csrf_token("/").await;
    let response = browser.post_form("/logout", &[("csrf_token", &token)]).await;
    assert_eq!(response.status(), 303);
    let replay = app
        .client()
        .get(app.url("/"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303, "the old session cookie is dead");
}

#[actix_web::test]
async fn the_session_id_changes_at_login() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = Browser::new(&app);
    browser.get("/login").await;
    let before = browser.cookie_header();
    browser.login("ana@alpine.example", PASSWORD).await;
    let after = browser.cookie_header();
    assert_ne!(before, after);
    // The pre-login cookie does not carry the login.
    let replay = app
        .client()
        .get(app.url("/"))
        .header("cookie", before)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303);
}

#[actix_web::test]
async fn a_session_ends_after_the_idle_timeout_and_after_twelve_hours_in_any_case() {
    use std::time::Duration;
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;

    let browser = app.logged_in("ana@alpine.example").await;
    app.clock.advance(Duration::from_secs(29 * 60));
    assert_eq!(browser.get("/").await.status(), 200, "29 idle minutes are fine");
    app.clock.advance(Duration::from_secs(31 * 60));
    assert_eq!(
        browser.get("/").await.status(),
        303,
        "31 idle minutes end the session"
    );

    let browser = app.logged_in("ana@alpine.example").await;
    for _ in 0..=(12 * 60 / 20) {
        app.clock.advance(Duration::from_secs(20 * 60));
        if browser.get("/").await.status() != 200 {
            break;
        }
    }
    assert_eq!(
        browser.get("/").await.status(),
        303,
        "an active session still ends after 12 hours"
    );
}

#[actix_web::test]
async fn disabling_a_user_ends_their_sessions_at_once() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    let ana = app
        .create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    app.create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let ana_browser = app.logged_in("ana@alpine.example").await;
    assert_eq!(ana_browser.get("/").await.status(), 200);

    let operator = app.logged_in("ops@platform.example").await;
    let token = operator.csrf_token("/admin/users").await;
    let response = operator
        .post_form(
            &format!("/admin/users/{}/disabled", ana.id),
            &[("csrf_token", &token), ("disabled", "true")],
        )
        .await;
    assert_eq!(response.status(), 303);
    assert_eq!(
        ana_browser.get("/").await.status(),
        303,
        "the disabled user's session is gone"
    );
    assert_eq!(
        Browser::new(&app)
            .login("ana@alpine.example", PASSWORD)
            .await
            .status(),
        422
    );
}

#[actix_web::test]
async fn five_failures_pause_the_account_even_for_the_right_password() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = Browser::new(&app);
    for _ in 0..5 {
        assert_eq!(
            browser
                .login("ana@alpine.example", "wrong password!")
                .await
                .status(),
            422
        );
    }
    assert_eq!(
        browser.login("ana@alpine.example", PASSWORD).await.status(),
        422,
        "locked"
    );
    app.clock.advance(std::time::Duration::from_secs(61));
    assert_eq!(
        browser.login("ana@alpine.example", PASSWORD).await.status(),
        303,
        "the lock ran out"
    );
}

#[actix_web::test]
async fn changing_the_password_ends_other_sessions_but_keeps_this_one() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let laptop = app.logged_in("ana@alpine.example").await;
    let phone = app.logged_in("ana@alpine.example").await;
    let token = laptop.csrf_token("/profile").await;
    let response = laptop
        .post_form(
            "/profile/password",
            &[
                ("csrf_token", &token),
                ("current_password", PASSWORD),
                ("new_password", "an entirely new passphrase"),
                ("confirm_password", "an entirely new passphrase"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("Your password was changed")
    );
    assert_eq!(
        laptop.get("/profile").await.status(),
        200,
        "this session continues"
    );
    assert_eq!(
        phone.get("/profile").await.status(),
        303,
        "the other session ended"
    );
    let fresh = Browser::new(&app);
    assert_eq!(
        fresh
            .login("ana@alpine.example", "an entirely new passphrase")
            .await
            .status(),
        303
    );
}
