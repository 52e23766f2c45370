use crate::helpers::TestApp;

#[actix_web::test]
async fn healthz_answers_ok_when_the_database_answers() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(app.url("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok\n");
}

#[actix_web::test]
async fn metrics_count_requests_by_route_pattern() {
    let app = TestApp::spawn().await;
    for _ in 0..3 {
        reqwest::get(app.url("/login")).await.unwrap();
    }
    reqwest::get(app.url("/no/such/page")).await.unwrap();
    let body = reqwest::get(app.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("# TYPE hookboard_http_requests_total counter"),
        "{body}"
    );
    assert!(
        body.contains(r#"hookboard_http_requests_total{method="GET",route="/login",status="2xx"} 3"#),
        "{body}"
    );
    assert!(body.contains(r#"route="unmatched",status="4xx"} 1"#), "{body}");
}

#[actix_web::test]
async fn every_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in ["/login", "/healthz", "/no/such/page", "/static/css/hookboard.css"] {
        let response = reqwest::get(app.url(path)).await.unwrap();
        let headers = response.headers();
        let csp = headers.get("content-security-policy").unwrap().to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
            "{path}: {csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"), "{path}");
        assert_eq!(
            headers.get("x-content-type-options").unwrap(),
            "nosniff",
            "{path}"
        );
        assert_eq!(headers.get("referrer-policy").unwrap(), "same-origin", "{path}");
    }
}

#[actix_web::test]
async fn unknown_pages_get_the_404_page_in_the_layout() {
    let app = TestApp::spawn().await;
    let response = reqwest::get(app.url("/definitely-not-here")).await.unwrap();
    assert_eq!(response.status(), 404);
    let html = response.text().await.unwrap();
    assert!(
        html.contains("/static/css/hookboard.css"),
        "rendered in the layout"
    );
    assert!(html.contains("does not exist"));
}

#[actix_web::test]
async fn the_vendored_htmx_is_served_with_its_subresource_integrity() {
    use base64::Engine;
    use sha2::{Digest, Sha384};
    let app = TestApp::spawn().await;
    let html = reqwest::get(app.url("/login"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let doc = scraper::Html::parse_document(&html);
    let script = doc
        .select(&scraper::Selector::parse("script[src]").unwrap())
        .next()
        .expect("a script tag")
        .value()
        .clone();
    let src = script.attr("src").unwrap();
    assert!(src.starts_with("/static/vendor/htmx-2.0."), "{src}");
    let body = reqwest::get(app.url(src)).await.unwrap().bytes().await.unwrap();
    let digest = base64::engine::general_purpose::STANDARD.encode(Sha384::digest(&body));
    assert_eq!(script.attr("integrity").unwrap(), format!("sha384-{digest}"));
}

#[actix_web::test]
async fn every_page_has_an_icon_and_favicon_ico_is_served() {
    let app = TestApp::spawn().await;
    let login = reqwest::get(app.url("/login"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(login.contains(r#"<link rel="icon" href="/static/img/favicon.svg""#));
    for path in ["/favicon.ico", "/static/img/favicon.svg"] {
        let icon = reqwest::get(app.url(path)).await.unwrap();
        assert_eq!(icon.status(), 200, "{path}");
        assert_eq!(icon.headers()["content-type"], "image/svg+xml", "{path}");
        assert!(icon.text().await.unwrap().starts_with("<svg"), "{path}");
    }
}

/// Static files read no session: with every pooled connection taken, a signed-in browser
/// (its session cookie sent along) still gets its stylesheet, where reading the session
/// would wait for a connection and fail.
#[actix_web::test]
async fn a_signed_in_browser_gets_static_files_without_a_database_connection() {
    use hookboard::models::tenant::Plan;
    use hookboard::models::user::Role;
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let browser = app.logged_in("ana@alpine.example").await;
    let (taken, all_taken) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let pool = app.pool.clone();
    let holder = std::thread::spawn(move || {
        let held: Vec<_> = (0..pool.max_size()).map(|_| pool.get().unwrap()).collect();
        taken.send(()).unwrap();
        released.recv().ok();
        drop(held);
    });
    all_taken.recv().unwrap();
    let response = browser.get("/static/css/hookboard.css").await;
    release.send(()).unwrap();
    holder.join().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains('{'), "the stylesheet");
}
