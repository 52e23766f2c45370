//! Findings of the penetration and load tests, each kept closed by a test through the
//! real app.

use hookboard::models::tenant::Plan;
use hookboard::models::user::Role;

use crate::helpers::{Browser, PASSWORD, TestApp};

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
