//! Identity: activation, password sign-in, lockout, tokens bound to their tenant, refresh
//! rotation and reuse, sessions and their revocation across nodes.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::{TestApp, TestOptions};

const PASSWORD: &str = "correct horse battery staple";

async fn get_with(
    app: &TestApp,
    url: &str,
    slug: &str,
    path: &str,
    token: &str,
) -> reqwest::Response {
    app.http
        .get(format!("{url}{path}"))
        .header("X-Tenant", slug)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

async fn me(app: &TestApp, slug: &str, token: &str) -> reqwest::Response {
    get_with(app, &app.data_url, slug, "/v1/me", token).await
}

async fn error_code(response: reqwest::Response) -> (StatusCode, String) {
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

#[tokio::test]
async fn the_first_admin_activates_signs_in_and_sees_themself() {
    let app = TestApp::spawn().await;
    let (_, token) = app
        .create_tenant_with_admin("acme", "Ada@Acme.example")
        .await;

    // A weak password is refused with every failed rule listed, and the token is not spent.
    let weak = app
        .tenant_post(
            "acme",
            "/v1/auth/activate",
            &json!({"token": token, "password": "ada"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(weak.status(), StatusCode::BAD_REQUEST);
    let body: Value = weak.json().await.unwrap();
    assert_eq!(body["error"]["code"], "password_policy");
    assert!(
        body["error"]["details"]["failed_rules"]
            .as_array()
            .unwrap()
            .len()
            >= 2,
        "{body}"
    );

    let activated = app
        .tenant_post(
            "acme",
            "/v1/auth/activate",
            &json!({"token": token, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), StatusCode::OK);
    // Single use.
    let again = app
        .tenant_post(
            "acme",
            "/v1/auth/activate",
            &json!({"token": token, "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(again).await,
        (StatusCode::BAD_REQUEST, "invalid_token".to_owned())
    );

    let tokens = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 900);
    assert!(tokens["refresh_token"]
        .as_str()
        .unwrap()
        .starts_with("tnrt_"));
    let access = tokens["access_token"].as_str().unwrap();
    let response = me(&app, "acme", access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["email"], "ada@acme.example");
    assert_eq!(body["roles"], json!(["owner"]));
    assert_eq!(body["amr"], json!(["pwd"]));
    assert_eq!(body["email_verified"], true);

    // No token, or a garbage one: 401.
    let anonymous = app.tenant_get("acme", "/v1/me").send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        me(&app, "acme", "not.a.jwt").await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn two_tenants_keep_same_email_users_apart_and_tokens_do_not_cross() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "sam@shared.example", PASSWORD)
        .await;
    app.tenant_with_active_admin("globex", "sam@shared.example", "another long passphrase")
        .await;

    // Each tenant's Sam has their own password.
    let wrong = app
        .tenant_post(
            "globex",
            "/v1/auth/login",
            &json!({"email": "sam@shared.example", "password": PASSWORD}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        error_code(wrong).await,
        (StatusCode::UNAUTHORIZED, "invalid_credentials".to_owned())
    );

    let acme = app.sign_in("acme", "sam@shared.example", PASSWORD).await;
    let access = acme["access_token"].as_str().unwrap();
    assert_eq!(me(&app, "acme", access).await.status(), StatusCode::OK);
    // A valid token of acme is refused by globex.
    assert_eq!(
        me(&app, "globex", access).await.status(),
        StatusCode::UNAUTHORIZED
    );
    // So is acme's refresh token.
    let refresh = app
        .tenant_post(
            "globex",
            "/v1/auth/refresh",
            &json!({"refresh_token": acme["refresh_token"]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), StatusCode::UNAUTHORIZED);

    // JWKS and discovery are per tenant: different keys, different issuers.
    let jwks = |slug: &'static str| {
        let app = &app;
        async move {
            app.tenant_get(slug, "/v1/.well-known/jwks.json")
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let (acme_keys, globex_keys) = (jwks("acme").await, jwks("globex").await);
    assert_eq!(acme_keys["keys"][0]["kty"], "OKP");
    assert_eq!(acme_keys["keys"][0]["crv"], "Ed25519");
    assert_ne!(acme_keys["keys"][0]["kid"], globex_keys["keys"][0]["kid"]);
    let discovery: Value = app
        .tenant_get("acme", "/v1/.well-known/openid-configuration")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], "https://acme.tenantry.test");
    assert_eq!(
        discovery["jwks_uri"],
        "https://acme.tenantry.test/v1/.well-known/jwks.json"
    );
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_the_same_answer_and_both_lock_out() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let attempt = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.tenant_post(
                "acme",
                "/v1/auth/login",
                &json!({"email": email, "password": password}),
            )
            .send()
            .await
            .unwrap()
        }
    };
    for _ in 0..5 {
        let known = attempt("ada@acme.example", "wrong password here").await;
        assert_eq!(
            error_code(known).await,
            (StatusCode::UNAUTHORIZED, "invalid_credentials".to_owned())
        );
        let unknown = attempt("nobody@acme.example", "wrong password here").await;
        assert_eq!(
            error_code(unknown).await,
            (StatusCode::UNAUTHORIZED, "invalid_credentials".to_owned())
        );
    }
    // Both addresses are now locked, the right password included.
    for email in ["ada@acme.example", "nobody@acme.example"] {
        let locked = attempt(email, PASSWORD).await;
        assert_eq!(locked.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after: u64 = locked.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=15 * 60).contains(&retry_after));
        assert_eq!(error_code(locked).await.1, "login_locked");
    }
    // Every attempt was recorded for the audit log.
    let db = app.superuser().await;
    let recorded: i64 = db
        .query_one("SELECT count(*) FROM tenant_acme.login_attempts", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded, 12);
    // When the lock has passed, the right password works again.
    db.execute(
        "UPDATE tenant_acme.login_throttle SET locked_until = now() - interval '1 second'",
        &[],
    )
    .await
    .unwrap();
    assert_eq!(
        attempt("ada@acme.example", PASSWORD).await.status(),
        StatusCode::OK
    );
}

async fn refresh(app: &TestApp, slug: &str, token: &Value) -> reqwest::Response {
    app.tenant_post(slug, "/v1/auth/refresh", &json!({"refresh_token": token}))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn refresh_rotates_and_a_late_reuse_ends_the_whole_session() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let first = app.sign_in("acme", "ada@acme.example", PASSWORD).await;

    let second: Value = refresh(&app, "acme", &first["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let third: Value = refresh(&app, "acme", &second["refresh_token"])
        .await
        .json()
        .await
        .unwrap();
    assert!(third["access_token"].is_string());

    // The first token re-presented long after it was used (as a thief would): the session ends,
    // so even the newest tokens stop working.
    app.superuser()
        .await
        .execute(
            "UPDATE tenant_acme.refresh_tokens SET used_at = used_at - interval '1 hour'",
            &[],
        )
        .await
        .unwrap();
    let reuse = refresh(&app, "acme", &first["refresh_token"]).await;
    assert_eq!(
        error_code(reuse).await,
        (StatusCode::UNAUTHORIZED, "refresh_token_reused".to_owned())
    );
    assert_eq!(
        refresh(&app, "acme", &third["refresh_token"])
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let (status, code) =
        error_code(me(&app, "acme", third["access_token"].as_str().unwrap()).await).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "session_ended")
    );
}

#[tokio::test]
async fn two_tabs_refreshing_at_once_get_one_new_pair_and_stay_signed_in() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let tokens = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let (left, right) = tokio::join!(
        refresh(&app, "acme", &tokens["refresh_token"]),
        refresh(&app, "acme", &tokens["refresh_token"])
    );
    let mut statuses = [left.status(), right.status()];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT]);
    let winner: Value = if left.status() == StatusCode::OK {
        left.json().await.unwrap()
    } else {
        right.json().await.unwrap()
    };
    // The session survived: the winner's pair keeps working, and only one chain exists.
    assert_eq!(
        me(&app, "acme", winner["access_token"].as_str().unwrap())
            .await
            .status(),
        StatusCode::OK
    );
    assert_eq!(
        refresh(&app, "acme", &winner["refresh_token"])
            .await
            .status(),
        StatusCode::OK
    );
    let live: i64 = app
        .superuser()
        .await
        .query_one(
            "SELECT count(*) FROM tenant_acme.refresh_tokens WHERE used_at IS NULL",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(live, 1);
}

#[tokio::test]
async fn a_revoked_session_is_refused_on_another_node_within_a_second() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let (_node, other_url) = app.spawn_data_node(&TestOptions::default()).await;
    let phone = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let laptop = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let phone_access = phone["access_token"].as_str().unwrap().to_owned();
    let laptop_access = laptop["access_token"].as_str().unwrap();

    // The other node has seen the phone's session as live (and cached it).
    let seen = get_with(&app, &other_url, "acme", "/v1/me", &phone_access).await;
    assert_eq!(seen.status(), StatusCode::OK);
    let phone_session = seen.json::<Value>().await.unwrap()["session_id"].clone();

    let sessions: Value = me(&app, "acme", laptop_access).await.json().await.unwrap();
    assert_ne!(sessions["session_id"], phone_session);
    let listed: Value = get_with(
        &app,
        &app.data_url,
        "acme",
        "/v1/me/sessions",
        laptop_access,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(listed["sessions"].as_array().unwrap().len(), 2);

    // The laptop ends the phone's session on the first node.
    let ended = app
        .http
        .delete(format!(
            "{}/v1/me/sessions/{}",
            app.data_url,
            phone_session.as_str().unwrap()
        ))
        .header("X-Tenant", "acme")
        .bearer_auth(laptop_access)
        .send()
        .await
        .unwrap();
    assert_eq!(ended.status(), StatusCode::NO_CONTENT);
    let refused_within = TestApp::eventually(Duration::from_secs(1), || {
        let (app, url, token) = (&app, &other_url, &phone_access);
        async move {
            get_with(app, url, "acme", "/v1/me", token).await.status() == StatusCode::UNAUTHORIZED
        }
    })
    .await;
    assert!(
        refused_within.is_some(),
        "the other node still accepts the revoked session"
    );
    // The laptop is unaffected; logout ends it too.
    assert_eq!(
        me(&app, "acme", laptop_access).await.status(),
        StatusCode::OK
    );
    let logout = app
        .http
        .post(format!("{}/v1/auth/logout", app.data_url))
        .header("X-Tenant", "acme")
        .bearer_auth(laptop_access)
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        me(&app, "acme", laptop_access).await.status(),
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn changing_the_password_ends_other_sessions_and_refuses_a_recent_password() {
    let app = TestApp::spawn().await;
    app.tenant_with_active_admin("acme", "ada@acme.example", PASSWORD)
        .await;
    let here = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let elsewhere = app.sign_in("acme", "ada@acme.example", PASSWORD).await;
    let here_access = here["access_token"].as_str().unwrap();
    let change = |current: &'static str, new: &'static str| {
        let app = &app;
        async move {
            app.http
                .post(format!("{}/v1/me/password", app.data_url))
                .header("X-Tenant", "acme")
                .bearer_auth(here_access)
                .json(&json!({"current_password": current, "new_password": new}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_eq!(
        change("wrong current password", "a brand new passphrase")
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    let reused = change(PASSWORD, PASSWORD).await;
    assert_eq!(
        error_code(reused).await,
        (StatusCode::BAD_REQUEST, "password_policy".to_owned())
    );
    assert_eq!(
        change(PASSWORD, "a brand new passphrase").await.status(),
        StatusCode::NO_CONTENT
    );

    assert_eq!(me(&app, "acme", here_access).await.status(), StatusCode::OK);
    let other = me(&app, "acme", elsewhere["access_token"].as_str().unwrap()).await;
    assert_eq!(
        error_code(other).await,
        (StatusCode::UNAUTHORIZED, "session_ended".to_owned())
    );
    app.sign_in("acme", "ada@acme.example", "a brand new passphrase")
        .await;
}
