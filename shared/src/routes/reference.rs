//! A plane's API reference as one static HTML page, rendered from its OpenAPI document
//! (`GET /v1/reference`). Plain HTML: no script, no stylesheet, nothing fetched, so it
//! works under the strict `Content-Security-Policy` every answer carries and needs no viewer
//! downloaded at build time. Machines read `/v1/openapi.json`; people read this.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::http::escape_html as escape;

/// The page for `document`.
pub fn page(document: &Value) -> String {
    let title = text(&document["info"]["title"]);
    let mut html = String::with_capacity(64 * 1024);
    let _ = write!(
        html,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{title} API reference</title></head><body>\n<h1>{title} API reference</h1>\n\
         <p>{}</p>\n<p>Version {}. The machine-readable document: \
         <a href=\"/v1/openapi.json\">/v1/openapi.json</a> (OpenAPI {}).</p>\n",
        prose(&document["info"]["description"]),
        text(&document["info"]["version"]),
        text(&document["openapi"]),
    );
    let mut by_tag: BTreeMap<String, Vec<(String, String, &Value)>> = BTreeMap::new();
    if let Some(paths) = document["paths"].as_object() {
        for (path, item) in paths {
            let Some(operations) = item.as_object() else {
                continue;
            };
            for (method, operation) in operations {
                let tag = operation["tags"][0].as_str().unwrap_or("other").to_owned();
                by_tag.entry(tag).or_default().push((
                    method.to_ascii_uppercase(),
                    path.clone(),
                    operation,
                ));
            }
        }
    }
    html.push_str("<h2>Contents</h2>\n<ul>\n");
    for tag in by_tag.keys() {
        let _ = writeln!(html, "<li><a href=\"#{0}\">{0}</a></li>", escape(tag));
    }
    html.push_str("</ul>\n");
    for (tag, operations) in &by_tag {
        let _ = writeln!(html, "<h2 id=\"{0}\">{0}</h2>", escape(tag));
        for (method, path, operation) in operations {
            operation_html(&mut html, method, path, operation);
        }
    }
    html.push_str(
        "<h2>Errors</h2>\n<p>Every error answer is <code>{\"error\": {\"code\", \"message\", \
         \"request_id\", \"details\"?}}</code>; branch on <code>code</code>.</p>\n</body></html>\n",
    );
    html
}

fn operation_html(html: &mut String, method: &str, path: &str, operation: &Value) {
    let _ = writeln!(
        html,
        "<h3><code>{} {}</code></h3>\n<p>{}</p>",
        escape(method),
        escape(path),
        prose(&operation["summary"])
    );
    if operation["description"].is_string() {
        let _ = writeln!(html, "<p>{}</p>", prose(&operation["description"]));
    }
    html.push_str("<ul>\n");
    for (label, key) in [
        ("Who may call it", "x-tenantry-access"),
        ("Audit action", "x-tenantry-audit-action"),
        ("Rate class", "x-tenantry-rate-class"),
    ] {
        if let Some(value) = operation[key].as_str() {
            let _ = writeln!(html, "<li>{label}: <code>{}</code></li>", escape(value));
        }
    }
    if let Some(parameters) = operation["parameters"].as_array() {
        let names: Vec<String> = parameters
            .iter()
            .map(|parameter| {
                format!(
                    "<code>{}</code> ({})",
                    escape(parameter["name"].as_str().unwrap_or_default()),
                    escape(parameter["in"].as_str().unwrap_or_default())
                )
            })
            .collect();
        let _ = writeln!(html, "<li>Parameters: {}</li>", names.join(", "));
    }
    if let Some(body) = operation["requestBody"]["content"].as_object() {
        for (media, content) in body {
            let schema = content["schema"]["$ref"]
                .as_str()
                .and_then(|reference| reference.rsplit('/').next())
                .unwrap_or("object");
            let _ = writeln!(
                html,
                "<li>Body: <code>{}</code>, schema <code>{}</code></li>",
                escape(media),
                escape(schema)
            );
        }
    }
    html.push_str("</ul>\n<table><tr><th>Status</th><th>Meaning</th></tr>\n");
    if let Some(responses) = operation["responses"].as_object() {
        for (status, response) in responses {
            let _ = writeln!(
                html,
                "<tr><td>{}</td><td>{}</td></tr>",
                escape(status),
                prose(&response["description"])
            );
        }
    }
    html.push_str("</table>\n");
}

fn text(value: &Value) -> String {
    escape(value.as_str().unwrap_or_default())
}

/// A description: escaped, with its `code spans` as `<code>`.
fn prose(value: &Value) -> String {
    let escaped = text(value);
    let mut out = String::with_capacity(escaped.len());
    for (index, part) in escaped.split('`').enumerate() {
        if index % 2 == 1 {
            out.push_str("<code>");
            out.push_str(part);
            out.push_str("</code>");
        } else {
            out.push_str(part);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_document_says_is_escaped_and_its_code_spans_kept() {
        let document = serde_json::json!({
            "openapi": "3.1.0",
            "info": {"title": "T<script>", "version": "1", "description": "a `b` c"},
            "paths": {"/v1/x/{id}": {"get": {
                "tags": ["x"], "summary": "Get <b>", "x-tenantry-access": "public",
                "responses": {"200": {"description": "`ok` & fine"}}
            }}}
        });
        let page = page(&document);
        assert!(page.contains("T&lt;script&gt; API reference"));
        assert!(!page.contains("<script>"));
        assert!(page.contains("<p>a <code>b</code> c</p>"));
        assert!(page.contains("<code>GET /v1/x/{id}</code>"));
        assert!(page.contains("Get &lt;b&gt;"));
        assert!(page.contains("<td><code>ok</code> &amp; fine</td>"));
    }
}
