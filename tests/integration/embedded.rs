//! The embedded PostgreSQL, driven through the real binary as a user would.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cli::{hookboard, last_word};
use crate::helpers::{scratch_dir, tokio_block};

pub(crate) fn postmaster_pid(data_dir: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(data_dir.join("postgres/postmaster.pid")).ok()?;
    text.lines().next()?.trim().parse().ok()
}

/// Whether the process runs (a zombie, dead but not yet reaped by its parent, does not).
pub(crate) fn alive(pid: i32) -> bool {
    kill(Pid::from_raw(pid), None).is_ok()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// Starts `hookboard serve` on a free port; returns the child, its URL and what it printed
/// before listening.
fn serve(data_dir: &Path) -> (Served, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_hookboard"))
        .arg("serve")
        .env_remove("DATABASE_URL")
        .env("HOOKBOARD_DATA_DIR", data_dir)
        .env("HOOKBOARD_BIND", "127.0.0.1:0")
        .env("HOOKBOARD_WORKER", "off")
        .env("HOOKBOARD_SECURE_COOKIES", "false")
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut printed = String::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        printed.push_str(&line);
        printed.push('\n');
        if let Some(rest) = line.strip_prefix("Hookboard is running at ") {
            let url = rest
                .split_whitespace()
                .next()
                .unwrap()
                .trim_end_matches('/')
                .to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (Served(Some(child)), url, printed);
        }
    }
    let _ = child.kill();
    let status = child.wait();
    panic!("serve did not start ({status:?}): {printed}");
}

/// A running `hookboard serve`; stopped with SIGTERM when dropped, so a failing test
/// leaves no process behind.
struct Served(Option<Child>);

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
            let _ = child.wait();
        }
    }
}

fn stop(mut served: Served) {
    let mut child = served.0.take().expect("running");
    kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "serve exits cleanly on SIGTERM: {status}");
}

#[actix_web::test]
async fn serve_runs_its_own_postgres_prints_the_demo_login_once_and_leaves_nothing_running() {
    let data_dir = scratch_dir("serve");
    let dir = data_dir.clone();
    tokio_block(move || {
        let (child, url, printed) = serve(&dir);
        assert!(
            printed.contains("email:    owner@demo.hookboard.test"),
            "{printed}"
        );
        let password = printed
            .lines()
            .find_map(|l| l.trim().strip_prefix("password: "))
            .expect("the demo password is printed")
            .to_owned();
        let pg = postmaster_pid(&dir).expect("postgres runs");
        assert!(alive(pg));
        let page = reqwest::blocking_get(&format!("{url}/login"));
        assert!(page.contains("Log in"));
        stop(child);
        assert!(!alive(pg), "no postgres process is left after SIGTERM");

        // A second start reuses the data: no new demo, and the demo login still works.
        let (child, url, printed) = serve(&dir);
        assert!(
            !printed.contains("password:"),
            "the demo login is printed only once: {printed}"
        );
        let body = reqwest::blocking_login(&url, "owner@demo.hookboard.test", &password);
        assert!(
            body.contains("Demo Travel Co"),
            "the demo owner logs in after a restart"
        );
        stop(child);
    })
    .await;
    assert!(postmaster_pid(&data_dir).is_none_or(|pid| !alive(pid)));
}

#[actix_web::test]
async fn cli_commands_share_the_embedded_database_and_survive_a_stale_pid_file() {
    let data_dir = scratch_dir("cli");
    let dir = data_dir.clone();
    tokio_block(move || {
        let env = [("HOOKBOARD_DATA_DIR", dir.to_str().unwrap())];
        let slug = last_word(&hookboard(
            &["tenant", "create", "--name", "Lagoon Trips", "--plan", "scale"],
            &env,
            None,
        ));
        assert!(
            postmaster_pid(&dir).is_none(),
            "the CLI stops the server it started"
        );
        // A crash leaves a postmaster.pid whose process is gone.
        std::fs::write(dir.join("postgres/postmaster.pid"), "999999\n").unwrap();
        let output = hookboard(
            &["tenant", "set-plan", "--tenant", &slug, "--plan", "growth"],
            &env,
            None,
        );
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(String::from_utf8_lossy(&output.stdout).contains("Growth plan"));
    })
    .await;
}

#[actix_web::test]
async fn a_data_directory_postgres_cannot_reach_is_explained() {
    if !nix::unistd::Uid::effective().is_root() {
        return; // Only root switches to the `postgres` user.
    }
    use std::os::unix::fs::PermissionsExt;
    let private = scratch_dir("private");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let data_dir = private.join("data");
    let output = hookboard(
        &["migrate"],
        &[("HOOKBOARD_DATA_DIR", data_dir.to_str().unwrap())],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot enter") && stderr.contains("HOOKBOARD_DATA_DIR"),
        "{stderr}"
    );
}

#[actix_web::test]
async fn a_port_in_use_is_explained() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let data_dir = scratch_dir("port");
    let output = hookboard(
        &["serve"],
        &[
            ("HOOKBOARD_BIND", &address),
            ("HOOKBOARD_DATA_DIR", data_dir.to_str().unwrap()),
        ],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("already in use") && stderr.contains("HOOKBOARD_BIND"),
        "{stderr}"
    );
    assert!(
        !data_dir.join("postgres").exists(),
        "nothing is initialised when the port is taken"
    );
}

/// Tiny blocking HTTP helpers for tests that run outside the async runtime.
mod reqwest {
    pub fn blocking_get(url: &str) -> String {
        hookboard::delivery::http::install_crypto();
        let url = url.to_owned();
        let rt = crate::helpers::current_thread_runtime();
        rt.block_on(async move { ::reqwest::get(url).await.unwrap().text().await.unwrap() })
    }

    pub fn blocking_login(base: &str, email: &str, password: &str) -> String {
        hookboard::delivery::http::install_crypto();
        let base = base.to_owned();
        let (email, password) = (email.to_owned(), password.to_owned());
        let rt = crate::helpers::current_thread_runtime();
        rt.block_on(async move {
            let client = ::reqwest::Client::builder().cookie_store(true).build().unwrap();
            let html = client
                .get(format!("{base}/login"))
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            let token = crate::helpers::meta_csrf(&html);
            client
                .post(format!("{base}/login"))
                .form(&[
                    ("email", email.as_str()),
                    ("password", password.as_str()),
                    ("csrf_token", token.as_str()),
                ])
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        })
    }
}
