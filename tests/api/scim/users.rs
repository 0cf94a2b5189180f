//! SCIM Users: what a directory creates, finds, changes, deactivates and deletes, under the
//! users admin's rules (sessions end everywhere, owners stay, `max_users` holds).

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::{unique_address, TestApp, TestOptions, PASSWORD};

use super::{directory, group_document, id_of, user_document};

#[tokio::test]
async fn a_directory_creates_a_user_and_finds_them_by_user_name_and_external_id() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    let email = unique_address("grace");
    let mut document = user_document("Grace.Hopper", &email);
    document["externalId"] = json!("00u1abcd");

    let created = scim.scim().post("Users", &document).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        created.header("content-type"),
        Some("application/scim+json")
    );
    let user = created.value();
    let id = id_of(&user);
    assert_eq!(
        created.header("location"),
        user["meta"]["location"].as_str()
    );
    assert_eq!(user["userName"], "Grace.Hopper");
    assert_eq!(user["active"], true);
    assert_eq!(user["name"]["familyName"], "Hopper");
    assert_eq!(user["meta"]["resourceType"], "User");

    // The tenant's own user, active, with the directory's address, seen by the admin API.
    let seen = owner.users().get(id).await.unwrap();
    assert_eq!(
        (seen.email.as_str(), seen.status.as_str()),
        (email.as_str(), "active")
    );
    assert_eq!(seen.roles, ["member"]);

    // Found the way directories look a user up before creating them: userName without case.
    for filter in [
        "userName%20eq%20%22grace.hopper%22".to_owned(),
        "externalId%20eq%20%2200u1abcd%22".to_owned(),
        format!("emails.value%20eq%20%22{email}%22"),
    ] {
        let found = scim
            .scim()
            .list(&format!("Users?filter={filter}"))
            .await
            .unwrap();
        assert_eq!(found.len(), 1, "{filter}");
        assert_eq!(id_of(&found[0]), id);
    }
    let none = scim
        .scim()
        .get("Users?filter=userName%20eq%20%22nobody%22")
        .await
        .unwrap()
        .value();
    assert_eq!(
        (none["totalResults"].clone(), none["Resources"].clone()),
        (json!(0), json!([]))
    );

    // The same userName again, in another case, or another user's address: 409 uniqueness.
    for clash in [
        user_document("GRACE.HOPPER", &unique_address("other")),
        user_document("someone-else", &email),
    ] {
        let refused = scim.scim().post("Users", &clash).await.unwrap();
        assert_eq!(refused.status(), StatusCode::CONFLICT);
        let error = refused.value();
        assert_eq!(error["scimType"], "uniqueness");
        assert_eq!(
            error["schemas"],
            json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
        );
    }
}

#[tokio::test]
async fn a_directory_given_user_name_is_nobody_elses_address_and_no_invitation_or_registration_takes_it(
) {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    app.allow_self_signup("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    // The directory names a user by one address and mails them at another.
    let name = unique_address("named");
    let created = scim
        .scim()
        .post("Users", &user_document(&name, &unique_address("mailed")))
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let id = id_of(&created.value());
    let before = app.count_in("acme", "users").await;

    // An invitation to that address: 409, as for any address taken.
    let invited = owner
        .users()
        .invite(&name.to_uppercase(), &["member"])
        .await
        .unwrap_err();
    assert_eq!(invited.status(), Some(StatusCode::CONFLICT));
    assert_eq!(invited.code(), Some("user_exists"));
    // A registration: the same answer as ever, and nothing made.
    owner
        .anonymous()
        .auth()
        .register(&name, "a long enough passphrase 1", None)
        .await
        .unwrap();
    assert_eq!(app.count_in("acme", "users").await, before);
    // The userName still answers for that one user.
    let found = scim
        .scim()
        .list(&format!("Users?filter=userName%20eq%20%22{name}%22"))
        .await
        .unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(id_of(&found[0]), id);
}

#[tokio::test]
async fn a_user_needs_an_address_and_an_email_shaped_user_name_is_one() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    let nameless = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "jdoe",
    });
    let refused = scim.scim().post("Users", &nameless).await.unwrap();
    assert_eq!(refused.status(), StatusCode::BAD_REQUEST);
    assert_eq!(refused.value()["scimType"], "invalidValue");
    assert!(scim
        .scim()
        .list("Users?filter=userName%20eq%20%22jdoe%22")
        .await
        .unwrap()
        .is_empty());

    let email = unique_address("okta");
    let okta_style = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": email,
    });
    let created = scim.scim().post("Users", &okta_style).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let seen = owner.users().get(id_of(&created.value())).await.unwrap();
    assert_eq!(seen.email, email);
}

#[tokio::test]
async fn deactivation_ends_every_session_on_every_node_within_a_second_and_reactivation_restores_sign_in(
) {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    // A user who signed up before the directory was connected: the directory finds them by
    // their address and takes them over.
    let email = unique_address("leaver");
    let user_id = app.invite_and_activate(&owner, &email, &["member"]).await;
    let tokens = app.sign_in_tokens("acme", &email, PASSWORD).await;
    let (_node, second) = app.spawn_data_node(&TestOptions::default()).await;
    let on_second = app
        .as_bearer("acme", tokens.access_token.expose())
        .on(&second);
    assert_eq!(
        on_second.get("/v1/me").send().await.unwrap().status(),
        StatusCode::OK
    );
    let found = scim
        .scim()
        .list(&format!("Users?filter=userName%20eq%20%22{email}%22"))
        .await
        .unwrap();
    assert_eq!(found.iter().map(id_of).collect::<Vec<_>>(), [user_id]);

    // Okta's deactivation.
    let patched = scim
        .scim()
        .patch(
            &format!("Users/{user_id}"),
            &[json!({"op": "replace", "value": {"active": false}})],
        )
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    assert_eq!(patched.value()["active"], false);
    let refused = TestApp::eventually(Duration::from_secs(1), || async {
        on_second.get("/v1/me").send().await.unwrap().status() == StatusCode::UNAUTHORIZED
    })
    .await;
    assert!(
        refused.is_some(),
        "the second node still accepts the token after a second"
    );
    let login = app
        .tenant("acme")
        .post("/v1/auth/login")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        login.error_code(),
        (StatusCode::FORBIDDEN, "account_disabled")
    );
    assert_eq!(owner.users().get(user_id).await.unwrap().status, "disabled");

    // Reactivated by a PUT of the whole user.
    let mut document = found[0].clone();
    document["active"] = json!(true);
    let replaced = scim
        .scim()
        .put(&format!("Users/{user_id}"), &document)
        .await
        .unwrap();
    assert_eq!(replaced.status(), StatusCode::OK);
    let again = app.signed_in("acme", &email, PASSWORD).await.on(&second);
    assert_eq!(
        again.get("/v1/me").send().await.unwrap().status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn deletion_erases_the_user_and_ends_their_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    let email = unique_address("gone");
    let user_id = app.invite_and_activate(&owner, &email, &["member"]).await;
    let user = app.signed_in("acme", &email, PASSWORD).await;

    let deleted = scim
        .scim()
        .delete(&format!("Users/{user_id}"))
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        user.get("/v1/me").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let missing = scim.scim().get(&format!("Users/{user_id}")).await.unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
    assert_eq!(missing.value()["status"], "404");
    let admin_view = owner.users().get(user_id).await.unwrap_err();
    assert_eq!(admin_view.status(), Some(StatusCode::NOT_FOUND));
    let again = scim
        .scim()
        .delete(&format!("Users/{user_id}"))
        .await
        .unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn users_a_directory_creates_count_against_max_users() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    // The owner holds one seat; one more is left.
    app.set_quotas("acme", json!({"max_users": 2})).await;
    let first = scim
        .scim()
        .post("Users", &user_document("first", &unique_address("first")))
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    let over = scim
        .scim()
        .post("Users", &user_document("second", &unique_address("second")))
        .await
        .unwrap();
    assert_eq!(over.status(), StatusCode::FORBIDDEN);
    assert!(
        over.value()["detail"]
            .as_str()
            .unwrap()
            .contains("max_users"),
        "{}",
        over.text()
    );
    assert!(scim
        .scim()
        .list("Users?filter=userName%20eq%20%22second%22")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn the_last_owner_stays_and_only_an_owners_key_changes_owners() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let owner_id = owner.me().get().await.unwrap().id;
    let owners_directory = directory(&app, "acme", &owner).await;
    let last = owners_directory
        .scim()
        .patch(
            &format!("Users/{owner_id}"),
            &[json!({"op": "replace", "path": "active", "value": false})],
        )
        .await
        .unwrap();
    assert_eq!(last.status(), StatusCode::CONFLICT, "{}", last.text());
    let deleted = owners_directory
        .scim()
        .delete(&format!("Users/{owner_id}"))
        .await
        .unwrap();
    assert_eq!(deleted.status(), StatusCode::CONFLICT);

    // An admin who is not an owner makes a key: it may not touch the owner at all.
    let admin_email = unique_address("admin");
    app.invite_and_activate(&owner, &admin_email, &["admin"])
        .await;
    let admin = app.signed_in("acme", &admin_email, PASSWORD).await;
    let admins_directory = directory(&app, "acme", &admin).await;
    let renamed = admins_directory
        .scim()
        .patch(
            &format!("Users/{owner_id}"),
            &[json!({"op": "replace", "path": "displayName", "value": "Mallory"})],
        )
        .await
        .unwrap();
    assert_eq!(renamed.status(), StatusCode::FORBIDDEN);
    assert_ne!(owner.me().get().await.unwrap().display_name, "Mallory");
}

#[tokio::test]
async fn bad_filters_paths_and_values_get_scim_errors_and_change_nothing() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    let scim = directory(&app, "acme", &owner).await;
    let created = scim
        .scim()
        .post("Users", &user_document("steady", &unique_address("steady")))
        .await
        .unwrap()
        .value();
    let path = format!("Users/{}", created["id"].as_str().unwrap());

    for filter in [
        "userName%20eq",
        "userName%20foo%20%22x%22",
        "(userName%20eq%20%22x%22",
        "userName%20eq%20%22x",
    ] {
        let refused = scim
            .scim()
            .get(&format!("Users?filter={filter}"))
            .await
            .unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{filter}");
        assert_eq!(refused.value()["scimType"], "invalidFilter", "{filter}");
    }
    let cases = [
        (
            json!({"op": "replace", "path": "emails[type eq", "value": "x"}),
            "invalidPath",
        ),
        (
            json!({"op": "replace", "path": "shoeSize", "value": 42}),
            "invalidPath",
        ),
        (
            json!({"op": "replace", "path": "active", "value": "maybe"}),
            "invalidValue",
        ),
        (json!({"op": "remove"}), "noTarget"),
        (
            json!({"op": "replace", "path": "groups", "value": []}),
            "mutability",
        ),
        (
            json!({"op": "frobnicate", "path": "active", "value": true}),
            "invalidSyntax",
        ),
    ];
    for (bad, scim_type) in cases {
        // A good operation first: the request is all or nothing.
        let operations = [
            json!({"op": "replace", "path": "displayName", "value": "Changed"}),
            bad.clone(),
        ];
        let refused = scim.scim().patch(&path, &operations).await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(
            refused.value()["scimType"],
            scim_type,
            "{bad}: {}",
            refused.text()
        );
    }
    let unchanged = scim.scim().get(&path).await.unwrap().value();
    assert_eq!(unchanged, created);

    let not_json = app
        .tenant("acme")
        .with_bearer(scim.access_token().await.unwrap().unwrap().expose())
        .post("/scim/v2/Users")
        .body("{\"userName\": ", "application/scim+json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(not_json.value()["scimType"], "invalidSyntax");
    let wrong_type = scim
        .post("/scim/v2/Users")
        .body(
            user_document("typed", &unique_address("typed")).to_string(),
            "text/plain",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_type.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(
        wrong_type.header("content-type"),
        Some("application/scim+json")
    );
}

#[tokio::test]
async fn only_a_key_granted_scim_manage_of_this_tenant_gets_in() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let other_owner = app.tenant_with_owner("globex").await;
    let records_key = owner
        .api_keys()
        .create(&tenantry_tests::client::NewKey::new(
            "records",
            &["records:read"],
        ))
        .await
        .unwrap();
    let globex_directory = directory(&app, "globex", &other_owner).await;
    let globex_key = globex_directory.access_token().await.unwrap().unwrap();

    let anonymous = app.tenant("acme").scim().get("Users").await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        anonymous.value()["schemas"],
        json!(["urn:ietf:params:scim:api:messages:2.0:Error"])
    );
    let unscoped = app
        .tenant("acme")
        .with_bearer(records_key.key.expose())
        .scim()
        .get("Users")
        .await
        .unwrap();
    assert_eq!(unscoped.status(), StatusCode::FORBIDDEN);
    assert_eq!(unscoped.value()["status"], "403");
    let foreign = app
        .tenant("acme")
        .with_bearer(globex_key.expose())
        .scim()
        .get("Users")
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::UNAUTHORIZED);

    // Revoked: refused at once.
    let acme_directory = directory(&app, "acme", &owner).await;
    assert_eq!(
        acme_directory.scim().get("Users").await.unwrap().status(),
        StatusCode::OK
    );
    let keys = owner.api_keys().list().await.unwrap();
    let key = keys.iter().find(|key| key.name == "directory").unwrap();
    owner.api_keys().revoke(key.id).await.unwrap();
    assert_eq!(
        acme_directory.scim().get("Users").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn lists_page_with_start_index_and_count_and_show_only_the_attributes_asked_for() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    app.set_quotas("acme", json!({"max_users": 100})).await;
    let scim = directory(&app, "acme", &owner).await;
    for index in 0..5 {
        let reply = scim
            .scim()
            .post(
                "Users",
                &user_document(&format!("paged-{index}"), &unique_address("paged")),
            )
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::CREATED);
    }
    let filter = "filter=userName%20sw%20%22paged-%22";
    let page = scim
        .scim()
        .get(&format!("Users?{filter}&startIndex=2&count=2"))
        .await
        .unwrap()
        .value();
    assert_eq!(page["totalResults"], 5);
    assert_eq!(page["startIndex"], 2);
    assert_eq!(page["itemsPerPage"], 2);
    let names: Vec<&str> = page["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|user| user["userName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["paged-1", "paged-2"]);

    let slim = scim
        .scim()
        .get(&format!("Users?{filter}&attributes=userName"))
        .await
        .unwrap()
        .value();
    let first = &slim["Resources"][0];
    assert!(first["userName"].is_string() && first["id"].is_string());
    assert!(
        first.get("emails").is_none() && first.get("name").is_none(),
        "{first}"
    );
    let without_emails = scim
        .scim()
        .post(
            "Users/.search",
            &json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
                "filter": "userName sw \"paged-\"",
                "excludedAttributes": ["emails"],
                "count": 1,
            }),
        )
        .await
        .unwrap()
        .value();
    assert_eq!(without_emails["totalResults"], 5);
    let first = &without_emails["Resources"][0];
    assert!(
        first.get("emails").is_none() && first["name"].is_object(),
        "{first}"
    );
}

#[tokio::test]
async fn concurrent_patches_of_one_user_and_one_group_each_take_effect() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    app.set_quotas("acme", json!({"max_users": 100})).await;
    let scim = directory(&app, "acme", &owner).await;
    let user = scim
        .scim()
        .post("Users", &user_document("busy", &unique_address("busy")))
        .await
        .unwrap()
        .value();
    let user_path = format!("Users/{}", user["id"].as_str().unwrap());
    let group = scim
        .scim()
        .post("Groups", &group_document("Busy", &[]))
        .await
        .unwrap()
        .value();
    let group_path = format!("Groups/{}", group["id"].as_str().unwrap());
    let mut members = Vec::new();
    for index in 0..8 {
        let member = scim
            .scim()
            .post(
                "Users",
                &user_document(&format!("member-{index}"), &unique_address("member")),
            )
            .await
            .unwrap()
            .value();
        members.push(member["id"].as_str().unwrap().to_owned());
    }

    let patches = (0..8).map(|index| {
        let scim = scim.clone();
        let (user_path, group_path, member) = (user_path.clone(), group_path.clone(), members[index].clone());
        async move {
            let number = json!({"op": "add", "path": "phoneNumbers", "value": [{"value": format!("+1555000{index}"), "type": "work"}]});
            let joined = json!({"op": "add", "path": "members", "value": [{"value": member}]});
            let (user_number, group_member) = ([number], [joined]);
            let (user_api, group_api) = (scim.scim(), scim.scim());
            let (user, group) = tokio::join!(
                user_api.patch(&user_path, &user_number),
                group_api.patch(&group_path, &group_member),
            );
            (user.unwrap().status(), group.unwrap().status())
        }
    });
    for (user, group) in futures_util::future::join_all(patches).await {
        assert_eq!((user, group), (StatusCode::OK, StatusCode::OK));
    }
    let user = scim.scim().get(&user_path).await.unwrap().value();
    assert_eq!(user["phoneNumbers"].as_array().unwrap().len(), 8, "{user}");
    let group = scim.scim().get(&group_path).await.unwrap().value();
    assert_eq!(group["members"].as_array().unwrap().len(), 8, "{group}");
}

#[tokio::test]
async fn a_directory_may_erase_the_user_whose_key_it_uses_and_their_records_go_to_an_owner() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let admin_email = unique_address("admin");
    let admin_id = app
        .invite_and_activate(&owner, &admin_email, &["admin"])
        .await;
    let admin = app.signed_in("acme", &admin_email, PASSWORD).await;
    let record = admin
        .records("notes")
        .create(&json!({"text": "the admin's"}))
        .await
        .unwrap();
    let scim = directory(&app, "acme", &admin).await;

    let deleted = scim
        .scim()
        .delete(&format!("Users/{admin_id}"))
        .await
        .unwrap();
    assert_eq!(
        deleted.status(),
        StatusCode::NO_CONTENT,
        "{}",
        deleted.text()
    );
    // The record stays, now the longest-standing owner's; the key grants nothing once its
    // maker is gone.
    let kept = owner.records("notes").get(record.id).await.unwrap();
    assert_eq!(kept.owner_id, Some(owner.me().get().await.unwrap().id));
    assert_eq!(
        scim.scim().get("Users").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn concurrent_creates_of_one_user_name_make_one_user_and_the_others_get_409_uniqueness() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.raise_rate_limits("acme").await;
    app.set_quotas("acme", json!({"max_users": 100})).await;
    let scim = directory(&app, "acme", &owner).await;
    // Eight creates of one userName at once, each with its own address: one user, and the
    // others refused as a directory expects (never a 500, never two users of one name).
    let creates = (0..8).map(|index| {
        let scim = scim.clone();
        async move {
            let document = user_document("Racer", &unique_address(&format!("racer{index}")));
            scim.scim().post("Users", &document).await.unwrap()
        }
    });
    let answers = futures_util::future::join_all(creates).await;
    let statuses: Vec<StatusCode> = answers.iter().map(|answer| answer.status()).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == StatusCode::CREATED)
            .count(),
        1,
        "{statuses:?}"
    );
    for refused in answers
        .iter()
        .filter(|answer| answer.status() != StatusCode::CREATED)
    {
        assert_eq!(refused.status(), StatusCode::CONFLICT, "{}", refused.text());
        assert_eq!(refused.value()["scimType"], "uniqueness");
    }
    assert_eq!(
        app.count_in("acme", "users WHERE lower(user_name) = 'racer'")
            .await,
        1
    );
}
