//! RBAC (`/v1/admin/roles`, conditions on `/v1/admin/users/{id}/roles`): custom roles with
//! inheritance, cycles refused, no privilege escalation, IP and time conditions, and the
//! permission cache evicted on every node.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{unique_address, TestApp, TestOptions};
use time::OffsetDateTime;

use crate::mfa::app_with_clock;
use crate::users_admin::{
    access, call, call_on, error_code, invite_and_activate, tenant_with_owner, PASSWORD,
};

async fn json_of(response: reqwest::Response) -> Value {
    response.json().await.unwrap()
}

/// Creates the custom role `name` as the holder of `token`; the response.
async fn create_role(app: &TestApp, slug: &str, token: &str, role: Value) -> reqwest::Response {
    call(
        app,
        Method::POST,
        slug,
        "/v1/admin/roles",
        token,
        Some(role),
    )
    .await
}

/// A new active user holding `roles`; their access token and id.
async fn user_with(app: &TestApp, slug: &str, owner: &str, roles: &[&str]) -> (String, String) {
    let email = unique_address("rbac");
    let id = invite_and_activate(app, slug, owner, &email, roles).await;
    (access(&app.sign_in(slug, &email, PASSWORD).await), id)
}

async fn status_of(
    app: &TestApp,
    slug: &str,
    token: &str,
    method: Method,
    path: &str,
) -> StatusCode {
    call(app, method, slug, path, token, None).await.status()
}

#[tokio::test]
async fn custom_roles_grant_what_they_include_and_cycles_are_refused() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // Not about limits: once hashing got fast, this many writes hit the free plan's burst.
    app.raise_rate_limits("acme").await;

    let auditor = create_role(
        &app,
        "acme",
        &owner,
        json!({"name": "auditor", "description": "Reads people", "permissions": ["users:read", "audit:read"]}),
    )
    .await;
    assert_eq!(auditor.status(), StatusCode::CREATED);
    let lead = create_role(
        &app,
        "acme",
        &owner,
        json!({"name": "lead", "permissions": ["roles:read"], "includes": ["auditor"]}),
    )
    .await;
    assert_eq!(lead.status(), StatusCode::CREATED);
    let lead: Value = json_of(lead).await;
    assert_eq!(lead["includes"], json!(["auditor"]));
    assert_eq!(
        lead["effective_permissions"],
        json!(["audit:read", "roles:read", "users:read"])
    );

    // A holder of `lead` may read users through `auditor`, read roles, and nothing more.
    let (holder, _) = user_with(&app, "acme", &owner, &["lead"]).await;
    assert_eq!(
        status_of(&app, "acme", &holder, Method::GET, "/v1/admin/users").await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, "acme", &holder, Method::GET, "/v1/admin/roles").await,
        StatusCode::OK
    );
    let invite = call(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &holder,
        Some(json!({"email": unique_address("x"), "roles": []})),
    )
    .await;
    assert_eq!(
        error_code(invite).await,
        (StatusCode::FORBIDDEN, "forbidden".into())
    );

    // auditor ⊂ lead: letting auditor include lead would close a cycle; so would a self-include.
    for includes in [json!(["lead"]), json!(["auditor"])] {
        let cycle = call(
            &app,
            Method::PUT,
            "acme",
            "/v1/admin/roles/auditor",
            &owner,
            Some(json!({"permissions": ["users:read"], "includes": includes})),
        )
        .await;
        assert_eq!(
            error_code(cycle).await,
            (StatusCode::CONFLICT, "role_cycle".into())
        );
    }
    let auditor: Value = json_of(
        call(
            &app,
            Method::GET,
            "acme",
            "/v1/admin/roles/auditor",
            &owner,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(auditor["includes"], json!([]));
    assert_eq!(auditor["permissions"], json!(["audit:read", "users:read"]));

    // Built-ins are read-only; an included role stays; unknown inclusions are named.
    let built_in = call(
        &app,
        Method::PUT,
        "acme",
        "/v1/admin/roles/admin",
        &owner,
        Some(json!({"permissions": ["*:*"]})),
    )
    .await;
    assert_eq!(
        error_code(built_in).await,
        (StatusCode::FORBIDDEN, "built_in_role".into())
    );
    let in_use = call(
        &app,
        Method::DELETE,
        "acme",
        "/v1/admin/roles/auditor",
        &owner,
        None,
    )
    .await;
    assert_eq!(
        error_code(in_use).await,
        (StatusCode::CONFLICT, "role_in_use".into())
    );
    let unknown = create_role(
        &app,
        "acme",
        &owner,
        json!({"name": "ghostly", "includes": ["no-such-role"]}),
    )
    .await;
    assert_eq!(
        error_code(unknown).await,
        (StatusCode::BAD_REQUEST, "unknown_role".into())
    );
    let taken = create_role(
        &app,
        "acme",
        &owner,
        json!({"name": "auditor", "permissions": ["users:read"]}),
    )
    .await;
    assert_eq!(
        error_code(taken).await,
        (StatusCode::CONFLICT, "role_exists".into())
    );

    // Deleting `lead` removes it from its holder at once; then `auditor` may go too.
    let deleted = call(
        &app,
        Method::DELETE,
        "acme",
        "/v1/admin/roles/lead",
        &owner,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status_of(&app, "acme", &holder, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    let deleted = call(
        &app,
        Method::DELETE,
        "acme",
        "/v1/admin/roles/auditor",
        &owner,
        None,
    )
    .await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn bad_role_definitions_get_400_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // A burst of writes past the free plan's rate limits, which are not under test here.
    app.raise_rate_limits("acme").await;
    let before =
        json_of(call(&app, Method::GET, "acme", "/v1/admin/roles", &owner, None).await).await;
    for bad in [
        json!({"name": "x", "permissions": ["records:read"]}),
        json!({"name": "Auditor", "permissions": ["records:read"]}),
        json!({"name": "a'; DROP TABLE roles; --", "permissions": ["records:read"]}),
        json!({"name": "reader", "permissions": ["records:read'; DROP TABLE roles; --"]}),
        json!({"name": "reader", "permissions": ["records:fly"]}),
        json!({"name": "reader", "permissions": ["records"]}),
        json!({"name": "reader", "permissions": []}),
        json!({"name": "reader", "permissions": "records:read"}),
        json!({"name": "reader", "permissions": ["records:read"], "grants": ["*:*"]}),
        json!({"name": "reader", "includes": ["Bad Name"]}),
        json!({"permissions": ["records:read"]}),
        json!(["reader"]),
    ] {
        let response = create_role(&app, "acme", &owner, bad.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body = json_of(response).await;
        assert!(body["error"]["code"].is_string(), "{bad}: {body}");
    }
    let not_json = app
        .http
        .post(format!("{}/v1/admin/roles", app.data_url))
        .header("X-Tenant", "acme")
        .bearer_auth(&owner)
        .header("Content-Type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let after =
        json_of(call(&app, Method::GET, "acme", "/v1/admin/roles", &owner, None).await).await;
    assert_eq!(before, after);
    // A name that cannot be a role is simply not found.
    let odd = call(
        &app,
        Method::GET,
        "acme",
        "/v1/admin/roles/..%2F..%2Fetc",
        &owner,
        None,
    )
    .await;
    assert_eq!(odd.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nobody_grants_or_defines_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let owner = tenant_with_owner(&app, "acme").await;
    // Not about limits: once hashing got fast, this many writes hit the free plan's burst.
    app.raise_rate_limits("acme").await;
    for role in [
        json!({"name": "people-manager", "permissions": ["users:manage", "records:read", "roles:manage"]}),
        json!({"name": "superuser", "permissions": ["*:*"]}),
        json!({"name": "reader", "permissions": ["records:read"]}),
    ] {
        assert_eq!(
            create_role(&app, "acme", &owner, role).await.status(),
            StatusCode::CREATED
        );
    }
    let (manager, _) = user_with(&app, "acme", &owner, &["people-manager"]).await;
    let (_, someone) = user_with(&app, "acme", &owner, &["viewer"]).await;
    let roles_of = |id: &str| format!("/v1/admin/users/{id}/roles");

    // Within what they hold: fine.
    let granted = call(
        &app,
        Method::PUT,
        "acme",
        &roles_of(&someone),
        &manager,
        Some(json!({"roles": ["reader", "viewer"]})),
    )
    .await;
    assert_eq!(granted.status(), StatusCode::OK);
    // Beyond: a built-in role, a custom one, and one that only includes more.
    for roles in [
        json!(["admin"]),
        json!(["superuser"]),
        json!(["reader", "developer"]),
    ] {
        let refused = call(
            &app,
            Method::PUT,
            "acme",
            &roles_of(&someone),
            &manager,
            Some(json!({"roles": roles})),
        )
        .await;
        let status = refused.status();
        let body = json_of(refused).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{roles}");
        assert_eq!(body["error"]["code"], "privilege_escalation");
        assert!(!body["error"]["details"]["missing_permissions"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let invite = call(
        &app,
        Method::POST,
        "acme",
        "/v1/admin/users/invitations",
        &manager,
        Some(json!({"email": unique_address("esc"), "roles": ["superuser"]})),
    )
    .await;
    assert_eq!(
        error_code(invite).await,
        (StatusCode::FORBIDDEN, "privilege_escalation".into())
    );
    let user: Value = json_of(
        call(
            &app,
            Method::GET,
            "acme",
            &format!("/v1/admin/users/{someone}"),
            &owner,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(user["roles"], json!(["reader", "viewer"]));

    // Nor define a role wider than themselves, directly or by inclusion, nor widen one.
    for role in [
        json!({"name": "sneaky", "permissions": ["settings:manage"]}),
        json!({"name": "sneaky", "permissions": ["*:read"]}),
        json!({"name": "sneaky", "includes": ["superuser"]}),
    ] {
        let refused = create_role(&app, "acme", &manager, role.clone()).await;
        assert_eq!(
            error_code(refused).await,
            (StatusCode::FORBIDDEN, "privilege_escalation".into()),
            "{role}"
        );
    }
    let widened = call(
        &app,
        Method::PUT,
        "acme",
        "/v1/admin/roles/reader",
        &manager,
        Some(json!({"permissions": ["records:read", "users:delete", "api_keys:manage"]})),
    )
    .await;
    assert_eq!(
        error_code(widened).await,
        (StatusCode::FORBIDDEN, "privilege_escalation".into())
    );
    let sneaky = call(
        &app,
        Method::GET,
        "acme",
        "/v1/admin/roles/sneaky",
        &owner,
        None,
    )
    .await;
    assert_eq!(sneaky.status(), StatusCode::NOT_FOUND);
    // Narrowing within their own permissions is fine.
    let narrowed = create_role(
        &app,
        "acme",
        &manager,
        json!({"name": "helper", "permissions": ["users:read"]}),
    )
    .await;
    assert_eq!(narrowed.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn conditions_confine_an_assignment_to_its_ip_ranges_and_time_windows() {
    let (app, clock) = app_with_clock().await;
    let owner = tenant_with_owner(&app, "acme").await;
    let (admin, admin_id) = user_with(&app, "acme", &owner, &["viewer"]).await;
    let set = |conditions: Value| {
        let app = &app;
        let owner = owner.clone();
        let admin_id = admin_id.clone();
        async move {
            call(
                app,
                Method::PUT,
                "acme",
                &format!("/v1/admin/users/{admin_id}/roles"),
                &owner,
                Some(json!({"roles": ["viewer", {"role": "admin", "conditions": conditions}]})),
            )
            .await
        }
    };

    // Tests call from 127.0.0.1.
    assert_eq!(
        set(json!({"ip_ranges": ["10.0.0.0/8"]})).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, "acme", &admin, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    let view = json_of(set(json!({"ip_ranges": ["10.0.0.0/8", "127.0.0.0/8"]})).await).await;
    assert_eq!(
        view["role_conditions"]["admin"]["ip_ranges"],
        json!(["10.0.0.0/8", "127.0.0.0/8"])
    );
    assert_eq!(
        status_of(&app, "acme", &admin, Method::GET, "/v1/admin/users").await,
        StatusCode::OK
    );

    // Not before an hour from now: refused until the clock gets there.
    let now = clock.now();
    let later = (now + time::Duration::hours(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    assert_eq!(
        set(json!({"not_before": later})).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        status_of(&app, "acme", &admin, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    clock.advance(time::Duration::minutes(61));
    assert_eq!(
        status_of(&app, "acme", &admin, Method::GET, "/v1/admin/users").await,
        StatusCode::OK
    );

    // A daily window opening ten minutes from now for twenty minutes.
    let minute = |at: OffsetDateTime| format!("{:02}:{:02}", at.hour(), at.minute());
    let now = clock.now();
    let window = json!({"time_window": {
        "start": minute(now + time::Duration::minutes(10)),
        "end": minute(now + time::Duration::minutes(30)),
    }});
    assert_eq!(set(window).await.status(), StatusCode::OK);
    assert_eq!(
        status_of(&app, "acme", &admin, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    clock.advance(time::Duration::minutes(15));
    assert_eq!(
        status_of(&app, "acme", &admin, Method::GET, "/v1/admin/users").await,
        StatusCode::OK
    );
    clock.advance(time::Duration::minutes(20));
    assert_eq!(
        status_of(&app, "acme", &admin, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );

    // Malformed conditions: 400, and the assignment stays as it was.
    for bad in [
        json!({"ip_ranges": ["10.0.0.0/33"]}),
        json!({"ip_ranges": ["not an address"]}),
        json!({"time_window": {"start": "9am", "end": "17:00"}}),
        json!({"not_before": "soon"}),
        json!({"weekdays_only": true}),
    ] {
        let refused = set(bad.clone()).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
    }
    let user = json_of(
        call(
            &app,
            Method::GET,
            "acme",
            &format!("/v1/admin/users/{admin_id}"),
            &owner,
            None,
        )
        .await,
    )
    .await;
    assert!(user["role_conditions"]["admin"]["time_window"].is_object());
}

#[tokio::test]
async fn a_revoked_permission_is_refused_on_a_second_node_right_after_the_change() {
    let app = TestApp::spawn().await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let owner = tenant_with_owner(&app, "acme").await;
    assert_eq!(
        create_role(
            &app,
            "acme",
            &owner,
            json!({"name": "people-reader", "permissions": ["users:read"]})
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let (reader, reader_id) = user_with(&app, "acme", &owner, &["people-reader", "viewer"]).await;
    let on_second = |token: String| {
        let app = &app;
        let second = second.clone();
        async move {
            call_on(
                app,
                &second,
                Method::GET,
                "acme",
                "/v1/admin/users",
                &token,
                None,
            )
            .await
            .status()
        }
    };
    // The second node has the reader's permissions cached.
    assert_eq!(on_second(reader.clone()).await, StatusCode::OK);
    assert_eq!(on_second(reader.clone()).await, StatusCode::OK);

    // The role loses the permission on the first node.
    let changed = call(
        &app,
        Method::PUT,
        "acme",
        "/v1/admin/roles/people-reader",
        &owner,
        Some(json!({"permissions": ["records:read"]})),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let refused_within = TestApp::eventually(Duration::from_secs(1), || {
        let check = on_second(reader.clone());
        async move { check.await == StatusCode::FORBIDDEN }
    })
    .await;
    assert!(
        refused_within.is_some(),
        "the second node still grants a revoked permission"
    );

    // Given back, then the assignment itself removed: the same, through the user's entry.
    let restored = call(
        &app,
        Method::PUT,
        "acme",
        "/v1/admin/roles/people-reader",
        &owner,
        Some(json!({"permissions": ["users:read"]})),
    )
    .await;
    assert_eq!(restored.status(), StatusCode::OK);
    let granted_within = TestApp::eventually(Duration::from_secs(1), || {
        let check = on_second(reader.clone());
        async move { check.await == StatusCode::OK }
    })
    .await;
    assert!(granted_within.is_some());
    let removed = call(
        &app,
        Method::PUT,
        "acme",
        &format!("/v1/admin/users/{reader_id}/roles"),
        &owner,
        Some(json!({"roles": ["viewer"]})),
    )
    .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let refused_within = TestApp::eventually(Duration::from_secs(1), || {
        let check = on_second(reader.clone());
        async move { check.await == StatusCode::FORBIDDEN }
    })
    .await;
    assert!(
        refused_within.is_some(),
        "the second node still honours a removed role"
    );
}
