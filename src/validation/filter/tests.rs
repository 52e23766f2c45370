use serde_json::json;

use super::*;

fn run(text: &str, data: &serde_json::Value) -> Result<bool, FilterError> {
    test(text, "booking.created", data)
}

#[test]
fn the_example_of_the_spec_selects_products_and_party_sizes() {
    let filter = "data.product.id in [12, 15] && data.pax >= 2";
    assert_eq!(run(filter, &json!({"product": {"id": 12}, "pax": 2})), Ok(true));
    assert_eq!(run(filter, &json!({"product": {"id": 13}, "pax": 2})), Ok(false));
    assert_eq!(run(filter, &json!({"product": {"id": 15}, "pax": 1})), Ok(false));
}

#[test]
fn type_connection_and_language_are_in_scope() {
    let data = json!({});
    let event = Event::new("booking.created", &data, Some("C-1"), Some("de"));
    let check = |text: &str| compile(text).unwrap().evaluate(&event);
    assert_eq!(check("type == 'booking.created'"), Ok(true));
    assert_eq!(check("type.startsWith('booking.')"), Ok(true));
    assert_eq!(check("connection == 'C-1' && language == 'de'"), Ok(true));
    let none = Event::new("booking.created", &data, None, None);
    assert_eq!(compile("connection == null").unwrap().evaluate(&none), Ok(true));
}

#[test]
fn a_parse_error_says_where() {
    let err = compile("data.pax >= ").unwrap_err();
    assert!(err.at.is_some(), "{err}");
    assert!(err.to_string().starts_with("line 1, column "), "{err}");
    let err = compile("data.pax >= 2 &&\n  data.x ==== 3").unwrap_err();
    assert_eq!(err.at.map(|(line, _)| line), Some(2), "{err}");
}

#[test]
fn unknown_names_and_functions_are_refused_with_their_position() {
    let err = compile("data.pax >= 2 && bookings.size() > 0").unwrap_err();
    assert!(err.message.contains("`bookings` is not known"), "{err}");
    assert_eq!(err.at, Some((1, 18)), "{err}");
    let err = compile("matches(type, 'booking.*')").unwrap_err();
    assert!(err.message.contains("`matches` is not a function"), "{err}");
    assert!(compile("data.items.exists(i, i.id == 3)").is_ok());
    assert!(
        compile("data.items.exists(i, j == 3)")
            .unwrap_err()
            .message
            .contains("`j`")
    );
}

#[test]
fn non_boolean_results_and_failures_are_errors() {
    let data = json!({"pax": 2});
    assert!(
        run("data.pax", &data)
            .unwrap_err()
            .message
            .contains("instead of true or false")
    );
    assert!(
        run("data.missing == 1", &data)
            .unwrap_err()
            .message
            .contains("fails")
    );
    assert!(
        validate("data.pax + 1", &[("booking.created", &data)])
            .unwrap_err()
            .contains("booking.created")
    );
    assert!(validate("data.pax > 1", &[("booking.created", &data)]).is_ok());
}

#[test]
fn limits_are_checked_and_explained() {
    let long = format!("type == '{}'", "a".repeat(MAX_FILTER_CHARS));
    assert!(
        compile(&long)
            .unwrap_err()
            .message
            .contains("at most 2000 characters")
    );
    let deep = format!("{}true{}", "(".repeat(200), ")".repeat(200));
    assert!(compile(&deep).unwrap_err().message.contains("nested too deeply"));
    let negations = format!("{}true", "!".repeat(500));
    assert!(
        compile(&negations)
            .unwrap_err()
            .message
            .contains("nested too deeply")
    );
    let chain = vec!["true"; 300].join("||");
    let err = compile(&chain).unwrap_err();
    assert!(
        err.message.contains("nested too deeply") || err.message.contains("too large"),
        "{err}"
    );
    let nested = "data.a.all(x, data.b.exists(y, x == y))";
    assert!(compile(nested).unwrap_err().message.contains("may not be nested"));
    let many = "data.a.all(x, x > 0) && data.b.all(x, x > 0) && data.c.all(x, x > 0) && data.d.all(x, x > 0)";
    assert!(
        compile(many)
            .unwrap_err()
            .message
            .contains("at most 3 comprehensions")
    );
}

#[test]
fn the_cost_of_a_comprehension_grows_with_the_lists_of_the_event() {
    let filter = compile("data.items.exists(i, i in data.wanted)").unwrap();
    let small = Event::new(
        "booking.created",
        &json!({"items": [1, 2], "wanted": [2]}),
        None,
        None,
    );
    assert_eq!(filter.evaluate(&small), Ok(true));
    let items: Vec<i64> = (0..5000).collect();
    let big = Event::new(
        "booking.created",
        &json!({"items": items, "wanted": items}),
        None,
        None,
    );
    let err = filter.evaluate(&big).unwrap_err();
    assert!(err.message.contains("at most 100000"), "{err}");
    // A simple filter is cheap whatever the lists.
    assert_eq!(compile("size(data.items) > 2").unwrap().evaluate(&big), Ok(true));
}

/// The deepest filters the limits let through evaluate on an eighth of the 2 MiB stack of
/// the threads that publish (with CEL built optimized, as Cargo.toml has it in debug too).
#[test]
fn the_largest_filters_allowed_evaluate_on_a_small_stack() {
    let data = json!({"a": {"b": 1}, "items": [1, 2, 3]});
    let mut deepest = "data.a.b == 1".to_owned();
    for _ in 0..(MAX_DEPTH - 2) {
        deepest = format!("({deepest} && true)");
    }
    let comprehension =
        "data.items.all(x, ((((((((((x > 0))))))))))) && ".to_owned() + &deepest[..deepest.len()];
    let mut filters = vec![deepest.clone()];
    filters.push(comprehension);
    filters.push(vec!["data.a.b == 2"; MAX_DEPTH + 6].join(" || "));
    let compiled: Vec<Compiled> = filters.iter().map(|f| compile(f).unwrap()).collect();
    std::thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || {
            let event = Event::new("booking.created", &data, None, None);
            for c in &compiled {
                let _ = c.evaluate(&event);
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn the_examples_of_the_readme_compile() {
    for example in [
        "data.product.id in [12, 15] && data.pax >= 2",
        r#"type == "booking.cancelled" || data.status == "confirmed""#,
        r#"language == "de" || (has(data.customer) && data.customer.language == "de")"#,
        r#"data.units.exists(u, u.type == "child")"#,
        r#"connection == "CT-001" && data.pricing.total >= 100000"#,
        r#"data.flight.number.startsWith("LX") && data.delay_minutes > 30"#,
    ] {
        assert!(
            compile(example).is_ok(),
            "{example}: {:?}",
            compile(example).err()
        );
    }
    let child = json!({"units": [{"type": "adult"}, {"type": "child"}]});
    assert_eq!(
        run(r#"data.units.exists(u, u.type == "child")"#, &child),
        Ok(true)
    );
}
