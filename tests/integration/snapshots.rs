//! HTML fragments as snapshots (insta), with ids, tokens and times redacted: a change to
//! what htmx swaps in shows up as a reviewed diff.

use hookboard::models::webhook::Webhook;
use hookboard::validation::webhook::Input;

use crate::helpers::TestApp;

fn redacted(html: &str) -> insta::Settings {
    let _ = html;
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"webhook-row-\d+", "webhook-row-[id]");
    settings.add_filter(r"/webhooks/\d+", "/webhooks/[id]");
    settings.add_filter(
        r#"name="csrf_token" value="[0-9a-f]+""#,
        r#"name="csrf_token" value="[csrf]""#,
    );
    settings.add_filter(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}", "[time]");
    settings.set_snapshot_path("snapshots");
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[actix_web::test]
async fn a_table_row_fragment() {
    let app = TestApp::spawn().await;
    let (tenant, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let input = Input {
        url: "https://crm.alpine.example/hooks?a=1&b=<2>".into(),
        description: "Bookings to the \"CRM\"".into(),
        events: [
            "booking.created",
            "booking.updated",
            "booking.cancelled",
            "payment.completed",
        ]
        .map(String::from)
        .to_vec(),
        ..Input::default()
    };
    let (tenant_id, secrets) = (tenant.id, app.secrets());
    let (webhook, _) = app
        .with_conn(move |conn| {
            Webhook::create(conn, tenant_id, &crate::helpers::valid(input.clone()), &secrets).unwrap()
        })
        .await;
    let row = owner
        .htmx_post(&format!("/webhooks/{}/toggle", webhook.id), &[])
        .await
        .text()
        .await
        .unwrap();
    redacted(&row).bind(|| insta::assert_snapshot!("webhook_row_switched_off", row));
}

#[actix_web::test]
async fn the_form_with_errors_keeps_what_was_typed() {
    let app = TestApp::spawn().await;
    let (_, owner) = app
        .scale_tenant_with_owner("Alpine Tours", "ana@alpine.example")
        .await;
    let fields = [
        ("url", "ftp://files.example/in"),
        ("description", "<script>alert(1)</script>"),
        ("events", "booking.created"),
        ("header_name", "Bad Name"),
        ("header_value", "x"),
    ];
    let form = owner.htmx_post("/webhooks", &fields).await.text().await.unwrap();
    // Only the fields and their errors; the event checkboxes are long and covered elsewhere.
    let start = form.find("<div class=\"field").unwrap();
    let end = form.find("<fieldset class=\"field events-field").unwrap();
    let head = &form[start..end];
    let errors: Vec<&str> = form
        .match_indices("field-error")
        .map(|(i, _)| &form[i..form[i..].find("</p>").unwrap() + i])
        .collect();
    let snapshot = format!("{head}\n---\n{}", errors.join("\n"));
    redacted(&snapshot).bind(|| insta::assert_snapshot!("webhook_form_errors", snapshot));
}
