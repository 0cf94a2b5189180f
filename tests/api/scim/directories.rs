//! The requests Okta and Entra ID send, as their provisioning documentation and validators
//! show them (their non-standard shapes included), replayed in the order they send them.

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::{unique_address, Client, TestApp};

use super::{directory, id_of};

async fn ok(reply: tenantry_tests::Reply, expected: StatusCode, step: &str) -> Value {
    assert_eq!(reply.status(), expected, "{step}: {}", reply.text());
    if expected == StatusCode::NO_CONTENT {
        return Value::Null;
    }
    reply.value()
}

async fn spawn() -> (TestApp, Client, Client) {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    (app, owner, scim)
}

#[tokio::test]
async fn okta_provisions_updates_deactivates_and_groups_a_user() {
    let (app, owner, scim) = spawn().await;
    let scim = scim.scim();
    let email = unique_address("okta.user");
    let lookup = format!("Users?filter=userName%20eq%20%22{email}%22&startIndex=1&count=100");
    let none = ok(scim.get(&lookup).await.unwrap(), StatusCode::OK, "lookup").await;
    assert_eq!(none["totalResults"], 0);
    let user = ok(
        scim.post(
            "Users",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": email,
                "name": { "givenName": "Test", "familyName": "User" },
                "emails": [{ "primary": true, "value": email, "type": "work" }],
                "displayName": "Test User",
                "locale": "en-US",
                "externalId": "00ujl29u0le5T6Aj10h7",
                "groups": [],
                "password": "1mz050nq",
                "active": true
            }),
        )
        .await
        .unwrap(),
        StatusCode::CREATED,
        "create",
    )
    .await;
    let id = id_of(&user);
    assert_eq!(user["locale"], "en-US");
    assert!(user.get("password").is_none(), "a password is never shown");
    let found = ok(scim.get(&lookup).await.unwrap(), StatusCode::OK, "lookup").await;
    assert_eq!(found["totalResults"], 1);

    // Profile push: the whole user, as Okta read it, with one change.
    let mut profile = ok(
        scim.get(&format!("Users/{id}")).await.unwrap(),
        StatusCode::OK,
        "get",
    )
    .await;
    profile["name"]["familyName"] = json!("Userton");
    profile["displayName"] = json!("Test Userton");
    let replaced = ok(
        scim.put(&format!("Users/{id}"), &profile).await.unwrap(),
        StatusCode::OK,
        "put",
    )
    .await;
    assert_eq!(replaced["name"]["familyName"], "Userton");
    assert_eq!(
        owner.users().get(id).await.unwrap().display_name,
        "Test Userton"
    );

    // Groups: pushed empty, renamed with its id in the value, members added and removed.
    let group = ok(
        scim.post(
            "Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "displayName": "Test SCIMv2",
                "members": []
            }),
        )
        .await
        .unwrap(),
        StatusCode::CREATED,
        "group create",
    )
    .await;
    let group_id = id_of(&group);
    let path = format!("Groups/{group_id}");
    let renamed = ok(
        scim.patch(&path, &[json!({"op": "replace", "value": {"id": group_id.to_string(), "displayName": "Okta Engineers"}})])
            .await
            .unwrap(),
        StatusCode::OK,
        "rename",
    )
    .await;
    assert_eq!(renamed["displayName"], "Okta Engineers");
    let added = ok(
        scim.patch(&path, &[json!({"op": "add", "path": "members", "value": [{"value": id.to_string(), "display": email}]})])
            .await
            .unwrap(),
        StatusCode::OK,
        "add member",
    )
    .await;
    assert_eq!(added["members"].as_array().unwrap().len(), 1);
    let removed = ok(
        scim.patch(
            &path,
            &[json!({"op": "remove", "path": format!("members[value eq \"{id}\"]")})],
        )
        .await
        .unwrap(),
        StatusCode::OK,
        "remove member",
    )
    .await;
    assert!(removed.get("members").is_none(), "{removed}");

    // Deactivation, then the group's deletion.
    let deactivated = ok(
        scim.patch(
            &format!("Users/{id}"),
            &[json!({"op": "replace", "value": {"active": false}})],
        )
        .await
        .unwrap(),
        StatusCode::OK,
        "deactivate",
    )
    .await;
    assert_eq!(deactivated["active"], false);
    assert_eq!(owner.users().get(id).await.unwrap().status, "disabled");
    ok(
        scim.delete(&path).await.unwrap(),
        StatusCode::NO_CONTENT,
        "group delete",
    )
    .await;

    // Audited: each change names the user (or group) and the directory's key as its actor.
    let tenant = app.tenant_id("acme").await;
    for (action, resource) in [
        ("scim.users.create", id),
        ("scim.users.replace", id),
        ("scim.users.patch", id),
        ("scim.groups.create", group_id),
        ("scim.groups.delete", group_id),
    ] {
        app.wait_for_audit_events(&tenant, action, 1, std::time::Duration::from_secs(10))
            .await;
        let page = owner
            .audit(&tenantry_tests::client::AuditQuery {
                action: Some(action.to_owned()),
                resource_id: Some(resource.to_string()),
                ..Default::default()
            })
            .await
            .unwrap();
        let event = page
            .events
            .first()
            .unwrap_or_else(|| panic!("no {action} event"));
        assert_eq!(event.actor["type"], "api_key", "{action}: {event:?}");
        assert_eq!(event.result, "success");
    }
}

#[tokio::test]
async fn entra_id_provisions_updates_with_its_own_patch_shapes_and_removes_a_user() {
    let (_app, owner, scim) = spawn().await;
    let scim = scim.scim();
    let user_name = format!("Test_User_{}", uuid::Uuid::new_v4());
    let email = unique_address("entra");
    let none = ok(
        scim.get(&format!("Users?filter=userName+eq+%22{user_name}%22"))
            .await
            .unwrap(),
        StatusCode::OK,
        "lookup",
    )
    .await;
    assert_eq!(none["totalResults"], 0);
    let user = ok(
        scim.post("Users", &json!({
            "schemas": [
                "urn:ietf:params:scim:schemas:core:2.0:User",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
            ],
            "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
            "userName": user_name,
            "active": true,
            "emails": [{ "primary": true, "type": "work", "value": email }],
            "meta": { "resourceType": "User" },
            "name": { "formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName" },
            "roles": [],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Research" }
        }))
        .await
        .unwrap(),
        StatusCode::CREATED,
        "create",
    )
    .await;
    let id = id_of(&user);
    assert_eq!(
        user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "Research"
    );
    assert!(user["schemas"].as_array().unwrap().contains(&json!(
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
    )));
    let path = format!("Users/{id}");

    let new_email = unique_address("entra.updated");
    let patched = ok(
        scim.patch(&path, &[
            json!({"op": "Replace", "path": "emails[type eq \"work\"].value", "value": new_email}),
            json!({"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"}),
            json!({"op": "Add", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager", "value": "26118915-6090-4610-87e4-49d8ca9f808d"}),
        ])
        .await
        .unwrap(),
        StatusCode::OK,
        "patch",
    )
    .await;
    assert_eq!(patched["emails"][0]["value"], new_email);
    assert_eq!(patched["name"]["familyName"], "updatedFamilyName");
    assert_eq!(
        patched["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["manager"]["value"],
        "26118915-6090-4610-87e4-49d8ca9f808d"
    );
    // The address the tenant signs them in with follows the directory's.
    assert_eq!(owner.users().get(id).await.unwrap().email, new_email);

    // Groups, looked up by name with members left out, filled and emptied.
    let group = ok(
        scim.post(
            "Groups",
            &json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
                "displayName": "Entra Group",
                "meta": { "resourceType": "Group" }
            }),
        )
        .await
        .unwrap(),
        StatusCode::CREATED,
        "group create",
    )
    .await;
    let group_id = id_of(&group);
    let group_path = format!("Groups/{group_id}");
    ok(
        scim.patch(
            &group_path,
            &[json!({"op": "Add", "path": "members", "value": [{"value": id.to_string()}]})],
        )
        .await
        .unwrap(),
        StatusCode::OK,
        "add member",
    )
    .await;
    let slim = ok(
        scim.get("Groups?filter=displayName+eq+%22Entra+Group%22&excludedAttributes=members")
            .await
            .unwrap(),
        StatusCode::OK,
        "group lookup",
    )
    .await;
    assert_eq!(slim["totalResults"], 1);
    assert!(slim["Resources"][0].get("members").is_none());
    let one = ok(
        scim.get(&format!("{group_path}?excludedAttributes=members"))
            .await
            .unwrap(),
        StatusCode::OK,
        "group get",
    )
    .await;
    assert_eq!(
        (one["displayName"].clone(), one.get("members")),
        (json!("Entra Group"), None)
    );
    let full = ok(
        scim.get(&group_path).await.unwrap(),
        StatusCode::OK,
        "group get",
    )
    .await;
    assert_eq!(full["members"][0]["value"], id.to_string());
    let emptied = ok(
        scim.patch(
            &group_path,
            &[
                json!({"op": "Replace", "path": "displayName", "value": "Entra Group Renamed"}),
                json!({"op": "Remove", "path": "members", "value": [{"value": id.to_string()}]}),
            ],
        )
        .await
        .unwrap(),
        StatusCode::OK,
        "remove member",
    )
    .await;
    assert_eq!(emptied["displayName"], "Entra Group Renamed");
    assert!(emptied.get("members").is_none());

    // Entra's booleans are strings.
    let disabled = ok(
        scim.patch(
            &path,
            &[json!({"op": "Replace", "path": "active", "value": "False"})],
        )
        .await
        .unwrap(),
        StatusCode::OK,
        "disable",
    )
    .await;
    assert_eq!(disabled["active"], false);
    ok(
        scim.delete(&path).await.unwrap(),
        StatusCode::NO_CONTENT,
        "delete",
    )
    .await;
    ok(
        scim.get(&path).await.unwrap(),
        StatusCode::NOT_FOUND,
        "deleted",
    )
    .await;
}
