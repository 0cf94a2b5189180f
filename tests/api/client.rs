//! The typed client (`tenantry-client`) itself, against the real data plane: a signed-in client
//! refreshes an expired access token by itself (once, however many requests find it expired),
//! refusals come back as typed errors with the envelope's code, and a session the server ended
//! is not revived by refreshing.

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use tenantry_tests::client::{Error, NewKey};
use tenantry_tests::{unique_address, TestApp, OWNER_EMAIL, PASSWORD};

/// Past an access token's life (15 minutes) and the 30 seconds of leeway.
const PAST_EXPIRY: time::Duration = time::Duration::minutes(16);

#[tokio::test]
async fn a_signed_in_client_refreshes_an_expired_access_token_by_itself() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    let first_access = owner.access_token().await.unwrap().unwrap();
    let first_refresh = owner.refresh_token().await.unwrap();

    clock.advance(PAST_EXPIRY);
    // The token the client holds is really expired: presented as it is, it is refused.
    let stale = app.as_bearer("acme", first_access.expose());
    assert_eq!(
        stale.get("/v1/me").send().await.unwrap().error_code(),
        (StatusCode::UNAUTHORIZED, "invalid_token")
    );

    // The client is refused the same way, refreshes, and retries: the caller sees only the answer.
    let me = owner.me().get().await.unwrap();
    assert_eq!(me.email, OWNER_EMAIL);
    let second_access = owner.access_token().await.unwrap().unwrap();
    assert_ne!(second_access, first_access);
    assert_ne!(owner.refresh_token().await.unwrap(), first_refresh);
    // The new token is the same session's.
    assert_eq!(owner.me().get().await.unwrap().session_id, me.session_id);
}

#[tokio::test]
async fn requests_that_find_the_token_expired_together_refresh_it_once() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    // Not about limits: so that refreshing too often shows in the chain, not as a 429.
    app.raise_rate_limits("acme").await;
    clock.advance(PAST_EXPIRY);

    let answers = join_all((0..8).map(|_| async { owner.me().get().await })).await;
    for answer in &answers {
        assert!(answer.is_ok(), "{answer:?}");
    }
    let sessions = owner.me().sessions().await.unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].current);
    // The session's refresh-token chain: the one from sign-in, used once, and its successor.
    let schema = app.tenant_schema("acme").await;
    let chain: i64 = app
        .superuser()
        .await
        .query_one(
            &format!(
                "SELECT count(*) AS issued FROM {schema}.refresh_tokens WHERE session_id = $1"
            ),
            &[&sessions[0].id],
        )
        .await
        .unwrap()
        .try_get("issued")
        .unwrap();
    assert_eq!(
        chain, 2,
        "eight requests found the token expired; one refresh"
    );
}

#[tokio::test]
async fn a_session_the_user_ended_is_not_revived_by_refreshing() {
    let (app, clock) = TestApp::spawn_with_clock().await;
    let owner = app.tenant_with_owner("acme").await;
    let phone = app.signed_in("acme", OWNER_EMAIL, PASSWORD).await;
    phone.auth().logout().await.unwrap();

    clock.advance(PAST_EXPIRY);
    let refused = phone.me().get().await.unwrap_err();
    assert_eq!(refused.status(), Some(StatusCode::UNAUTHORIZED));
    // The other session is unaffected.
    assert!(owner.me().get().await.is_ok());
}

#[tokio::test]
async fn refusals_come_back_as_typed_errors_with_the_envelope_code() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;

    let wrong = app
        .tenant("acme")
        .sign_in(OWNER_EMAIL, "not the password at all")
        .await
        .err()
        .unwrap();
    assert_eq!(wrong.status(), Some(StatusCode::UNAUTHORIZED));
    assert_eq!(wrong.code(), Some("invalid_credentials"));

    let member_email = unique_address("member");
    app.invite_and_activate(&owner, &member_email, &["member"])
        .await;
    let member = app.signed_in("acme", &member_email, PASSWORD).await;
    let Error::Api(refusal) = member
        .api_keys()
        .create(&NewKey::new("mine", &["usage:read"]))
        .await
        .unwrap_err()
    else {
        panic!("a member creating an API key is refused by the server");
    };
    assert_eq!(refusal.status, StatusCode::FORBIDDEN);
    assert_eq!(refusal.code, "forbidden");
    assert_eq!(
        refusal.details.as_ref().unwrap()["missing_permission"],
        "api_keys:manage"
    );
    assert!(refusal.request_id.is_some());

    let missing = owner
        .records("tasks")
        .get(uuid::Uuid::now_v7())
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("record_not_found"));

    // A created key works through the client as an X-API-Key credential.
    let key = owner
        .api_keys()
        .create(&NewKey::new("usage", &["usage:read"]))
        .await
        .unwrap();
    let integrator = app.tenant("acme").with_api_key(key.key.expose());
    assert!(integrator.usage().await.is_ok());
    assert_eq!(
        integrator
            .records("tasks")
            .create(&json!({"title": "no"}))
            .await
            .unwrap_err()
            .code(),
        Some("forbidden")
    );
}
