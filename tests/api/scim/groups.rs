//! SCIM Groups, and the tenant admin's mapping of a group to a role: members hold the role
//! while they are members, wherever the membership changes.

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::{unique_address, TestApp};

use super::{directory, group_document, id_of, user_document};

#[tokio::test]
async fn a_group_mapped_to_a_role_gives_it_to_its_members_and_takes_it_back() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    let mut members = Vec::new();
    for name in ["ada", "alan"] {
        let user = scim
            .scim()
            .post("Users", &user_document(name, &unique_address(name)))
            .await
            .unwrap()
            .value();
        members.push(id_of(&user));
    }
    let (ada, alan) = (members[0], members[1]);
    let created = scim
        .scim()
        .post("Groups", &group_document("Engineering", &[ada]))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let group = created.value();
    let group_id = id_of(&group);
    assert_eq!(group["members"][0]["value"], ada.to_string());
    // The user shows the group they are in.
    let seen = scim
        .scim()
        .get(&format!("Users/{ada}"))
        .await
        .unwrap()
        .value();
    assert_eq!(seen["groups"][0]["display"], "Engineering");
    // Not mapped yet: a member's roles are their own.
    assert_eq!(owner.users().get(ada).await.unwrap().roles, ["member"]);

    let mapped = owner
        .put(format!("/v1/admin/scim/groups/{group_id}/role"))
        .json(&json!({ "role": "developer" }))
        .send()
        .await
        .unwrap();
    assert_eq!(mapped.status(), StatusCode::OK, "{}", mapped.text());
    assert_eq!(mapped.value()["members"], 1);
    assert_eq!(
        owner.users().get(ada).await.unwrap().roles,
        ["developer", "member"]
    );
    assert_eq!(owner.users().get(alan).await.unwrap().roles, ["member"]);

    // Okta adds a member; Entra removes one with its value list; Okta removes by filter.
    let added = scim
        .scim()
        .patch(
            &format!("Groups/{group_id}"),
            &[json!({"op": "add", "path": "members", "value": [{"value": alan.to_string(), "display": "alan"}]})],
        )
        .await
        .unwrap();
    assert_eq!(added.status(), StatusCode::OK, "{}", added.text());
    assert!(owner
        .users()
        .get(alan)
        .await
        .unwrap()
        .roles
        .contains(&"developer".to_owned()));
    let removed = scim
        .scim()
        .patch(
            &format!("Groups/{group_id}"),
            &[json!({"op": "Remove", "path": "members", "value": [{"value": ada.to_string()}]})],
        )
        .await
        .unwrap();
    assert_eq!(removed.status(), StatusCode::OK, "{}", removed.text());
    assert_eq!(owner.users().get(ada).await.unwrap().roles, ["member"]);
    assert!(owner
        .users()
        .get(alan)
        .await
        .unwrap()
        .roles
        .contains(&"developer".to_owned()));

    let listed = owner
        .get("/v1/admin/scim/groups")
        .send()
        .await
        .unwrap()
        .value();
    assert_eq!(
        listed,
        json!([{
            "id": group_id.to_string(),
            "display_name": "Engineering",
            "external_id": null,
            "role": "developer",
            "members": 1,
        }])
    );

    // The group goes: so does the role it gave.
    let deleted = scim
        .scim()
        .delete(&format!("Groups/{group_id}"))
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(owner.users().get(alan).await.unwrap().roles, ["member"]);
}

#[tokio::test]
async fn a_group_gives_no_owner_role_no_unknown_role_and_nothing_beyond_its_mappers_permissions() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    let group = scim
        .scim()
        .post("Groups", &group_document("Admins", &[]))
        .await
        .unwrap()
        .value();
    let path = format!(
        "/v1/admin/scim/groups/{}/role",
        group["id"].as_str().unwrap()
    );
    for (role, status, code) in [
        ("owner", StatusCode::BAD_REQUEST, "invalid_input"),
        ("no-such-role", StatusCode::BAD_REQUEST, "unknown_role"),
    ] {
        let refused = owner
            .put(&path)
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(refused.error_code(), (status, code), "{role}");
    }
    // An admin (not an owner) cannot hand out what they lack: a role granting everything.
    owner
        .roles()
        .create("superpowers", "everything", &["*:*"], &[])
        .await
        .unwrap();
    let admin_email = unique_address("admin");
    app.invite_and_activate(&owner, &admin_email, &["admin"])
        .await;
    let admin = app
        .signed_in("acme", &admin_email, tenantry_tests::PASSWORD)
        .await;
    let refused = admin
        .put(&path)
        .json(&json!({ "role": "superpowers" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.error_code(),
        (StatusCode::FORBIDDEN, "privilege_escalation")
    );
    let listed = owner
        .get("/v1/admin/scim/groups")
        .send()
        .await
        .unwrap()
        .value();
    assert_eq!(listed[0]["role"], json!(null));
}

#[tokio::test]
async fn group_names_are_unique_and_members_are_users_of_this_tenant() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let other = app.tenant_with_owner("globex").await;
    let scim = directory(&app, "acme", &owner).await;
    let globex_user = other.me().get().await.unwrap().id;
    let group = |name: &str, members: serde_json::Value| json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": name, "members": members});
    let first = scim
        .scim()
        .post("Groups", &group("Sales", json!([])))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let again = scim
        .scim()
        .post("Groups", &group("sales", json!([])))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::CONFLICT);
    assert_eq!(again.value()["scimType"], "uniqueness");
    for members in [
        json!([{"value": globex_user.to_string()}]),
        json!([{"value": "not-an-id"}]),
        json!([{"value": first.value()["id"], "type": "Group"}]),
    ] {
        let refused = scim
            .scim()
            .post("Groups", &group("Support", members.clone()))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{members}");
        assert_eq!(refused.value()["scimType"], "invalidValue");
    }
    let found = scim
        .scim()
        .list("Groups?filter=displayName%20eq%20%22Support%22")
        .await
        .unwrap();
    assert!(found.is_empty(), "a refused group was kept");
}

#[tokio::test]
async fn the_consoles_directory_page_makes_a_directory_token_and_maps_its_groups_to_roles() {
    let app = TestApp::spawn().await;
    let owner_email = unique_address("owner");
    app.tenant_with_active_admin("acme", &owner_email, tenantry_tests::PASSWORD)
        .await;
    app.raise_rate_limits("acme").await;
    let mut console = tenantry_tests::console::Browser::new_for(&app, "acme");
    console
        .sign_in(&owner_email, tenantry_tests::PASSWORD)
        .await;
    let page = "/console/admin/directory";

    // What to give the directory, and nothing mapped yet.
    let shown = console.get(page).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.html);
    assert!(
        shown
            .html
            .contains("<code id=\"scim-url\">https://acme.tenantry.test/scim/v2</code>"),
        "{}",
        shown.html
    );
    assert!(shown.html.contains("id=\"no-groups\""));
    assert!(console
        .get("/console")
        .await
        .html
        .contains("href=\"/console/admin/directory\""));

    // The page's token: an API key with the SCIM scope, shown once; the directory uses it.
    let made = console
        .submit(
            page,
            "/console/admin/api-keys",
            &[("name", "directory"), ("scopes", "scim:manage")],
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.html);
    let key = made
        .html
        .split("<code id=\"revealed-key\">")
        .nth(1)
        .and_then(|rest| rest.split('<').next())
        .expect("the new key is shown")
        .to_owned();
    let scim = app.tenant("acme").with_bearer(&key);
    let ada = id_of(
        &scim
            .scim()
            .post("Users", &user_document("ada", &unique_address("ada")))
            .await
            .unwrap()
            .value(),
    );
    let group = scim
        .scim()
        .post("Groups", &group_document("Engineering", &[ada]))
        .await
        .unwrap();
    assert_eq!(group.status(), StatusCode::CREATED, "{}", group.text());
    let group_id = id_of(&group.value());
    let action = format!("/console/admin/directory/groups/{group_id}/role");

    // The group is listed; an unknown role is refused beside it and changes nothing.
    let listed = console.get(page).await;
    assert!(
        listed.html.contains(&format!("data-group=\"{group_id}\""))
            && listed.html.contains("<td>Engineering</td><td>1</td>"),
        "{}",
        listed.html
    );
    assert!(
        !listed.html.contains("<option value=\"owner\""),
        "owner is never offered"
    );
    let refused = console
        .submit(page, &action, &[("role", "no-such-role")])
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(refused.html.contains("id=\"directory-error\""));
    let ada_roles = || async {
        app.count_in("acme", &format!("user_roles WHERE user_id = '{ada}'"))
            .await
    };
    assert_eq!(ada_roles().await, 1, "member only");

    // Mapped: the member holds the role at once; mapped to none: it is gone again.
    let mapped = console
        .submit(page, &action, &[("role", "developer")])
        .await;
    assert_eq!(mapped.status, StatusCode::SEE_OTHER, "{}", mapped.html);
    assert_eq!(
        app.count_in(
            "acme",
            &format!("user_roles WHERE user_id = '{ada}' AND role_name = 'developer'")
        )
        .await,
        1
    );
    assert!(console
        .get(page)
        .await
        .html
        .contains("<option value=\"developer\" selected>developer</option>"));
    let unmapped = console.submit(page, &action, &[("role", "")]).await;
    assert_eq!(unmapped.status, StatusCode::SEE_OTHER, "{}", unmapped.html);
    assert_eq!(ada_roles().await, 1, "member only again");

    // A member of the tenant without the SCIM permission does not get the page.
    let member_email = unique_address("member");
    let owner = app
        .signed_in("acme", &owner_email, tenantry_tests::PASSWORD)
        .await;
    app.invite_and_activate(&owner, &member_email, &["member"])
        .await;
    let mut member = tenantry_tests::console::Browser::new_for(&app, "acme");
    member
        .sign_in(&member_email, tenantry_tests::PASSWORD)
        .await;
    assert_eq!(member.get(page).await.status, StatusCode::FORBIDDEN);
    assert!(!member
        .get("/console")
        .await
        .html
        .contains("/console/admin/directory"));
}
