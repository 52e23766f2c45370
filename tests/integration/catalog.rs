//! The event catalog page.

use crate::helpers::TestApp;
use crate::helpers::html::{parse, select};

#[actix_web::test]
async fn the_catalog_lists_every_event_type_with_its_example() {
    let (_app, _, owner) = TestApp::spawn_with_scale_owner().await;
    let page = owner.get("/events").await.text().await.unwrap();
    let doc = parse(&page);
    assert_eq!(select(&doc, "article.event-type").len(), 35);
    assert_eq!(select(&doc, "article.event-type details pre").len(), 35);
    for code in [
        "booking.created",
        "order.updated",
        "checkin.scanned",
        "flight.delay_status_changed",
        "availability.updated",
    ] {
        assert!(page.contains(&format!(r#"id="{code}""#)), "{code}");
    }
}
