use std::io::Write;
use std::process::{Command, Output, Stdio};

use hookboard::models::api_key::ApiKey;
use hookboard::models::tenant::{Plan, Tenant};
use hookboard::models::user::{Role, User};

use crate::helpers::{TestDatabase, tokio_block};

pub fn hookboard(args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_hookboard"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(input) = stdin {
        pipe.write_all(input.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

/// The identifier a creating command prints: the last word of its last line.
pub fn last_word(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "command failed: {stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .last()
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn the_cli_creates_tenants_users_and_api_keys_that_scripts_can_read() {
    let db = tokio_block(TestDatabase::new).await;
    let url = db.url.clone();
    let env = [("DATABASE_URL", url.as_str())];

    let slug = last_word(&hookboard(
        &[
            "tenant",
            "create",
            "--name",
            "Fjord Kayak Tours",
            "--plan",
            "growth",
        ],
        &env,
        None,
    ));
    assert_eq!(slug, "fjord-kayak-tours");
    let again = last_word(&hookboard(
        &[
            "tenant",
            "create",
            "--name",
            "Fjord Kayak Tours",
            "--plan",
            "scale",
        ],
        &env,
        None,
    ));
    assert_eq!(again, "fjord-kayak-tours-2", "slugs stay unique");

    hookboard(
        &["tenant", "set-plan", "--tenant", &slug, "--plan", "scale"],
        &env,
        None,
    );
    let email = last_word(&hookboard(
        &[
            "user",
            "create",
            "--tenant",
            &slug,
            "--email",
            "Kari@Fjord.example",
            "--role",
            "admin",
        ],
        &env,
        Some("a very long password\n"),
    ));
    assert_eq!(email, "kari@fjord.example", "the stored, normalized spelling");
    last_word(&hookboard(
        &["user", "create", "--operator", "--email", "ops@platform.example"],
        &env,
        Some("operator password 1"),
    ));
    let key = last_word(&hookboard(
        &[
            "apikey",
            "create",
            "--tenant",
            &slug,
            "--name",
            "Booking platform",
        ],
        &env,
        None,
    ));
    assert!(key.starts_with("hbk_") && key.len() > 40, "{key}");

    let mut conn = db.conn();
    let tenant = Tenant::find_by_slug(&mut conn, &slug).unwrap();
    assert_eq!(tenant.plan, Plan::Scale);
    assert!(!tenant.webhooks_enabled, "a new tenant starts with the tool off");
    let switched = last_word(&hookboard(&["tenant", "webhooks", "--tenant", &slug], &env, None));
    assert_eq!(switched, slug);
    assert!(Tenant::find_by_slug(&mut conn, &slug).unwrap().webhooks_enabled);
    hookboard(&["tenant", "webhooks", "--tenant", &slug, "--off"], &env, None);
    assert!(!Tenant::find_by_slug(&mut conn, &slug).unwrap().webhooks_enabled);
    let user = User::find_by_email(&mut conn, "kari@fjord.example")
        .unwrap()
        .unwrap();
    assert_eq!((user.role, user.tenant_id), (Role::Admin, Some(tenant.id)));
    assert!(
        hookboard::auth::password::verify(&user.password_hash, "a very long password"),
        "newline dropped"
    );
    let operator = User::find_by_email(&mut conn, "ops@platform.example")
        .unwrap()
        .unwrap();
    assert_eq!((operator.role, operator.tenant_id), (Role::Operator, None));
    let stored = ApiKey::find_by_secret(&mut conn, &key)
        .unwrap()
        .expect("the key is stored");
    assert_ne!(stored.key_hash, key, "only a hash is stored");
}

#[actix_web::test]
async fn the_cli_explains_bad_input_and_exits_non_zero() {
    let db = tokio_block(TestDatabase::new).await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let cases: &[(&[&str], Option<&str>, &str)] = &[
        (
            &["tenant", "create", "--name", "X", "--plan", "platinum"],
            None,
            "starter, growth or scale",
        ),
        (
            &["tenant", "set-plan", "--tenant", "nope", "--plan", "scale"],
            None,
            "no tenant with the slug `nope`",
        ),
        (
            &["user", "create", "--operator", "--email", "o@p.example"],
            Some("short\n"),
            "at least 12",
        ),
        (
            &["user", "create", "--operator", "--email", "not-an-email"],
            Some("long enough password\n"),
            "not an email",
        ),
        (
            &["user", "create", "--operator", "--email", "o@p.example"],
            None,
            "no password on standard input",
        ),
        (
            &["apikey", "create", "--tenant", "nope", "--name", "k"],
            None,
            "no tenant with the slug",
        ),
    ];
    for (args, stdin, expected) in cases {
        let output = hookboard(args, &env, *stdin);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} must fail");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[actix_web::test]
async fn a_wrong_database_url_gets_one_clear_message() {
    let output = hookboard(
        &["migrate"],
        &[(
            "DATABASE_URL",
            "postgres://nobody@127.0.0.1:1/nothing?connect_timeout=2",
        )],
        None,
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(
        stderr.contains("cannot connect to the database at postgres://nobody@127.0.0.1:1/nothing"),
        "{stderr}"
    );
}

/// The test cluster runs with fsync=off for speed: exactly what `serve` must warn about.
#[actix_web::test]
async fn serve_warns_loudly_when_postgresql_does_not_flush_commits() {
    use std::io::{BufRead, BufReader};
    let db = tokio_block(TestDatabase::new).await;
    let mut conn = db.conn();
    let warnings = hookboard::app::durability_warnings(&mut conn).unwrap();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(warnings[0].contains("fsync=off") && warnings[1].contains("synchronous_commit=off"));

    let mut child = Command::new(env!("CARGO_BIN_EXE_hookboard"))
        .arg("serve")
        .env("DATABASE_URL", &db.url)
        .env("HOOKBOARD_BIND", "127.0.0.1:0")
        .env("HOOKBOARD_WORKER", "off")
        .env("RUST_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let warned = tokio_block(move || {
        BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .any(|line| line.contains("WARNING") && line.contains("fsync=off"))
    });
    let warned = actix_web::rt::time::timeout(std::time::Duration::from_secs(30), warned).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    child.wait().unwrap();
    assert_eq!(warned.ok(), Some(true), "serve warned about fsync=off");
}

#[actix_web::test]
async fn a_missed_demo_login_is_set_again_from_the_command_line_and_ends_sessions() {
    use diesel::prelude::*;
    use hookboard::models::session::{SessionRow, Sessions};

    let db = tokio_block(TestDatabase::new).await;
    let url = db.url.clone();
    let env = [("DATABASE_URL", url.as_str())];
    let slug = last_word(&hookboard(
        &["tenant", "create", "--name", "Demo Travel Co", "--plan", "scale"],
        &env,
        None,
    ));
    last_word(&hookboard(
        &[
            "user",
            "create",
            "--tenant",
            &slug,
            "--email",
            "owner@demo.example",
            "--role",
            "owner",
        ],
        &env,
        Some("the first long password\n"),
    ));
    let mut conn = db.conn();
    let user = User::find_by_email(&mut conn, "owner@demo.example")
        .unwrap()
        .unwrap();
    let session = SessionRow {
        key_hash: "a-session-of-the-owner",
        user_id: Some(user.id),
        state: serde_json::json!({}),
        expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
    };
    Sessions::insert(&mut conn, &session).unwrap();

    let said = last_word(&hookboard(
        &["user", "set-password", "--email", "Owner@Demo.example"],
        &env,
        Some("a brand new long password\n"),
    ));
    assert_eq!(said, "owner@demo.example");
    let user = User::find_by_email(&mut conn, "owner@demo.example")
        .unwrap()
        .unwrap();
    assert!(hookboard::auth::password::verify(
        &user.password_hash,
        "a brand new long password"
    ));
    assert!(!hookboard::auth::password::verify(
        &user.password_hash,
        "the first long password"
    ));
    assert_eq!(
        Sessions::count_for_user(&mut conn, user.id).unwrap(),
        0,
        "their sessions ended"
    );
    let recorded: i64 = {
        use hookboard::schema::audit_log;
        audit_log::table
            .filter(audit_log::action.eq("user.password_set"))
            .count()
            .get_result(&mut conn)
            .unwrap()
    };
    assert_eq!(recorded, 1);

    let unknown = hookboard(
        &["user", "set-password", "--email", "nobody@demo.example"],
        &env,
        Some("a brand new long password\n"),
    );
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("nobody@demo.example"));
    let short = hookboard(
        &["user", "set-password", "--email", "owner@demo.example"],
        &env,
        Some("short\n"),
    );
    assert!(!short.status.success(), "the password rules apply");
}

#[actix_web::test]
async fn the_cli_sets_who_gets_alert_mails() {
    let db = tokio_block(TestDatabase::new).await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let slug = last_word(&hookboard(
        &[
            "tenant",
            "create",
            "--name",
            "Fjord Kayak Tours",
            "--plan",
            "scale",
        ],
        &env,
        None,
    ));
    let out = hookboard(
        &[
            "tenant",
            "alerts",
            "--tenant",
            &slug,
            "--emails",
            "a@fjord.example,b@fjord.example",
        ],
        &env,
        None,
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let tenant = Tenant::find_by_slug(&mut db.conn(), &slug).unwrap();
    assert_eq!(
        Tenant::alert_emails(&mut db.conn(), tenant.id).unwrap(),
        ["a@fjord.example", "b@fjord.example"]
    );
    let bad = hookboard(
        &["tenant", "alerts", "--tenant", &slug, "--emails", "nope"],
        &env,
        None,
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope"));
}
