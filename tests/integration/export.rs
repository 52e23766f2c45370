//! The Excel exports of the webhook table and the delivery log.

use diesel::prelude::*;
use hookboard::models::user::Role;

use crate::connections::first_connection;
use crate::helpers::TestApp;
use crate::helpers::html::{parse, select};
use crate::webhooks::{first_webhook, seed_webhook};

/// Reads an exported workbook back.
pub(crate) fn read_sheet(bytes: &[u8]) -> (Vec<Vec<calamine::Data>>, usize) {
    use calamine::Reader;
    let mut workbook: calamine::Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(bytes.to_vec())).unwrap();
    let name = workbook.sheet_names()[0].clone();
    let range = workbook.worksheet_range(&name).unwrap();
    let formulas = workbook.worksheet_formula(&name).unwrap();
    let formula_count = formulas.used_cells().filter(|(_, _, f)| !f.is_empty()).count();
    (range.rows().map(|r| r.to_vec()).collect(), formula_count)
}

#[actix_web::test]
async fn the_excel_export_holds_exactly_the_filtered_rows_as_text() {
    let (app, tenant, owner) = TestApp::spawn_with_scale_owner().await;
    owner
        .submit(
            "/connections",
            &[
                ("name", "Formula Partner"),
                ("external_id", "=HYPERLINK(\"http://evil.example\",\"x\")"),
            ],
        )
        .await;
    let tenant_id = tenant.id;
    let connection = first_connection(&app, &tenant).await;
    let connection_id = connection.id.to_string();
    owner
        .htmx_post(
            "/webhooks",
            &[
                ("url", "https://hooks.zapier.example/1"),
                ("events", "booking.created"),
                ("connection", &connection_id),
                ("active", "on"),
            ],
        )
        .await;
    for i in 2..=60 {
        let url = if i % 2 == 0 {
            format!("https://hooks.zapier.example/{i}")
        } else {
            format!("https://crm.example/{i}")
        };
        seed_webhook(
            &app,
            &tenant,
            &url,
            &["booking.created", "payment.completed"],
            true,
        )
        .await;
    }
    // 2025-11-26 10:52 UTC is 11:52 in the tenant's Berlin time.
    app.clock.set("2025-11-26T10:52:00Z".parse().unwrap());
    app.with_conn(move |conn| {
        use hookboard::schema::tenants;
        diesel::update(tenants::table.find(tenant_id))
            .set(tenants::timezone.eq("Europe/Berlin"))
            .execute(conn)
            .unwrap();
    })
    .await;

    let page = owner.get("/webhooks?url=zapier").await.text().await.unwrap();
    let link = select(&parse(&page), "a#export-link")[0]
        .value()
        .attr("href")
        .unwrap()
        .to_owned();
    assert_eq!(link, "/webhooks/export.xlsx?url=zapier");
    let response = owner.get(&link).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        hookboard::services::export::XLSX_CONTENT_TYPE
    );
    let disposition = response.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        disposition.contains("Webhooks_26112025_1152.xlsx"),
        "{disposition}"
    );
    let bytes = response.bytes().await.unwrap();
    let (rows, formulas) = read_sheet(&bytes);
    assert_eq!(formulas, 0, "no cell is a formula");
    let header: Vec<String> = rows[0].iter().map(|c| c.to_string()).collect();
    assert_eq!(
        header,
        [
            "No",
            "Contract",
            "URL",
            "Event Type",
            "Events",
            "Error Count",
            "Status"
        ]
    );
    assert_eq!(rows.len() - 1, 31, "all 31 zapier webhooks, across both pages");
    assert!(rows[1..].iter().all(|r| r[2].to_string().contains("zapier")));
    assert_eq!(
        rows[1][1],
        calamine::Data::String("=HYPERLINK(\"http://evil.example\",\"x\")".into())
    );
    assert_eq!(rows[1][0], calamine::Data::Float(1.0));
    assert_eq!(rows[2][3].to_string(), "booking.created, payment.completed");
    assert_eq!(rows[1][6].to_string(), "Active");

    // A viewer may export too; the delivery log exports the same way.
    let viewer = app
        .user_logged_in(&tenant, "vic@alpine.example", Role::Viewer)
        .await;
    assert_eq!(viewer.get("/webhooks/export.xlsx").await.status(), 200);
    let first = first_webhook(&app, &tenant).await;
    owner
        .htmx_post(
            &format!("/webhooks/{}/test", first.id),
            &[("type", "booking.created")],
        )
        .await;
    let log = viewer
        .get(&format!("/webhooks/{}/deliveries.xlsx", first.id))
        .await;
    let disposition = log.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(
        disposition.contains("Deliveries_1_26112025_1152.xlsx"),
        "{disposition}"
    );
    let (rows, _) = read_sheet(&log.bytes().await.unwrap());
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[1][2].to_string(), "booking.created");
}
