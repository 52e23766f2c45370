//! The API reference page (`GET /api-reference`): the OpenAPI description of
//! `/api/v1/openapi.json` rendered for people, with a curl example per operation. It reads
//! the same description the JSON serves, so the two cannot disagree.

use actix_web::HttpRequest;
use askama::Template;
use askama_web::WebTemplate;
use serde_json::{Map, Value, json};

use crate::api::doc::openapi;
use crate::error::AppError;
use crate::web::session::CurrentUser;
use crate::web::views::Chrome;

#[derive(Template, WebTemplate)]
#[template(path = "api_reference/index.html")]
pub struct ReferencePage {
    pub chrome: Chrome,
    pub base_url: String,
    pub intro: String,
    pub sections: Vec<Section>,
}

pub struct Section {
    pub name: String,
    pub description: String,
    pub operations: Vec<Operation>,
}

pub struct Operation {
    pub id: String,
    pub method: String,
    pub path: String,
    pub summary: String,
    pub description: String,
    pub parameters: Vec<Field>,
    pub body_fields: Vec<Field>,
    pub responses: Vec<(String, String)>,
    pub response_example: Option<String>,
    pub curl: String,
}

pub struct Field {
    pub name: String,
    pub place: String,
    pub kind: String,
    pub required: bool,
    pub description: String,
}

pub async fn show(req: HttpRequest, user: CurrentUser) -> Result<ReferencePage, AppError> {
    let info = req.connection_info();
    let base_url = format!("{}://{}", info.scheme(), info.host());
    let doc = openapi();
    Ok(ReferencePage {
        chrome: user.chrome("API reference", "api-keys"),
        intro: text(&doc["info"]["description"]),
        sections: sections(doc, &base_url),
        base_url,
    })
}

fn text(value: &Value) -> String {
    value.as_str().unwrap_or_default().to_owned()
}

/// The operations grouped by their tag, in the order the description lists the tags.
fn sections(doc: &Value, base_url: &str) -> Vec<Section> {
    let mut sections: Vec<Section> = doc["tags"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|tag| Section {
            name: text(&tag["name"]),
            description: text(&tag["description"]),
            operations: Vec::new(),
        })
        .collect();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for (method, op) in item.as_object().into_iter().flatten() {
            let operation = operation(doc, method, path, op, base_url);
            let tag = op["tags"][0].as_str().unwrap_or_default();
            match sections.iter_mut().find(|s| s.name == tag) {
                Some(section) => section.operations.push(operation),
                None => sections.push(Section {
                    name: tag.to_owned(),
                    description: String::new(),
                    operations: vec![operation],
                }),
            }
        }
    }
    sections.retain(|s| !s.operations.is_empty());
    sections
}

fn operation(doc: &Value, method: &str, path: &str, op: &Value, base_url: &str) -> Operation {
    let parameters: Vec<Field> = op["parameters"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| Field {
            name: text(&p["name"]),
            place: text(&p["in"]),
            kind: type_name(doc, &p["schema"]),
            required: p["required"].as_bool().unwrap_or(false),
            description: text(&p["description"]),
        })
        .collect();
    let content = &op["requestBody"]["content"]["application/json"];
    let body_example = if content.is_null() {
        None
    } else if !content["example"].is_null() {
        Some(content["example"].clone())
    } else {
        Some(example(doc, &content["schema"], 0))
    };
    let responses = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(status, r)| (status.clone(), text(&r["description"])))
        .collect();
    let success = op["responses"]
        .as_object()
        .into_iter()
        .flatten()
        .find(|(status, _)| status.starts_with('2'))
        .map(|(_, r)| &r["content"]["application/json"]["schema"])
        .filter(|schema| !schema.is_null());
    Operation {
        id: text(&op["operationId"]),
        method: method.to_uppercase(),
        path: path.to_owned(),
        summary: text(&op["summary"]),
        description: text(&op["description"]),
        body_fields: body_fields(doc, &content["schema"]),
        curl: curl(method, path, &parameters, body_example.as_ref(), base_url),
        parameters,
        responses,
        response_example: success
            .map(|schema| serde_json::to_string_pretty(&example(doc, schema, 0)).unwrap_or_default()),
    }
}

/// Follows a `$ref` to the component it names.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema["$ref"]
        .as_str()
        .and_then(|r| r.strip_prefix("#/components/schemas/"))
    {
        Some(name) => &doc["components"]["schemas"][name],
        None => schema,
    }
}

/// The non-null alternatives of a schema (`Option<T>` is `oneOf [null, T]` or a type list).
fn non_null<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    let schema = resolve(doc, schema);
    for key in ["oneOf", "anyOf"] {
        if let Some(choice) = schema[key]
            .as_array()
            .and_then(|all| all.iter().find(|s| s["type"] != "null"))
        {
            return resolve(doc, choice);
        }
    }
    schema
}

fn type_name(doc: &Value, schema: &Value) -> String {
    let named = schema["$ref"].as_str().and_then(|r| r.rsplit('/').next());
    let schema = non_null(doc, schema);
    let kind = match &schema["type"] {
        Value::String(t) => t.clone(),
        Value::Array(types) => types
            .iter()
            .filter_map(Value::as_str)
            .find(|t| *t != "null")
            .unwrap_or("any")
            .to_owned(),
        _ => named.map_or_else(|| "any".to_owned(), str::to_owned),
    };
    match kind.as_str() {
        "array" => format!("array of {}", type_name(doc, &schema["items"])),
        "string" if schema["format"] == "date-time" => "date-time".to_owned(),
        "object" if schema["additionalProperties"].is_object() => {
            format!("object of {}", type_name(doc, &schema["additionalProperties"]))
        }
        _ => kind,
    }
}

fn body_fields(doc: &Value, schema: &Value) -> Vec<Field> {
    let schema = non_null(doc, schema);
    let required: Vec<&str> = schema["required"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    schema["properties"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(name, property)| Field {
            name: name.clone(),
            place: "body".to_owned(),
            kind: type_name(doc, property),
            required: required.contains(&name.as_str()),
            description: match property["description"].as_str() {
                Some(own) => own.to_owned(),
                None => text(&non_null(doc, property)["description"]),
            },
        })
        .collect()
}

/// An example value for a schema: its own example when it has one, else one built from
/// its properties.
fn example(doc: &Value, schema: &Value, depth: usize) -> Value {
    if !schema["example"].is_null() {
        return schema["example"].clone();
    }
    let schema = non_null(doc, schema);
    if !schema["example"].is_null() || depth > 6 {
        return schema["example"].clone();
    }
    if let Some(all) = schema["allOf"].as_array() {
        let mut merged = Map::new();
        for part in all {
            if let Value::Object(fields) = example(doc, part, depth + 1) {
                merged.extend(fields);
            }
        }
        return Value::Object(merged);
    }
    let kind = match &schema["type"] {
        Value::Array(types) => types
            .iter()
            .find(|t| *t != "null")
            .cloned()
            .unwrap_or(Value::Null),
        other => other.clone(),
    };
    match kind.as_str().unwrap_or("object") {
        "object" => {
            let fields = schema["properties"]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(name, property)| (name.clone(), example(doc, property, depth + 1)))
                .collect();
            Value::Object(fields)
        }
        "array" => json!([example(doc, &schema["items"], depth + 1)]),
        "integer" => json!(1),
        "number" => json!(1.0),
        "boolean" => json!(true),
        "string" if schema["format"] == "date-time" => json!("2026-11-23T10:00:00Z"),
        "string" => schema["enum"][0]
            .clone()
            .as_str()
            .map_or(json!("string"), |s| json!(s)),
        _ => Value::Null,
    }
}

fn curl(method: &str, path: &str, parameters: &[Field], body: Option<&Value>, base_url: &str) -> String {
    let mut url = path.replace("{id}", "42");
    let query: Vec<String> = parameters
        .iter()
        .filter(|p| p.place == "query")
        .filter_map(|p| query_example(&p.name).map(|v| format!("{}={v}", p.name)))
        .take(2)
        .collect();
    if !query.is_empty() && method == "get" {
        url = format!("{url}?{}", query.join("&"));
    }
    let mut lines = vec![format!(
        "curl -sS -X {} \"{base_url}{url}\"",
        method.to_uppercase()
    )];
    lines.push("  -H \"Authorization: Bearer $HOOKBOARD_API_KEY\"".to_owned());
    if let Some(body) = body {
        let json = serde_json::to_string(body)
            .unwrap_or_default()
            .replace('\'', r"'\''");
        lines.push("  -H \"Content-Type: application/json\"".to_owned());
        lines.push(format!("  -d '{json}'"));
    }
    lines.join(" \\\n")
}

fn query_example(name: &str) -> Option<&'static str> {
    Some(match name {
        "url" => "crm",
        "status" => "active",
        "outcome" => "failed",
        "limit" => "20",
        _ => return None,
    })
}
