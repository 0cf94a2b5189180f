//! The route tables of both planes, walked. The routes come from the planes' own tables
//! (`route_table::table()`), so a route added tomorrow is walked too: it must be in the
//! OpenAPI document (console pages and SCIM excepted), refuse callers its access excludes, and
//! record its audit event.
//!
//! The committed documents under `docs/openapi/` must match what the code generates;
//! `TENANTRY_UPDATE_OPENAPI=1 cargo test -p tenantry-tests --test api -- openapi` rewrites them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::routes::{Access, Audit, RouteInfo};
use tenantry_tests::client::NewKey;
use tenantry_tests::{unique_address, Client, TestApp, PASSWORD};

/// A concrete path for a route pattern: every parameter filled with a value that names
/// nothing (a fresh UUID for ids).
fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| match segment {
            "{id}" => uuid::Uuid::new_v4().to_string(),
            segment if segment.starts_with('{') => "walked".to_owned(),
            segment => segment.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn method_of(route: &RouteInfo) -> Method {
    Method::from_bytes(route.method.as_str().as_bytes()).unwrap()
}

/// The operation the document holds for `route`.
fn documented<'a>(document: &'a Value, route: &RouteInfo) -> &'a Value {
    &document["paths"][&route.path][route.method.as_str().to_ascii_lowercase()]
}

/// The reference page a plane serves at `base_url`, checked to be HTML.
async fn reference_page(plane: &Client) -> String {
    let reply = plane.get("/v1/reference").send().await.unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    reply.text()
}

/// Calls `route` as `caller` (and an empty JSON object as the body of a write); its status
/// and request id.
async fn call(caller: &Client, route: &RouteInfo) -> (StatusCode, String) {
    let method = method_of(route);
    let mut request = caller.call(method.clone(), concrete(&route.path));
    if method != Method::GET && method != Method::DELETE {
        request = request.json(&json!({}));
    }
    let reply = request.send().await.unwrap();
    let request_id = reply.header("x-request-id").unwrap_or_default().to_owned();
    (reply.status(), request_id)
}

/// A console page: not an API operation; a state-changing one records an event; called
/// anonymously, a page that needs a user sends the browser to sign in, and a form posted
/// without its CSRF token is refused before the route runs.
async fn walk_page(anonymous: &Client, route: &RouteInfo, operation: &Value) {
    let name = format!("{} {}", route.method, route.path);
    assert!(
        operation.is_null(),
        "{name}: a console page in the API document"
    );
    let changes_state = route.method != actix_web::http::Method::GET;
    if changes_state {
        assert_ne!(
            route.policy.audit,
            Audit::Refusals,
            "{name} records no audit event"
        );
    }
    let (status, _) = call(anonymous, route).await;
    match (changes_state, route.policy.access) {
        (true, _) => assert_eq!(status, StatusCode::FORBIDDEN, "{name} without a CSRF token"),
        (false, Access::Public) => assert!(status.as_u16() < 500, "{name}: {status}"),
        (false, _) => assert_eq!(status, StatusCode::SEE_OTHER, "{name}, anonymous"),
    }
}

#[tokio::test]
async fn every_data_plane_route_is_documented_refuses_whom_it_must_and_records_its_event() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    // A user holding no role at all, and an API key (a caller that is not a user). Their
    // credentials are fixed: a refused call is not retried with refreshed tokens.
    let nobody_email = unique_address("nobody");
    app.invite_and_activate(&owner, &nobody_email, &[]).await;
    let nobody = app.signed_in("acme", &nobody_email, PASSWORD).await;
    let nobody = app.as_bearer(
        "acme",
        nobody.access_token().await.unwrap().unwrap().expose(),
    );
    let key = owner
        .api_keys()
        .create(&NewKey::new("walker", &["usage:read"]))
        .await
        .unwrap();
    let key_holder = app.tenant("acme").with_api_key(key.key.expose());
    let anonymous_caller = app.tenant("acme");
    let document: Value = app
        .data_client()
        .get("/v1/openapi.json")
        .ok()
        .await
        .unwrap();

    let reference = reference_page(&app.data_client()).await;
    let routes = shared::routes::infos(&data_plane::route_table::table());
    assert!(routes.len() >= 79, "only {} routes walked", routes.len());
    let mut expected_events: HashMap<String, &'static str> = HashMap::new();
    for route in &routes {
        let name = format!("{} {}", route.method, route.path);
        let operation = documented(&document, route);
        if route.is_page() {
            walk_page(&anonymous_caller, route, operation).await;
            continue;
        }
        if route.is_scim() {
            // SCIM's contract is RFC 7644 and its discovery endpoints (tests/api/scim).
            assert!(
                operation.is_null(),
                "{name}: a SCIM route in the API document"
            );
        } else {
            assert!(operation.is_object(), "{name} is not in the document");
            assert!(
                reference.contains(&format!("<code>{name}</code>")),
                "{name} is not in the reference page"
            );
            assert_eq!(
                operation["x-tenantry-access"],
                json!(route.policy.access.describe()),
                "{name}"
            );
        }
        // A route that changes state records an event (telemetry is counted as usage).
        if route.method != actix_web::http::Method::GET {
            assert_ne!(
                route.policy.audit,
                Audit::Refusals,
                "{name} records no audit event"
            );
        }

        let (anonymous, request_id) = call(&anonymous_caller, route).await;
        assert!(
            anonymous.as_u16() < 500,
            "{name} answered an anonymous call {anonymous}"
        );
        if let Some(event) = route.policy.audit.event() {
            expected_events.insert(request_id, event.action);
        }
        let lacking = match route.policy.access {
            Access::Public => continue,
            // Not a user: an API key.
            Access::SignedIn | Access::RestrictedOk => &key_holder,
            // A user with no role.
            Access::Permission(_) | Access::UserOrKey(_) | Access::Caller => &nobody,
            Access::Operator => panic!("{name}: an operator route on the data plane"),
        };
        assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{name}, anonymous");
        let (status, request_id) = call(lacking, route).await;
        assert_eq!(
            status,
            StatusCode::FORBIDDEN,
            "{name}, without its permission"
        );
        if let Some(event) = route.policy.audit.event() {
            expected_events.insert(request_id, event.action);
        }
    }

    // Every audited call, refused or not, left its route's event.
    let tenant_id = app.tenant_id("acme").await;
    let ids: Vec<String> = expected_events.keys().cloned().collect();
    // Every event of the tenant (a few hundred), by request id.
    let stored_events = || async {
        app.clickhouse()
            .query("SELECT request_id, action FROM audit_log WHERE tenant_id = ?")
            .bind(&tenant_id)
            .fetch_all::<(String, String)>()
            .await
            .unwrap_or_default()
            .into_iter()
            .collect::<HashMap<String, String>>()
    };
    TestApp::eventually(Duration::from_secs(30), || async {
        let stored = stored_events().await;
        ids.iter().all(|id| stored.contains_key(id))
    })
    .await;
    let stored = stored_events().await;
    let missing: Vec<(&String, &&str, Option<&String>)> = expected_events
        .iter()
        .filter(|(request_id, action)| {
            stored.get(*request_id).map(String::as_str) != Some(**action)
        })
        .map(|(request_id, action)| (request_id, action, stored.get(request_id)))
        .collect();
    assert!(missing.is_empty(), "events missing or wrong: {missing:?}");
}

#[tokio::test]
async fn every_control_plane_route_is_documented_and_operator_routes_refuse_everyone_else() {
    let app = TestApp::spawn().await;
    let anonymous = app.operator_api().client().anonymous();
    let document: Value = anonymous.get("/v1/openapi.json").ok().await.unwrap();
    let routes = shared::routes::infos(&control_plane::route_table::table());
    for route in &routes {
        let name = format!("{} {}", route.method, route.path);
        if route.is_page() {
            // The operator console: a page, refused to anyone without its session cookie
            // (an operator token included: pages read only the cookie).
            walk_page(&anonymous, route, documented(&document, route)).await;
            let (with_token, _) = call(app.operator_api().client(), route).await;
            if route.policy.access != Access::Public {
                let expected = if route.method == actix_web::http::Method::GET {
                    StatusCode::SEE_OTHER
                } else {
                    StatusCode::FORBIDDEN
                };
                assert_eq!(with_token, expected, "{name} with an operator token");
            }
            continue;
        }
        assert!(
            documented(&document, route).is_object(),
            "{name} is not in the document"
        );
        if route.policy.access == Access::Public {
            continue;
        }
        assert_eq!(route.policy.access, Access::Operator, "{name}");
        for token in [None, Some("not-an-operator-token")] {
            let caller = match token {
                Some(token) => anonymous.with_bearer(token),
                None => anonymous.clone(),
            };
            let reply = caller
                .call(method_of(route), concrete(&route.path))
                .send()
                .await
                .unwrap();
            assert_eq!(
                reply.status(),
                StatusCode::UNAUTHORIZED,
                "{name} with {token:?}"
            );
        }
    }
}

fn committed(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/openapi")
        .join(name)
}

/// The committed document `name` is `generated`, or is rewritten to it when
/// `TENANTRY_UPDATE_OPENAPI` is set.
fn check_committed(name: &str, generated: &Value) {
    let text = format!("{}\n", serde_json::to_string_pretty(generated).unwrap());
    let path = committed(name);
    if std::env::var_os("TENANTRY_UPDATE_OPENAPI").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        on_disk == text,
        "docs/openapi/{name} is not what the code generates: run \
         `TENANTRY_UPDATE_OPENAPI=1 cargo test -p tenantry-tests --test api -- openapi` \
         and review the diff"
    );
}

/// Every `$ref` in `value` names a schema of `document`'s components.
fn check_references(name: &str, document: &Value, value: &Value) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(reference)) = map.get("$ref") {
                let schema = reference
                    .strip_prefix("#/components/schemas/")
                    .unwrap_or(reference);
                assert!(
                    document["components"]["schemas"][schema].is_object(),
                    "{name}: {reference} names no schema"
                );
            }
            map.values()
                .for_each(|value| check_references(name, document, value));
        }
        Value::Array(items) => items
            .iter()
            .for_each(|value| check_references(name, document, value)),
        _ => {}
    }
}

#[test]
fn the_committed_openapi_documents_are_what_the_code_generates() {
    for (name, document) in [
        ("data plane", data_plane::route_table::document()),
        ("control plane", control_plane::route_table::document()),
    ] {
        check_references(name, document, document);
    }
    for (name, routes) in [
        ("data plane", data_plane::route_table::table()),
        ("control plane", control_plane::route_table::table()),
    ] {
        let conflicts = shared::routes::openapi::schema_conflicts(&shared::routes::infos(&routes));
        assert!(
            conflicts.is_empty(),
            "{name}: schema names used twice: {conflicts:?}"
        );
    }
    check_committed("data-plane.json", data_plane::route_table::document());
    check_committed("control-plane.json", control_plane::route_table::document());
}
