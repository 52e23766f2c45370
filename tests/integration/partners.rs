//! Partner logins (SPEC 9e): a login of a tenant bound to one of its connections, which
//! sees and manages that connection's webhooks only; every other webhook, delivery and
//! tenant page answers 404. The Users page where owners and admins invite and manage
//! logins, and the command line.

use diesel::prelude::*;
use hookboard::models::connection::{Connection, NewConnection};
use hookboard::models::tenant::Tenant;
use hookboard::models::user::{Role, User};
use hookboard::models::webhook::Webhook;
use hookboard::routes::{Access, ROUTES};

use crate::access::{concrete, send};
use crate::cli::{hookboard as run_cli, last_word};
use crate::helpers::html::{parse, select, text};
use crate::helpers::{Browser, TestApp, TestDatabase, tokio_block};
use crate::webhooks::{FORM, find_webhook, test_delivery};

async fn connection(
    app: &TestApp,
    tenant: &Tenant,
    name: &'static str,
    contract: &'static str,
) -> Connection {
    let tenant_id = tenant.id;
    app.with_conn(move |conn| {
        Connection::create(
            conn,
            NewConnection {
                tenant_id,
                name,
                external_id: contract,
            },
        )
        .unwrap()
    })
    .await
}

/// A Scale tenant with its owner logged in, two connections, a partner of the first, and
/// webhooks: one of each connection and one for all connections, each with a delivery.
struct World {
    app: TestApp,
    tenant: Tenant,
    owner: Browser,
    partner: Browser,
    sunny: Connection,
    ours: Webhook,
    theirs: Vec<Webhook>,
    their_deliveries: Vec<i64>,
    our_delivery: i64,
}

async fn world() -> World {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    let sunny = connection(&app, &tenant, "Sunny Resellers", "CT-SUN").await;
    let other = connection(&app, &tenant, "Other Agency", "CT-OTHER").await;
    app.create_partner(&tenant, "partner@sunny.example", sunny.id)
        .await;
    let partner = app.logged_in("partner@sunny.example").await;
    let mut made = Vec::new();
    for (url, connection_id) in [
        ("https://sunny.example/hooks", Some(sunny.id)),
        ("https://other.example/hooks", Some(other.id)),
        ("https://all.example/hooks", None),
    ] {
        let (webhook, _) = app
            .create_webhook(&tenant, url, &["booking.created"], |input| {
                input.connection_id = connection_id
            })
            .await;
        let delivery = test_delivery(&app, &tenant, &webhook).await;
        made.push((webhook, delivery));
    }
    let (ours, our_delivery) = made.remove(0);
    let (theirs, their_deliveries) = made.into_iter().unzip();
    World {
        app,
        tenant,
        owner,
        partner,
        sunny,
        ours,
        theirs,
        their_deliveries,
        our_delivery,
    }
}

#[actix_web::test]
async fn a_partner_gets_404_for_every_route_and_method_outside_its_connection() {
    let w = world().await;
    let token = w.partner.csrf_token("/").await;
    let mut checked = 0;
    for route in ROUTES {
        if matches!(route.access, Access::Public | Access::User | Access::Api) {
            continue;
        }
        // Another connection's webhook, one for all connections, and their deliveries;
        // for the tenant's own pages any id.
        let ids: Vec<i64> = if route.path.starts_with("/deliveries/") {
            w.their_deliveries.clone()
        } else {
            w.theirs.iter().map(|t| t.id).collect()
        };
        for id in ids {
            let path = concrete(route.path, id);
            let status = send(&w.partner, route.method, &path, &token).await;
            let own_collection = matches!(
                route.path,
                "/webhooks"
                    | "/webhooks/export.xlsx"
                    | "/webhooks/new"
                    | "/webhooks/filter/test"
                    | "/alerts"
                    | "/events"
            );
            if own_collection {
                assert!(status < 500, "{} {path}: {status}", route.method);
            } else {
                assert_eq!(status, 404, "{} {path} as a partner", route.method);
                checked += 1;
            }
        }
    }
    assert!(checked > 40, "walked {checked} routes");

    // What a partner does to its own webhook works.
    let own = format!("/webhooks/{}", w.ours.id);
    assert_eq!(
        w.partner
            .htmx_get(&format!("{own}/deliveries"), "delivery-log")
            .await
            .status(),
        200
    );
    for path in [
        own.clone(),
        format!("{own}/deliveries.xlsx"),
        format!("{own}/edit"),
        format!("{own}/replay"),
        format!("/deliveries/{}/body", w.our_delivery),
    ] {
        assert_eq!(w.partner.get(&path).await.status(), 200, "{path}");
    }
    let resent = w
        .partner
        .htmx_post(&format!("/deliveries/{}/resend", w.our_delivery), &[])
        .await;
    assert_eq!(resent.status(), 200);
    // And nothing of the others was touched on the way.
    for webhook in &w.theirs {
        let stored = find_webhook(&w.app, &w.tenant, webhook.id).await;
        assert_eq!(
            stored.updated_at, webhook.updated_at,
            "webhook {} untouched",
            webhook.number
        );
    }
}

#[actix_web::test]
async fn a_partner_sees_and_exports_its_connections_webhooks_and_creates_them_there() {
    let w = world().await;
    let page = w.partner.get("/webhooks").await.text().await.unwrap();
    let doc = parse(&page);
    let rows = select(&doc, "#webhook-results tr");
    assert_eq!(rows.len(), 1, "{page}");
    assert!(text(&rows[0]).contains("sunny.example"));
    assert!(!page.contains("other.example") && !page.contains("all.example"));
    // The header names the connection and its contract ID; the tenant's own pages are
    // not in the navigation.
    assert_eq!(
        text(&select(&doc, ".partner-of .connection-name")[0]),
        "Sunny Resellers"
    );
    assert_eq!(text(&select(&doc, ".partner-of .contract-id")[0]), "CT-SUN");
    for hidden in ["/api-keys", "/audit", "/connections", "/apps/tools", "/users"] {
        assert!(
            select(&doc, &format!("nav a[href=\"{hidden}\"]")).is_empty(),
            "{hidden} is not offered to a partner"
        );
    }

    let xlsx = w
        .partner
        .get("/webhooks/export.xlsx")
        .await
        .bytes()
        .await
        .unwrap();
    let (rows, _) = crate::export::read_sheet(&xlsx);
    assert_eq!(rows.len(), 2, "a header and one webhook: {rows:?}");
    assert!(
        rows[1]
            .iter()
            .any(|cell| cell.to_string().contains("sunny.example"))
    );

    // A webhook it creates belongs to its connection, whatever the form says.
    let other_connection = w.theirs[0].connection_id.unwrap().to_string();
    let mut form: Vec<(&str, &str)> = FORM.to_vec();
    form.push(("connection", &other_connection));
    assert_eq!(w.partner.htmx_post("/webhooks", &form).await.status(), 200);
    let created: Vec<Webhook> = {
        let tenant_id = w.tenant.id;
        w.app
            .with_conn(move |conn| {
                Webhook::list_all(conn, tenant_id)
                    .unwrap()
                    .into_iter()
                    .filter(|h| h.url == "https://crm.alpine.example/hooks/bookings")
                    .collect()
            })
            .await
    };
    assert_eq!(created.len(), 1);
    assert_eq!(created[0].connection_id, Some(w.sunny.id));
    let form_page = w.partner.get("/webhooks/new").await.text().await.unwrap();
    let form_doc = parse(&form_page);
    let options = select(&form_doc, "#webhook-connection option");
    assert_eq!(options.len(), 1, "only its own connection is offered");

    // Its changes are audited under its name; the audit log is the tenant's, not its own.
    let audit = w.owner.get("/audit").await.text().await.unwrap();
    assert!(audit.contains("partner@sunny.example"), "{audit}");
    assert_eq!(w.partner.get("/audit").await.status(), 404);
}

#[actix_web::test]
async fn owners_and_admins_invite_and_manage_logins_on_the_users_page() {
    let w = world().await;
    let page = w.owner.get("/users").await.text().await.unwrap();
    assert!(page.contains("partner@sunny.example"), "{page}");

    // Invite a partner: the one-time link is shown once and works.
    let invited = w
        .owner
        .submit(
            "/users",
            &[
                ("email", "new.partner@sunny.example"),
                ("role", "partner"),
                ("connection", "CT-SUN"),
            ],
        )
        .await;
    assert_eq!(invited.status(), 200);
    let html = invited.text().await.unwrap();
    let link = select(&parse(&html), "#password-link")[0]
        .value()
        .attr("value")
        .unwrap()
        .to_owned();
    assert!(link.contains("/set-password/"), "{link}");
    let stored = w
        .app
        .with_conn(|conn| {
            User::find_by_email(conn, "new.partner@sunny.example")
                .unwrap()
                .unwrap()
        })
        .await;
    assert_eq!(
        (stored.role, stored.connection_id),
        (Role::Partner, Some(w.sunny.id))
    );

    // Refusals say why and change nothing.
    for (fields, why) in [
        (
            vec![("email", "p2@sunny.example"), ("role", "partner")],
            "connection",
        ),
        (
            vec![
                ("email", "p3@sunny.example"),
                ("role", "viewer"),
                ("connection", "CT-SUN"),
            ],
            "Only partner logins",
        ),
        (
            vec![
                ("email", "p4@sunny.example"),
                ("role", "partner"),
                ("connection", "CT-NOPE"),
            ],
            "CT-NOPE",
        ),
        (
            vec![("email", "not-an-email"), ("role", "viewer")],
            "not an email",
        ),
    ] {
        let answer = w.owner.submit("/users", &fields).await;
        assert_eq!(answer.status(), 422, "{why}");
        assert!(answer.text().await.unwrap().contains(why), "{why}");
    }

    // An admin may not touch owners or make one.
    let admin = w
        .app
        .user_logged_in(&w.tenant, "admin@alpine.example", Role::Admin)
        .await;
    let owner_user = w
        .app
        .with_conn(|conn| User::find_by_email(conn, "ana@alpine.example").unwrap().unwrap())
        .await;
    let answer = admin
        .submit("/users", &[("email", "boss@alpine.example"), ("role", "owner")])
        .await;
    assert_eq!(answer.status(), 403);
    let answer = admin
        .submit(
            &format!("/users/{}/disabled", owner_user.id),
            &[("disabled", "true")],
        )
        .await;
    assert_eq!(answer.status(), 403);
    // The last owner stays an owner.
    let admin_user = w
        .app
        .with_conn(|conn| {
            User::find_by_email(conn, "admin@alpine.example")
                .unwrap()
                .unwrap()
        })
        .await;
    let answer = w
        .owner
        .submit(&format!("/users/{}/role", owner_user.id), &[("role", "viewer")])
        .await;
    assert_eq!(answer.status(), 403, "nobody changes their own role");

    // A role change binds a partner; disabling ends its sessions at once.
    let answer = w
        .owner
        .submit(
            &format!("/users/{}/role", admin_user.id),
            &[("role", "partner"), ("connection", "CT-OTHER")],
        )
        .await;
    assert_eq!(answer.status(), 200);
    let other_page = admin.get("/webhooks").await.text().await.unwrap();
    assert!(other_page.contains("other.example") && !other_page.contains("sunny.example"));
    let partner_user = w
        .app
        .with_conn(|conn| {
            User::find_by_email(conn, "partner@sunny.example")
                .unwrap()
                .unwrap()
        })
        .await;
    let answer = w
        .owner
        .submit(
            &format!("/users/{}/disabled", partner_user.id),
            &[("disabled", "true")],
        )
        .await;
    assert_eq!(answer.status(), 200);
    let after = w.partner.get("/webhooks").await;
    assert!(
        matches!(after.status().as_u16(), 303 | 401) || after.url().path() == "/login",
        "a disabled partner is signed out: {}",
        after.status()
    );

    // Another tenant's login is not found.
    let other = w.app.scale_tenant("Other Travel").await;
    let stranger = w
        .app
        .create_user(Some(&other), "stranger@other.example", Role::Viewer)
        .await;
    let answer = w
        .owner
        .submit(
            &format!("/users/{}/disabled", stranger.id),
            &[("disabled", "true")],
        )
        .await;
    assert_eq!(answer.status(), 404);
    // A connection with partners is not deleted from under them.
    let delete = w
        .owner
        .submit(&format!("/connections/{}/delete", w.sunny.id), &[])
        .await;
    assert_eq!(delete.status(), 409);
}

#[actix_web::test]
async fn the_command_line_creates_a_partner_bound_to_a_connection() {
    let db = tokio_block(TestDatabase::new).await;
    let env = [("DATABASE_URL", db.url.as_str())];
    let slug = last_word(&run_cli(
        &["tenant", "create", "--name", "Sunny Tours", "--plan", "scale"],
        &env,
        None,
    ));
    let tenant_id = Tenant::find_by_slug(&mut db.conn(), &slug).unwrap().id;
    let sunny = Connection::create(
        &mut db.conn(),
        NewConnection {
            tenant_id,
            name: "Sunny Resellers",
            external_id: "CT-SUN",
        },
    )
    .unwrap();
    let partner = [
        "user",
        "create",
        "--tenant",
        &slug,
        "--email",
        "p@sunny.example",
        "--role",
        "partner",
    ];
    let missing = run_cli(&partner, &env, Some("a very long password\n"));
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("contract ID"));
    let mut with_connection = partner.to_vec();
    with_connection.extend(["--connection", "CT-SUN"]);
    let email = last_word(&run_cli(&with_connection, &env, Some("a very long password\n")));
    assert_eq!(email, "p@sunny.example");
    let user = User::find_by_email(&mut db.conn(), &email).unwrap().unwrap();
    assert_eq!((user.role, user.connection_id), (Role::Partner, Some(sunny.id)));
    let count: i64 = hookboard::schema::audit_log::table
        .filter(hookboard::schema::audit_log::action.eq("user.created"))
        .count()
        .get_result(&mut db.conn())
        .unwrap();
    assert_eq!(count, 1);
}

/// In a real browser: a partner signs in, the header names its connection, the table and
/// the navigation hold its own only, and another connection's webhook page is "not found".
#[actix_web::test]
async fn a_partner_in_a_real_browser_sees_its_connection_only() {
    use crate::browser::{Driver, connect, count, errors, log_in, watch_errors};
    use fantoccini::Locator;
    let w = world().await;
    w.app
        .with_conn({
            let tenant_id = w.tenant.id;
            move |conn| {
                hookboard::models::tenant::Tenant::set_webhooks_enabled(conn, tenant_id, true).unwrap()
            }
        })
        .await;
    let driver = Driver::start();
    let client = connect(&driver).await;
    log_in(&client, &w.app, "partner@sunny.example").await;
    let who = client
        .find(Locator::Css(".partner-of"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(who.contains("Sunny Resellers") && who.contains("CT-SUN"), "{who}");
    client.goto(&w.app.url("/webhooks")).await.unwrap();
    watch_errors(&client).await;
    assert_eq!(count(&client, "#webhook-results tr[id^=webhook-row-]").await, 1);
    assert_eq!(count(&client, "nav a[href='/api-keys']").await, 0);
    assert_eq!(count(&client, "nav a[href='/audit']").await, 0);
    assert!(errors(&client).await.is_empty(), "{:?}", errors(&client).await);
    client
        .goto(&w.app.url(&format!("/webhooks/{}", w.theirs[0].id)))
        .await
        .unwrap();
    let heading = client
        .find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(heading.to_lowercase().contains("not found"), "{heading}");
    client.close().await.unwrap();
}

#[actix_web::test]
async fn an_operator_creates_a_partner_on_the_console() {
    let w = world().await;
    w.app
        .create_user(None, "ops@platform.example", Role::Operator)
        .await;
    let operator = w.app.logged_in("ops@platform.example").await;
    let tenant = w.tenant.id.to_string();
    for (email, connection, status) in [("p1@sunny.example", "", 422), ("p2@sunny.example", "CT-SUN", 200)] {
        let answer = operator
            .submit(
                "/admin/users",
                &[
                    ("email", email),
                    ("role", "partner"),
                    ("tenant", tenant.as_str()),
                    ("connection", connection),
                ],
            )
            .await;
        assert_eq!(answer.status(), status, "{email}");
        let page = answer.text().await.unwrap();
        let expected = if status == 200 {
            "/set-password/"
        } else {
            "contract ID"
        };
        assert!(page.contains(expected), "{email}: {page}");
    }
    let user = w
        .app
        .with_conn(|conn| User::find_by_email(conn, "p2@sunny.example").unwrap().unwrap())
        .await;
    assert_eq!((user.role, user.connection_id), (Role::Partner, Some(w.sunny.id)));
}
