//! Reading the pages: parse, select, and an element's text as a reader sees it.

pub fn parse(html: &str) -> scraper::Html {
    scraper::Html::parse_document(html)
}

pub fn select<'a>(doc: &'a scraper::Html, css: &str) -> Vec<scraper::ElementRef<'a>> {
    doc.select(&scraper::Selector::parse(css).unwrap()).collect()
}

/// The element's text with its white space collapsed.
pub fn text(element: &scraper::ElementRef<'_>) -> String {
    element
        .text()
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}
