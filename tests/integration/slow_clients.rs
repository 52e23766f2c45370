//! A client that trickles a request body cannot hold its connection: the body is read
//! under `HOOKBOARD_BODY_TIMEOUT`, after which the request answers 408 and the connection
//! closes.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::TestApp;

/// Sends headers promising `Content-Length: 1000` and a few bytes, then nothing; answers
/// what the server sent before closing the connection.
async fn trickle(app: &TestApp, head: &str) -> String {
    let address = app.address.trim_start_matches("http://").to_owned();
    let mut stream = TcpStream::connect(&address).await.unwrap();
    let request = format!("{head}Host: {address}\r\nContent-Length: 1000\r\n\r\nemail=a");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    // Generous: the point is that the server ends it, not how fast.
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
        .await
        .expect("the server ends a request whose body stalls")
        .ok();
    String::from_utf8_lossy(&answer).into_owned()
}

#[actix_web::test]
async fn a_stalled_form_body_answers_408_and_the_connection_closes() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_BODY_TIMEOUT", "1s")]).await;

    let answer = trickle(
        &app,
        "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\n",
    )
    .await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
}

#[actix_web::test]
async fn a_stalled_api_body_answers_408_in_json() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_BODY_TIMEOUT", "1s")]).await;
    let tenant = app.scale_tenant("Alpine Tours").await;
    let key = app
        .with_conn(move |conn| {
            hookboard::models::api_key::ApiKey::create(conn, tenant.id, "Booking platform", None)
                .unwrap()
                .1
        })
        .await;

    let head = format!(
        "POST /api/v1/events HTTP/1.1\r\nContent-Type: application/json\r\nAuthorization: Bearer {key}\r\n"
    );
    let answer = trickle(&app, &head).await;

    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"timeout""#), "{answer}");
}

#[actix_web::test]
async fn a_body_that_arrives_in_time_is_read_as_usual() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_BODY_TIMEOUT", "1s")]).await;
    let tenant = app
        .create_tenant("Alpine Tours", hookboard::models::tenant::Plan::Scale)
        .await;
    app.create_user(
        Some(&tenant),
        "ana@alpine.example",
        hookboard::models::user::Role::Owner,
    )
    .await;

    let browser = app.logged_in("ana@alpine.example").await;

    assert_eq!(browser.get("/").await.status(), 200);
}

/// Sends one `GET /healthz` on an open connection and reads the answer's head.
async fn ask(stream: &mut TcpStream, host: &str) -> String {
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read(&mut answer))
        .await
        .expect("the server answers")
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

#[actix_web::test]
async fn one_address_cannot_hold_more_than_its_share_of_connections() {
    let app = TestApp::spawn_with(&[("HOOKBOARD_CONNECTIONS_PER_ADDRESS", "2")]).await;
    let host = app.address.trim_start_matches("http://").to_owned();

    let mut first = TcpStream::connect(&host).await.unwrap();
    let mut second = TcpStream::connect(&host).await.unwrap();
    assert!(ask(&mut first, &host).await.starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second, &host).await.starts_with("HTTP/1.1 200"));

    // A third connection at once: refused, and closed.
    let mut third = TcpStream::connect(&host).await.unwrap();
    let refused = ask(&mut third, &host).await;
    assert!(refused.starts_with("HTTP/1.1 429"), "{refused}");
    assert!(
        refused.to_ascii_lowercase().contains("connection: close"),
        "{refused}"
    );

    // The open ones keep working; once one closes, a new connection gets its place.
    assert!(ask(&mut first, &host).await.starts_with("HTTP/1.1 200"));
    drop(second);
    let mut answered = String::new();
    for _ in 0..100 {
        let mut next = TcpStream::connect(&host).await.unwrap();
        answered = ask(&mut next, &host).await;
        if answered.starts_with("HTTP/1.1 200") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        answered.starts_with("HTTP/1.1 200"),
        "a closed connection frees its place: {answered}"
    );
}
