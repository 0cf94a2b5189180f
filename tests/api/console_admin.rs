//! The tenant console's admin pages over plain HTTP: the same permissions as the API (a
//! member sees no admin link and gets 403 pages), users invited and disabled, API keys
//! created with a one-time reveal that works on the API and revoked, the audit log filtered
//! and exported as CSV. The browser test (`console_browser`) does the same through Chromium.

use std::time::Duration;

use reqwest::StatusCode;
use tenantry_tests::console::Browser;
use tenantry_tests::{unique_address, TestApp, OWNER_EMAIL, PASSWORD};

async fn signed_in(app: &TestApp, slug: &str, email: &str) -> Browser {
    let mut browser = app.browser(slug);
    let landed = browser.sign_in(email, PASSWORD).await;
    assert_eq!(landed.status, StatusCode::SEE_OTHER, "{}", landed.html);
    browser
}

#[tokio::test]
async fn admin_pages_need_the_permissions_their_api_routes_need() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let member = unique_address("member");
    app.invite_and_activate(&owner, &member, &["member"]).await;

    let mut admin = signed_in(&app, "acme", OWNER_EMAIL).await;
    let home = admin.get("/console").await;
    for link in [
        "/console/admin/users",
        "/console/admin/api-keys",
        "/console/admin/audit",
    ] {
        assert!(
            home.html.contains(&format!("href=\"{link}\"")),
            "owner lacks {link}"
        );
    }

    let mut browser = signed_in(&app, "acme", &member).await;
    let home = browser.get("/console").await;
    assert!(!home.html.contains("/console/admin/"), "{}", home.html);
    for page in [
        "/console/admin/users",
        "/console/admin/api-keys",
        "/console/admin/audit",
    ] {
        let refused = browser.get(page).await;
        assert_eq!(refused.status, StatusCode::FORBIDDEN, "{page}");
        assert!(refused.html.contains("Not allowed"), "{}", refused.html);
    }
    // A form the member could post by hand: refused by the guard, nothing invited.
    let csrf = home.csrf().unwrap();
    let victim = unique_address("not-invited");
    let refused = browser
        .post_raw(
            "/console/admin/users/invite",
            &[("email", &victim), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    let users = owner.users().list(None, None, None).await.unwrap().users;
    assert!(users.iter().all(|user| user.email != victim));
}

#[tokio::test]
async fn an_admin_invites_a_user_and_disabling_them_ends_their_sessions() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let mut admin = signed_in(&app, "acme", OWNER_EMAIL).await;
    let invited = unique_address("invited");

    let bad = admin
        .submit(
            "/console/admin/users",
            "/console/admin/users/invite",
            &[("email", "not an address"), ("display_name", "Ivy")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.html.contains("id=\"invite-error\""));
    assert!(bad.html.contains("value=\"Ivy\""), "what was typed is kept");

    let done = admin
        .submit(
            "/console/admin/users",
            "/console/admin/users/invite",
            &[
                ("email", &invited),
                ("display_name", "Ivy"),
                ("role", "member"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::CREATED, "{}", done.html);
    assert!(done.html.contains(&invited));
    let mail = app.wait_for_mail(&invited, Duration::from_secs(10)).await;
    let token = tenantry_tests::mailed_token(&mail[0], "acme", "/console/accept-invitation");

    // The invited user accepts through the invitation page and signs in.
    let mut newcomer = app.browser("acme");
    let page = format!("/console/accept-invitation?token={token}");
    let set = newcomer
        .submit(
            &page,
            "/console/accept-invitation",
            &[("token", &token), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.html);
    let api_client = app.signed_in("acme", &invited, PASSWORD).await;
    assert_eq!(
        newcomer.sign_in(&invited, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );

    let user = owner
        .users()
        .list(None, None, None)
        .await
        .unwrap()
        .users
        .into_iter()
        .find(|user| user.email == invited)
        .unwrap();
    assert_eq!(user.roles, vec!["member".to_owned()]);
    let user_page = format!("/console/admin/users/{}", user.id);
    let disabled = admin
        .submit(&user_page, &format!("{user_page}/disable"), &[])
        .await;
    assert_eq!(disabled.status, StatusCode::SEE_OTHER);
    assert!(admin
        .get(&user_page)
        .await
        .html
        .contains("<dd id=\"user-status\">disabled</dd>"));
    assert_eq!(newcomer.get("/console").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        api_client.get("/v1/me").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn an_api_key_made_in_the_console_is_shown_once_works_on_the_api_and_can_be_revoked() {
    let app = TestApp::spawn().await;
    app.tenant_with_owner("acme").await;
    let mut admin = signed_in(&app, "acme", OWNER_EMAIL).await;

    let refused = admin
        .submit(
            "/console/admin/api-keys",
            "/console/admin/api-keys",
            &[("name", "exporter"), ("scopes", "no-such-scope")],
        )
        .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST, "{}", refused.html);
    assert!(refused.html.contains("id=\"key-error\""));

    let created = admin
        .submit(
            "/console/admin/api-keys",
            "/console/admin/api-keys",
            &[("name", "exporter"), ("scopes", "usage:read")],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.html);
    assert_eq!(created.headers["cache-control"], "no-store");
    let marker = "<code id=\"revealed-key\">";
    let start = created.html.find(marker).unwrap() + marker.len();
    let key = created.html[start..start + created.html[start..].find('<').unwrap()].to_owned();
    assert!(key.starts_with("tnt_"), "{key}");

    let with_key = app.tenant("acme").with_api_key(&key);
    let usage = with_key.get("/v1/admin/usage").send().await.unwrap();
    assert_eq!(usage.status(), StatusCode::OK);
    let list = admin.get("/console/admin/api-keys").await;
    assert!(list.html.contains("exporter"));
    assert!(!list.html.contains(&key), "the secret shown again");

    let start = list.html.find("/console/admin/api-keys/").unwrap();
    let id = &list.html[start + "/console/admin/api-keys/".len()..][..36];
    let revoked = admin
        .submit(
            "/console/admin/api-keys",
            &format!("/console/admin/api-keys/{id}/revoke"),
            &[],
        )
        .await;
    assert_eq!(revoked.status, StatusCode::SEE_OTHER);
    let refused = with_key.get("/v1/admin/usage").send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn the_audit_page_filters_pages_and_exports_what_the_tenant_did() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let mut admin = signed_in(&app, "acme", OWNER_EMAIL).await;
    let invited = unique_address("audited");
    app.invite_and_activate(&owner, &invited, &["member"]).await;
    let tenant_id = app.tenant_id("acme").await;
    app.wait_for_audit_events(&tenant_id, "users.invite", 1, Duration::from_secs(30))
        .await;

    let all = admin.get("/console/admin/audit").await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.html);
    assert!(all.html.contains("<td>users.invite</td>"), "{}", all.html);
    assert!(all.html.contains("<td>auth.login</td>"));

    let filtered = admin.get("/console/admin/audit?action=users.invite").await;
    assert!(filtered.html.contains("<td>users.invite</td>"));
    assert!(
        !filtered.html.contains("<td>auth.login</td>"),
        "the filter did nothing"
    );

    let export = admin
        .get("/console/admin/audit/export.csv?action=users.invite&actor=&result=&from=&to=")
        .await;
    assert_eq!(export.status, StatusCode::OK);
    assert_eq!(export.headers["content-type"], "text/csv; charset=utf-8");
    let mut lines = export.html.lines();
    assert!(lines
        .next()
        .unwrap()
        .starts_with("occurred_at,actor_type,actor_id,action"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 1, "{}", export.html);
    assert!(rows[0].contains(",users.invite,"));

    let bad = admin
        .get("/console/admin/audit?from=2026-12-06&to=2026-01-01")
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.html.contains("`from` must be before `to`"),
        "{}",
        bad.html
    );
}

#[tokio::test]
async fn the_usage_page_draws_each_quota_and_the_days_requests() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.invite_and_activate(&owner, &unique_address("second"), &["member"])
        .await;
    let tenant_id = app.tenant_id("acme").await;
    app.wait_for_audit_events(&tenant_id, "users.invite", 1, Duration::from_secs(30))
        .await;
    let mut admin = signed_in(&app, "acme", OWNER_EMAIL).await;
    let page = admin.get("/console/admin/usage").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let quotas = owner
        .get("/v1/usage")
        .ok::<serde_json::Value>()
        .await
        .unwrap();
    let users = format!(
        "data-meter=\"Users\">2 of {}</span>",
        quotas["users"]["limit"]
    );
    assert!(page.html.contains(&users), "{users} in {}", page.html);
    assert!(page
        .html
        .contains("<svg class=\"chart\" id=\"chart-requests\""));
    // Today's bar is drawn with its count (the invitation and the sign-ins at least).
    let today = time::OffsetDateTime::now_utc().date();
    assert!(
        page.html.contains(&format!("<title>{today}: ")),
        "{}",
        page.html
    );
}

#[tokio::test]
async fn a_user_changes_their_password_and_downloads_their_data_from_the_profile() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let mut browser = signed_in(&app, "acme", OWNER_EMAIL).await;

    let wrong = browser
        .submit(
            "/console",
            "/console/password",
            &[
                ("current_password", "wrong"),
                ("new_password", "another long passphrase"),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED, "{}", wrong.html);
    assert!(wrong.html.contains("id=\"password-change-error\""));
    let weak = browser
        .submit(
            "/console",
            "/console/password",
            &[("current_password", PASSWORD), ("new_password", "short")],
        )
        .await;
    assert_eq!(weak.status, StatusCode::BAD_REQUEST);
    assert!(
        weak.html.contains("id=\"new-password-error\""),
        "{}",
        weak.html
    );

    let new_password = "a brand new long passphrase";
    let changed = browser
        .submit(
            "/console",
            "/console/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
            ],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.html);
    assert!(changed.html.contains("Your password is changed"));
    // This browser stays signed in; the API client's session (another one) has ended.
    assert_eq!(browser.get("/console").await.status, StatusCode::OK);
    assert_eq!(
        owner.get("/v1/me").send().await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    app.signed_in("acme", OWNER_EMAIL, new_password).await;

    let export = browser.get("/console/export").await;
    assert_eq!(export.status, StatusCode::OK);
    assert!(export.headers["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment; filename=\"export-"));
    let document: serde_json::Value = serde_json::from_str(&export.html).unwrap();
    assert_eq!(document["user"]["email"], OWNER_EMAIL, "{document}");
    assert_eq!(document["tenant"]["slug"], "acme");
}

#[tokio::test]
async fn a_user_renames_and_erases_themselves_from_the_profile() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let email = unique_address("leaver");
    let id = app.invite_and_activate(&owner, &email, &["member"]).await;
    let mut browser = signed_in(&app, "acme", &email).await;

    // A name with a control character: refused beside the field, kept as typed.
    let bad = browser
        .submit(
            "/console",
            "/console/name",
            &[("display_name", "Lea\u{7}ver")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("id=\"name-error\""), "{}", bad.html);
    let renamed = browser
        .submit(
            "/console",
            "/console/name",
            &[("display_name", "Lea Leaver")],
        )
        .await;
    assert_eq!(renamed.status, StatusCode::SEE_OTHER, "{}", renamed.html);
    assert!(browser
        .get("/console")
        .await
        .html
        .contains("<h1>Lea Leaver</h1>"));
    assert_eq!(
        owner.users().get(id).await.unwrap().display_name,
        "Lea Leaver"
    );

    // Erasure: another address refused, nothing changed; their own erases and signs out.
    let wrong = browser
        .submit(
            "/console",
            "/console/erase",
            &[("confirm_email", OWNER_EMAIL)],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST, "{}", wrong.html);
    assert!(wrong.html.contains("id=\"erasure-error\""));
    assert!(owner.users().get(id).await.is_ok());
    let erased = browser
        .submit("/console", "/console/erase", &[("confirm_email", &email)])
        .await;
    assert_eq!(erased.status, StatusCode::SEE_OTHER, "{}", erased.html);
    assert_eq!(erased.location(), Some("/console/sign-in?erased=1"));
    assert!(erased
        .set_cookie("tenantry_session")
        .is_some_and(|cookie| cookie.contains("Max-Age=0")));
    assert!(browser
        .get("/console/sign-in?erased=1")
        .await
        .html
        .contains("Your account is erased."));
    assert_eq!(
        owner.users().get(id).await.unwrap_err().status(),
        Some(StatusCode::NOT_FOUND)
    );
}

#[tokio::test]
async fn an_admin_makes_a_role_from_the_permission_picker_and_gives_it_to_a_user() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    let mut admin = signed_in(&app, "acme", OWNER_EMAIL).await;

    let page = admin.get("/console/admin/roles").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    // The picker offers the permissions the routes check, collections widened.
    for permission in [
        "users:read",
        "api_keys:manage",
        "records:read",
        "audit:read",
    ] {
        assert!(
            page.html.contains(&format!("value=\"{permission}\"")),
            "{permission} not offered"
        );
    }
    assert!(!page.html.contains("{collection}"));

    let bad = admin
        .submit(
            "/console/admin/roles",
            "/console/admin/roles",
            &[
                ("name", "Not A Name"),
                ("description", "kept"),
                ("permission", "users:read"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("id=\"role-error\""));
    assert!(
        bad.html.contains("value=\"users:read\" checked"),
        "the picked box stays ticked"
    );

    let made = admin
        .submit(
            "/console/admin/roles",
            "/console/admin/roles",
            &[
                ("name", "support"),
                ("description", "Reads users and tickets"),
                ("permission", "users:read"),
                ("other_permissions", "records.tickets:read"),
                ("include", "member"),
            ],
        )
        .await;
    assert_eq!(made.status, StatusCode::SEE_OTHER, "{}", made.html);
    let role = admin.get("/console/admin/roles/support").await;
    assert!(role.html.contains("records.tickets:read"), "{}", role.html);
    let api_role = owner.roles().get("support").await.unwrap();
    assert_eq!(
        api_role.permissions,
        vec!["records.tickets:read".to_owned(), "users:read".to_owned()]
    );

    // Given to a user through the user page, it opens the users page to them.
    let agent = unique_address("agent");
    let agent_id = app.invite_and_activate(&owner, &agent, &["member"]).await;
    let set = admin
        .submit(
            &format!("/console/admin/users/{agent_id}"),
            &format!("/console/admin/users/{agent_id}/roles"),
            &[("role", "member"), ("role", "support")],
        )
        .await;
    assert_eq!(set.status, StatusCode::SEE_OTHER, "{}", set.html);
    let mut agent_browser = signed_in(&app, "acme", &agent).await;
    assert_eq!(
        agent_browser.get("/console/admin/users").await.status,
        StatusCode::OK
    );
    assert_eq!(
        agent_browser.get("/console/admin/api-keys").await.status,
        StatusCode::FORBIDDEN
    );

    // A built-in role is shown, not edited.
    assert!(admin
        .get("/console/admin/roles/owner")
        .await
        .html
        .contains("A built-in role"));
}

#[tokio::test]
async fn the_settings_page_saves_the_sign_in_policy_cors_origins_and_app_redirects_or_says_what_is_wrong(
) {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    // Six forms and the API reads that check them are more requests in a second than the
    // free plan allows.
    app.raise_rate_limits("acme").await;
    let mut admin = signed_in(&app, "acme", OWNER_EMAIL).await;
    let page = admin.get("/console/admin/settings").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let policy_fields = |min_length: &'static str| {
        vec![
            ("min_length", min_length),
            ("history", "3"),
            ("max_age_days", ""),
            ("max_failures", "5"),
            ("lockout_minutes", "15"),
            ("idle_timeout_minutes", "60"),
            ("absolute_lifetime_hours", "24"),
            ("max_concurrent", "3"),
            // (`admins` would restrict this owner, who has no second factor, at once.)
            ("mfa", "optional"),
            ("self_signup", "on"),
        ]
    };
    let before: serde_json::Value = owner.get("/v1/settings/auth-policy").ok().await.unwrap();

    let bad = admin
        .submit(
            "/console/admin/settings",
            "/console/admin/settings/auth-policy",
            &policy_fields("twelve"),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("id=\"policy-error\""));
    let unchanged: serde_json::Value = owner.get("/v1/settings/auth-policy").ok().await.unwrap();
    assert_eq!(unchanged, before, "a refused form changed the policy");

    let saved = admin
        .submit(
            "/console/admin/settings",
            "/console/admin/settings/auth-policy",
            &policy_fields("14"),
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let policy: serde_json::Value = owner.get("/v1/settings/auth-policy").ok().await.unwrap();
    assert_eq!(policy["password"]["min_length"], 14);
    assert_eq!(policy["sessions"]["max_concurrent"], 3);
    assert_eq!(policy["mfa"], "optional");
    assert_eq!(policy["self_signup"], true);

    let bad = admin
        .submit(
            "/console/admin/settings",
            "/console/admin/settings/cors",
            &[("origins", "not an origin")],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("id=\"cors-error\""));
    let saved = admin
        .submit(
            "/console/admin/settings",
            "/console/admin/settings/cors",
            &[(
                "origins",
                "https://app.acme.example\nhttps://admin.acme.example",
            )],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    let cors: serde_json::Value = owner.get("/v1/settings/cors").ok().await.unwrap();
    assert_eq!(
        cors["allowed_origins"],
        serde_json::json!(["https://admin.acme.example", "https://app.acme.example"])
    );

    // Applications' SSO redirect URIs: a plain-http one refused with the list as typed,
    // nothing saved; a good list saved.
    let bad = admin
        .submit(
            "/console/admin/settings",
            "/console/admin/settings/sso-redirects",
            &[(
                "redirect_uris",
                "https://app.acme.example/cb
http://app.acme.example/cb",
            )],
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{}", bad.html);
    assert!(bad.html.contains("id=\"redirects-error\""), "{}", bad.html);
    assert!(
        bad.html.contains("http://app.acme.example/cb</textarea>"),
        "{}",
        bad.html
    );
    let unchanged = owner.setting("sso-redirects").await.unwrap();
    assert_eq!(unchanged["redirect_uris"], serde_json::json!([]));
    let saved = admin
        .submit(
            "/console/admin/settings",
            "/console/admin/settings/sso-redirects",
            &[(
                "redirect_uris",
                "https://app.acme.example/cb http://127.0.0.1/cb",
            )],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.html);
    assert_eq!(
        owner.setting("sso-redirects").await.unwrap()["redirect_uris"],
        serde_json::json!(["http://127.0.0.1/cb", "https://app.acme.example/cb"])
    );
}
