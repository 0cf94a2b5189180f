//! RBAC (`/v1/admin/roles`, conditions on `/v1/admin/users/{id}/roles`): custom roles with
//! inheritance, cycles refused, no privilege escalation, IP and time conditions, and the
//! permission cache evicted on every node.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tenantry_tests::{send, unique_address, Client, Reply, TestApp, TestOptions, PASSWORD};
use time::OffsetDateTime;

/// `POST /v1/admin/roles` with `role` as `caller`, whatever the answer.
async fn create_role(caller: &Client, role: Value) -> Reply {
    caller
        .post("/v1/admin/roles")
        .json(&role)
        .send()
        .await
        .unwrap()
}

/// A new active user of `owner`'s tenant holding `roles`: signed in, and their id.
async fn user_with(app: &TestApp, owner: &Client, roles: &[&str]) -> (Client, uuid::Uuid) {
    let email = unique_address("rbac");
    let id = app.invite_and_activate(owner, &email, roles).await;
    (app.signed_in("acme", &email, PASSWORD).await, id)
}

async fn status_of(caller: &Client, method: Method, path: &str) -> StatusCode {
    caller.call(method, path).send().await.unwrap().status()
}

#[tokio::test]
async fn custom_roles_grant_what_they_include_and_cycles_are_refused() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // Not about limits: once hashing got fast, this many writes hit the free plan's burst.
    app.raise_rate_limits("acme").await;

    let auditor = create_role(&owner, json!({"name": "auditor", "description": "Reads people", "permissions": ["users:read", "audit:read"]}),
    )
    .await;
    assert_eq!(auditor.status(), StatusCode::CREATED);
    let lead = create_role(
        &owner,
        json!({"name": "lead", "permissions": ["roles:read"], "includes": ["auditor"]}),
    )
    .await;
    assert_eq!(lead.status(), StatusCode::CREATED);
    let lead: Value = lead.value();
    assert_eq!(lead["includes"], json!(["auditor"]));
    assert_eq!(
        lead["effective_permissions"],
        json!(["audit:read", "roles:read", "users:read"])
    );

    // A holder of `lead` may read users through `auditor`, read roles, and nothing more.
    let (holder, _) = user_with(&app, &owner, &["lead"]).await;
    assert_eq!(
        status_of(&holder, Method::GET, "/v1/admin/users").await,
        StatusCode::OK
    );
    assert_eq!(
        status_of(&holder, Method::GET, "/v1/admin/roles").await,
        StatusCode::OK
    );
    let invite = send(
        &holder,
        Method::POST,
        "/v1/admin/users/invitations",
        Some(json!({"email": unique_address("x"), "roles": []})),
    )
    .await;
    assert_eq!(invite.error_code(), (StatusCode::FORBIDDEN, "forbidden"));

    // auditor ⊂ lead: letting auditor include lead would close a cycle; so would a self-include.
    for includes in [json!(["lead"]), json!(["auditor"])] {
        let cycle = send(
            &owner,
            Method::PUT,
            "/v1/admin/roles/auditor",
            Some(json!({"permissions": ["users:read"], "includes": includes})),
        )
        .await;
        assert_eq!(cycle.error_code(), (StatusCode::CONFLICT, "role_cycle"));
    }
    let auditor: Value = send(&owner, Method::GET, "/v1/admin/roles/auditor", None)
        .await
        .value();
    assert_eq!(auditor["includes"], json!([]));
    assert_eq!(auditor["permissions"], json!(["audit:read", "users:read"]));

    // Built-ins are read-only; an included role stays; unknown inclusions are named.
    let built_in = send(
        &owner,
        Method::PUT,
        "/v1/admin/roles/admin",
        Some(json!({"permissions": ["*:*"]})),
    )
    .await;
    assert_eq!(
        built_in.error_code(),
        (StatusCode::FORBIDDEN, "built_in_role")
    );
    let in_use = send(&owner, Method::DELETE, "/v1/admin/roles/auditor", None).await;
    assert_eq!(in_use.error_code(), (StatusCode::CONFLICT, "role_in_use"));
    let unknown = create_role(
        &owner,
        json!({"name": "ghostly", "includes": ["no-such-role"]}),
    )
    .await;
    assert_eq!(
        unknown.error_code(),
        (StatusCode::BAD_REQUEST, "unknown_role")
    );
    let taken = create_role(
        &owner,
        json!({"name": "auditor", "permissions": ["users:read"]}),
    )
    .await;
    assert_eq!(taken.error_code(), (StatusCode::CONFLICT, "role_exists"));

    // Deleting `lead` removes it from its holder at once; then `auditor` may go too.
    let deleted = send(&owner, Method::DELETE, "/v1/admin/roles/lead", None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        status_of(&holder, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    let deleted = send(&owner, Method::DELETE, "/v1/admin/roles/auditor", None).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn bad_role_definitions_get_400_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // A burst of writes past the free plan's rate limits, which are not under test here.
    app.raise_rate_limits("acme").await;
    let before = send(&owner, Method::GET, "/v1/admin/roles", None)
        .await
        .value();
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
        let response = create_role(&owner, bad.clone()).await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let body = response.value();
        assert!(body["error"]["code"].is_string(), "{bad}: {body}");
    }
    let not_json = owner
        .post("/v1/admin/roles")
        .body("{\"name\": ", "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    let after = send(&owner, Method::GET, "/v1/admin/roles", None)
        .await
        .value();
    assert_eq!(before, after);
    // A name that cannot be a role is simply not found.
    let odd = send(&owner, Method::GET, "/v1/admin/roles/..%2F..%2Fetc", None).await;
    assert_eq!(odd.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nobody_grants_or_defines_more_than_they_hold() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // Not about limits: once hashing got fast, this many writes hit the free plan's burst.
    app.raise_rate_limits("acme").await;
    for role in [
        json!({"name": "people-manager", "permissions": ["users:manage", "records:read", "roles:manage"]}),
        json!({"name": "superuser", "permissions": ["*:*"]}),
        json!({"name": "reader", "permissions": ["records:read"]}),
    ] {
        assert_eq!(
            create_role(&owner, role).await.status(),
            StatusCode::CREATED
        );
    }
    let (manager, _) = user_with(&app, &owner, &["people-manager"]).await;
    let (_, someone) = user_with(&app, &owner, &["viewer"]).await;
    let someones_roles = format!("/v1/admin/users/{someone}/roles");

    // Within what they hold: fine.
    let granted = send(
        &manager,
        Method::PUT,
        &someones_roles,
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
        let refused = send(
            &manager,
            Method::PUT,
            &someones_roles,
            Some(json!({"roles": roles})),
        )
        .await;
        let status = refused.status();
        let body = refused.value();
        assert_eq!(status, StatusCode::FORBIDDEN, "{roles}");
        assert_eq!(body["error"]["code"], "privilege_escalation");
        assert!(!body["error"]["details"]["missing_permissions"]
            .as_array()
            .unwrap()
            .is_empty());
    }
    let invite = send(
        &manager,
        Method::POST,
        "/v1/admin/users/invitations",
        Some(json!({"email": unique_address("esc"), "roles": ["superuser"]})),
    )
    .await;
    assert_eq!(
        invite.error_code(),
        (StatusCode::FORBIDDEN, "privilege_escalation")
    );
    let user: Value = send(
        &owner,
        Method::GET,
        &format!("/v1/admin/users/{someone}"),
        None,
    )
    .await
    .value();
    assert_eq!(user["roles"], json!(["reader", "viewer"]));

    // Nor define a role wider than themselves, directly or by inclusion, nor widen one.
    for role in [
        json!({"name": "sneaky", "permissions": ["settings:manage"]}),
        json!({"name": "sneaky", "permissions": ["*:read"]}),
        json!({"name": "sneaky", "includes": ["superuser"]}),
    ] {
        let refused = create_role(&manager, role.clone()).await;
        assert_eq!(
            refused.error_code(),
            (StatusCode::FORBIDDEN, "privilege_escalation"),
            "{role}"
        );
    }
    let widened = send(
        &manager,
        Method::PUT,
        "/v1/admin/roles/reader",
        Some(json!({"permissions": ["records:read", "users:delete", "api_keys:manage"]})),
    )
    .await;
    assert_eq!(
        widened.error_code(),
        (StatusCode::FORBIDDEN, "privilege_escalation")
    );
    let sneaky = send(&owner, Method::GET, "/v1/admin/roles/sneaky", None).await;
    assert_eq!(sneaky.status(), StatusCode::NOT_FOUND);
    // Narrowing within their own permissions is fine.
    let narrowed = create_role(
        &manager,
        json!({"name": "helper", "permissions": ["users:read"]}),
    )
    .await;
    assert_eq!(narrowed.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn conditions_confine_an_assignment_to_its_ip_ranges_and_time_windows() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    // More requests in a row than the free plan's burst lets through on a fast machine.
    app.raise_rate_limits("acme").await;
    let (admin, admin_id) = user_with(&app, &owner, &["viewer"]).await;
    let admin_roles = format!("/v1/admin/users/{admin_id}/roles");
    let set = |conditions: Value| {
        send(
            &owner,
            Method::PUT,
            &admin_roles,
            Some(json!({"roles": ["viewer", {"role": "admin", "conditions": conditions}]})),
        )
    };

    // Tests call from 127.0.0.1.
    assert_eq!(
        set(json!({"ip_ranges": ["10.0.0.0/8"]})).await.status(),
        StatusCode::OK
    );
    assert_eq!(
        status_of(&admin, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    let view = set(json!({"ip_ranges": ["10.0.0.0/8", "127.0.0.0/8"]}))
        .await
        .value();
    assert_eq!(
        view["role_conditions"]["admin"]["ip_ranges"],
        json!(["10.0.0.0/8", "127.0.0.0/8"])
    );
    assert_eq!(
        status_of(&admin, Method::GET, "/v1/admin/users").await,
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
        status_of(&admin, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    clock.advance(time::Duration::minutes(61));
    assert_eq!(
        status_of(&admin, Method::GET, "/v1/admin/users").await,
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
        status_of(&admin, Method::GET, "/v1/admin/users").await,
        StatusCode::FORBIDDEN
    );
    clock.advance(time::Duration::minutes(15));
    assert_eq!(
        status_of(&admin, Method::GET, "/v1/admin/users").await,
        StatusCode::OK
    );
    clock.advance(time::Duration::minutes(20));
    assert_eq!(
        status_of(&admin, Method::GET, "/v1/admin/users").await,
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
    let user = send(
        &owner,
        Method::GET,
        &format!("/v1/admin/users/{admin_id}"),
        None,
    )
    .await
    .value();
    assert!(user["role_conditions"]["admin"]["time_window"].is_object());
}

#[tokio::test]
async fn a_revoked_permission_is_refused_on_a_second_node_right_after_the_change() {
    let app = TestApp::spawn().await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let owner = app.tenant_with_owner("acme").await;
    assert_eq!(
        create_role(
            &owner,
            json!({"name": "people-reader", "permissions": ["users:read"]})
        )
        .await
        .status(),
        StatusCode::CREATED
    );
    let (reader, reader_id) = user_with(&app, &owner, &["people-reader", "viewer"]).await;
    let reader_on_second = reader.on(&second);
    let on_second = || status_of(&reader_on_second, Method::GET, "/v1/admin/users");
    // The second node has the reader's permissions cached.
    assert_eq!(on_second().await, StatusCode::OK);
    assert_eq!(on_second().await, StatusCode::OK);

    // The role loses the permission on the first node.
    let changed = send(
        &owner,
        Method::PUT,
        "/v1/admin/roles/people-reader",
        Some(json!({"permissions": ["records:read"]})),
    )
    .await;
    assert_eq!(changed.status(), StatusCode::OK);
    let refused_within = TestApp::eventually(Duration::from_secs(1), || {
        let check = on_second();
        async move { check.await == StatusCode::FORBIDDEN }
    })
    .await;
    assert!(
        refused_within.is_some(),
        "the second node still grants a revoked permission"
    );

    // Given back, then the assignment itself removed: the same, through the user's entry.
    let restored = send(
        &owner,
        Method::PUT,
        "/v1/admin/roles/people-reader",
        Some(json!({"permissions": ["users:read"]})),
    )
    .await;
    assert_eq!(restored.status(), StatusCode::OK);
    let granted_within = TestApp::eventually(Duration::from_secs(1), || {
        let check = on_second();
        async move { check.await == StatusCode::OK }
    })
    .await;
    assert!(granted_within.is_some());
    let removed = send(
        &owner,
        Method::PUT,
        &format!("/v1/admin/users/{reader_id}/roles"),
        Some(json!({"roles": ["viewer"]})),
    )
    .await;
    assert_eq!(removed.status(), StatusCode::OK);
    let refused_within = TestApp::eventually(Duration::from_secs(1), || {
        let check = on_second();
        async move { check.await == StatusCode::FORBIDDEN }
    })
    .await;
    assert!(
        refused_within.is_some(),
        "the second node still honours a removed role"
    );
}
