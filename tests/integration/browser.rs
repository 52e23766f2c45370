//! The webhook pages in a real headless Chromium, driven through WebDriver (chromedriver):
//! the flow a tour operator's staff goes through, with htmx doing the table actions in
//! place. `make test` installs Debian's `chromium` and `chromium-driver` when missing.

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use hookboard::models::tenant::Plan;
use hookboard::models::user::Role;
use serde_json::json;

use crate::helpers::{PASSWORD, TestApp};

/// chromedriver in a process group of its own, so the browser it starts ends with it.
pub(crate) struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    pub(crate) fn start() -> Driver {
        let binary = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .map(str::to_owned)
            .or_else(|| which("chromedriver"))
            .expect(
                "chromedriver is missing: install Debian's chromium and chromium-driver (make test does)",
            );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(binary)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver starts");
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group is ours: chromedriver and the Chromium it started, nothing else.
        let group = nix::unistd::Pid::from_raw(-(self.child.id() as i32));
        let _ = nix::sys::signal::kill(group, nix::sys::signal::Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

fn which(name: &str) -> Option<String> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| format!("{dir}/{name}"))
        .find(|p| Path::new(p).exists())
}

pub(crate) async fn connect(driver: &Driver) -> Client {
    let mut args = vec![
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        "--no-first-run",
    ];
    if nix::unistd::geteuid().is_root() {
        args.push("--no-sandbox"); // Chromium refuses to run as root with its sandbox.
    }
    let mut options = json!({ "args": args });
    if Path::new("/usr/bin/chromium").exists() {
        options["binary"] = json!("/usr/bin/chromium");
    }
    let mut caps = serde_json::Map::new();
    caps.insert("goog:chromeOptions".into(), options);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
        {
            Ok(client) => return client,
            Err(err) if Instant::now() > deadline => panic!("chromedriver did not start a browser: {err}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Polls until `check` holds (htmx swaps are asynchronous), for at most 10 seconds.
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

pub(crate) async fn count(client: &Client, css: &str) -> usize {
    client.find_all(Locator::Css(css)).await.unwrap().len()
}

pub(crate) async fn value(client: &Client, css: &str) -> String {
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

/// An attribute read in the page itself (an element found earlier may have been swapped).
pub(crate) async fn attr(client: &Client, css: &str, name: &str) -> Option<String> {
    let found = client
        .execute(
            "const e = document.querySelector(arguments[0]); return e && e.getAttribute(arguments[1]);",
            vec![json!(css), json!(name)],
        )
        .await
        .unwrap();
    found.as_str().map(str::to_owned)
}

pub(crate) async fn click(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

pub(crate) async fn script(client: &Client, js: &str) -> serde_json::Value {
    client.execute(js, vec![]).await.unwrap()
}

/// Records script errors and CSP violations of the current page in `window.__errors`.
pub(crate) async fn watch_errors(client: &Client) {
    script(
        client,
        "window.__errors = window.__errors || [];
         window.addEventListener('error', e => window.__errors.push('error: ' + e.message));
         document.addEventListener('securitypolicyviolation', e => window.__errors.push('csp: ' + e.violatedDirective + ' ' + e.blockedURI));
         document.body.addEventListener('htmx:responseError', e => window.__errors.push('htmx: ' + e.detail.xhr.status));
         return true;",
    )
    .await;
}

pub(crate) async fn errors(client: &Client) -> Vec<String> {
    serde_json::from_value(script(client, "return window.__errors || [];").await).unwrap()
}

/// A marker that survives htmx swaps but not a full page load.
async fn same_page(client: &Client) -> bool {
    script(client, "return window.__marker === 'same-page';").await == json!(true)
}

async fn add_webhook(client: &Client, url: &str, tick: &[&str]) -> String {
    click(client, "#add-webhook").await;
    client
        .wait()
        .for_element(Locator::Css("#dialog #webhook-url"))
        .await
        .unwrap();
    client
        .find(Locator::Css("#webhook-url"))
        .await
        .unwrap()
        .send_keys(url)
        .await
        .unwrap();
    for css in tick {
        click(client, css).await;
    }
    click(client, "#webhook-form button[type=submit]").await;
    client
        .wait()
        .for_element(Locator::Css("#dialog #created-key"))
        .await
        .unwrap();
    let key = value(client, "#created-key").await;
    click(client, "#dialog [data-close-dialog].btn-primary").await;
    eventually("the dialog closes", || async {
        count(client, "#dialog .modal").await == 0
    })
    .await;
    key
}

/// Logs `email` in with the test password through the login form.
pub(crate) async fn log_in(client: &Client, app: &TestApp, email: &str) {
    client.goto(&app.url("/login")).await.unwrap();
    for (css, text) in [("input[name=email]", email), ("input[name=password]", PASSWORD)] {
        client
            .find(Locator::Css(css))
            .await
            .unwrap()
            .send_keys(text)
            .await
            .unwrap();
    }
    client
        .find(Locator::XPath("//button[normalize-space()='Log in']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the dashboard shows", || async {
        client.current_url().await.unwrap().path() == "/"
    })
    .await;
}

#[actix_web::test]
async fn staff_manage_webhooks_in_a_real_browser_without_page_reloads() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("Alpine Tours", Plan::Scale).await;
    app.create_user(Some(&tenant), "ana@alpine.example", Role::Owner)
        .await;
    let driver = Driver::start();
    let client = connect(&driver).await;

    // Log in.
    client.goto(&app.url("/login")).await.unwrap();
    client
        .find(Locator::Css("input[name=email]"))
        .await
        .unwrap()
        .send_keys("ana@alpine.example")
        .await
        .unwrap();
    client
        .find(Locator::Css("input[name=password]"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    client
        .find(Locator::XPath("//button[normalize-space()='Log in']"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the dashboard shows", || async {
        client.current_url().await.unwrap().path() == "/"
    })
    .await;

    // Apps > Tools: switch webhooks on (htmx), then Configure.
    client.goto(&app.url("/apps/tools")).await.unwrap();
    watch_errors(&client).await;
    click(&client, "#enable-webhooks").await;
    eventually("the tool card says On", || async {
        count(&client, "#webhooks-tool .badge-active").await == 1
    })
    .await;
    assert!(errors(&client).await.is_empty(), "{:?}", errors(&client).await);
    client
        .find(Locator::LinkText("Configure"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually("the webhook table opens", || async {
        client.current_url().await.unwrap().path() == "/webhooks"
    })
    .await;
    watch_errors(&client).await;
    assert_eq!(
        script(&client, "return typeof htmx;").await,
        json!("object"),
        "htmx loaded (its SRI hash matches)"
    );
    script(&client, "window.__marker = 'same-page'; return true;").await;
    assert!(client.source().await.unwrap().contains("No webhooks yet"));

    // Three webhooks through the dialog; "select all" ticks a whole category.
    let key = add_webhook(
        &client,
        "https://crm.alpine.example/hooks",
        &["input[name=events][value='booking.created']"],
    )
    .await;
    assert!(key.starts_with("hbw_"));
    add_webhook(
        &client,
        "https://hooks.zapier.example/catch/1",
        &["input[data-select-all='payments']"],
    )
    .await;
    add_webhook(
        &client,
        "https://erp.alpine.example/in",
        &["input[name=events][value='form.submitted']"],
    )
    .await;
    assert_eq!(count(&client, "tr[id^=webhook-row-]").await, 3);
    let zapier_row = client
        .find(Locator::XPath("//tr[.//a[contains(., 'zapier')]]"))
        .await
        .unwrap();
    let zapier_text = zapier_row.text().await.unwrap();
    assert!(
        zapier_text.contains("payment.created") && zapier_text.contains("payment.completed"),
        "{zapier_text}"
    );

    // A validation error keeps what was typed; Escape closes the dialog.
    click(&client, "#add-webhook").await;
    client
        .wait()
        .for_element(Locator::Css("#dialog #webhook-url"))
        .await
        .unwrap();
    client
        .find(Locator::Css("#webhook-url"))
        .await
        .unwrap()
        .send_keys("https://10.1.2.3/internal")
        .await
        .unwrap();
    client
        .find(Locator::Css("#webhook-description"))
        .await
        .unwrap()
        .send_keys("Keep this text")
        .await
        .unwrap();
    click(&client, "#webhook-form button[type=submit]").await;
    client
        .wait()
        .for_element(Locator::Css("#dialog .field-error"))
        .await
        .unwrap();
    let messages = client
        .find(Locator::Css("#dialog"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        messages.contains("private address") && messages.contains("at least one event"),
        "{messages}"
    );
    assert_eq!(value(&client, "#webhook-url").await, "https://10.1.2.3/internal");
    assert_eq!(value(&client, "#webhook-description").await, "Keep this text");
    client
        .active_element()
        .await
        .unwrap()
        .send_keys(&Key::Escape.to_string())
        .await
        .unwrap();
    eventually("Escape closes the dialog", || async {
        count(&client, "#dialog .modal").await == 0
    })
    .await;
    assert_eq!(count(&client, "tr[id^=webhook-row-]").await, 3, "nothing saved");

    // The status switch flips in place.
    let first = client.find(Locator::Css("tr[id^=webhook-row-]")).await.unwrap();
    let row_id = first.attr("id").await.unwrap().unwrap();
    click(&client, &format!("#{row_id} button[role=switch]")).await;
    eventually("the row re-renders switched off", || async {
        attr(&client, &format!("#{row_id} button[role=switch]"), "aria-checked")
            .await
            .as_deref()
            == Some("false")
    })
    .await;
    assert!(same_page(&client).await, "no full page load");

    // Edit opens pre-filled.
    click(&client, &format!("#{row_id} a.btn-secondary")).await;
    client
        .wait()
        .for_element(Locator::Css("#dialog #webhook-url"))
        .await
        .unwrap();
    assert_eq!(
        value(&client, "#webhook-url").await,
        "https://crm.alpine.example/hooks"
    );
    assert!(
        client
            .find(Locator::Css("input[name=events][value='booking.created']"))
            .await
            .unwrap()
            .is_selected()
            .await
            .unwrap()
    );
    click(&client, "#dialog .modal-close").await;
    eventually("the dialog closes", || async {
        count(&client, "#dialog .modal").await == 0
    })
    .await;

    // Filtering updates the table and the address bar, not the page.
    client
        .find(Locator::Css("#filter-url"))
        .await
        .unwrap()
        .send_keys("zapier")
        .await
        .unwrap();
    eventually("the filter applies", || async {
        count(&client, "tr[id^=webhook-row-]").await == 1
    })
    .await;
    eventually("the address bar has the filter", || async {
        client
            .current_url()
            .await
            .unwrap()
            .query()
            .unwrap_or("")
            .contains("url=zapier")
    })
    .await;
    assert!(same_page(&client).await, "no full page load");
    let href = attr(&client, "#export-link", "href").await.unwrap();
    assert_eq!(href, "/webhooks/export.xlsx?url=zapier");

    // Download Excel with the browser's session: exactly the filtered row.
    let cookie = client.get_named_cookie("hookboard_session").await.unwrap();
    let download = reqwest::Client::new()
        .get(app.url(&href))
        .header("Cookie", format!("hookboard_session={}", cookie.value()))
        .send()
        .await
        .unwrap();
    assert_eq!(download.status(), 200);
    let bytes = download.bytes().await.unwrap();
    let rows = {
        use calamine::Reader;
        let mut book: calamine::Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
        let range = book.worksheet_range("Webhooks").unwrap();
        range
            .rows()
            .map(|r| r.iter().map(|c| c.to_string()).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    };
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][2], "https://hooks.zapier.example/catch/1");

    // Clear the filter, take the picture for the README, then delete with confirmation.
    client
        .find(Locator::Css("#filter-url"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    client
        .find(Locator::Css("#filter-url"))
        .await
        .unwrap()
        .send_keys(" ")
        .await
        .unwrap();
    eventually("all rows are back", || async {
        count(&client, "tr[id^=webhook-row-]").await == 3
    })
    .await;
    let picture = client.screenshot().await.unwrap();
    // Kept under target/ (CARGO_TARGET_TMPDIR) for the README's picture.
    std::fs::write(
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("webhooks.png"),
        picture,
    )
    .unwrap();

    let last = client
        .find_all(Locator::Css("tr[id^=webhook-row-]"))
        .await
        .unwrap()
        .pop()
        .unwrap();
    let last_id = last.attr("id").await.unwrap().unwrap();
    click(&client, &format!("#{last_id} a.btn-danger")).await;
    client
        .wait()
        .for_element(Locator::Css("#dialog #confirm-delete"))
        .await
        .unwrap();
    let question = client
        .find(Locator::Css("#dialog"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(question.contains("cannot be recovered"), "{question}");
    click(&client, "#confirm-delete").await;
    eventually("the row is gone", || async {
        count(&client, &format!("#{last_id}")).await == 0
    })
    .await;
    eventually("the dialog closes", || async {
        count(&client, "#dialog .modal").await == 0
    })
    .await;
    assert_eq!(count(&client, "tr[id^=webhook-row-]").await, 2);
    assert!(same_page(&client).await, "no full page load");
    assert!(
        errors(&client).await.is_empty(),
        "console errors: {:?}",
        errors(&client).await
    );

    client.close().await.unwrap();
}
