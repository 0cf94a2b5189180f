//! Rate limits and the `max_users` quota: bursts and 429s with their headers, refill on the
//! (manual) clock, tenants kept apart, the credential endpoints' stricter limit, quota
//! changes through the operator API applied without restart, and user creation held to
//! `max_users` (also under concurrency).

use std::time::Duration;

use data_plane::rate_limit::RateLimitSettings;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;
use shared::clock::ManualClock;
use tenantry_tests::client::NewKey;
use tenantry_tests::{unique_address, Client, Reply, TestApp, TestOptions, OWNER_EMAIL};
use time::OffsetDateTime;

/// An app whose data plane reads the time from a clock that moves only when told.
async fn app_with_clock(rate_limit: RateLimitSettings) -> (TestApp, ManualClock) {
    let clock = ManualClock::new(OffsetDateTime::now_utc());
    let app = TestApp::spawn_with(TestOptions {
        clock: Some(clock.clone()),
        rate_limit,
        ..TestOptions::default()
    })
    .await;
    (app, clock)
}

fn header<'a>(response: &'a Reply, name: &str) -> &'a str {
    response
        .header(name)
        .unwrap_or_else(|| panic!("no {name} header"))
}

async fn get_tenant(app: &TestApp, slug: &str) -> Reply {
    app.tenant(slug).get("/v1/tenant").send().await.unwrap()
}

#[tokio::test]
async fn a_burst_is_admitted_then_429_with_retry_after_and_rate_limit_headers() {
    let (app, _clock) = app_with_clock(RateLimitSettings::default()).await;
    app.create_tenant("acme").await;
    app.set_quotas("acme", json!({"requests_per_second": 1, "burst": 3}))
        .await;

    for remaining in ["2", "1", "0"] {
        let response = get_tenant(&app, "acme").await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "x-ratelimit-limit"), "3");
        assert_eq!(header(&response, "x-ratelimit-remaining"), remaining);
        assert!(
            header(&response, "x-ratelimit-reset")
                .parse::<u64>()
                .unwrap()
                <= 3
        );
    }
    let refused = get_tenant(&app, "acme").await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), "1");
    assert_eq!(header(&refused, "x-ratelimit-limit"), "3");
    assert_eq!(header(&refused, "x-ratelimit-remaining"), "0");
    assert_eq!(header(&refused, "x-ratelimit-reset"), "3");
    let request_id = header(&refused, "x-request-id");
    let body = refused.value();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["details"]["limit_class"], "tenant");
    assert_eq!(body["error"]["details"]["limit"], 3);
    assert_eq!(body["error"]["request_id"], request_id);
}

#[tokio::test]
async fn a_refused_request_never_reaches_its_handler() {
    let (app, _clock) = app_with_clock(RateLimitSettings::default()).await;
    app.create_tenant("acme").await;
    app.allow_self_signup("acme").await;
    app.set_quotas("acme", json!({"requests_per_second": 1, "burst": 2}))
        .await;
    for _ in 0..2 {
        get_tenant(&app, "acme").await;
    }
    let email = unique_address("refused");
    let response = app
        .tenant("acme")
        .post("/v1/auth/register")
        .json(&json!({"email": email, "password": "correct horse battery staple"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.queued_mails("acme", &email).await, 0);
}

#[tokio::test]
async fn the_limit_refills_as_the_clock_advances() {
    let (app, clock) = app_with_clock(RateLimitSettings::default()).await;
    app.create_tenant("acme").await;
    app.set_quotas("acme", json!({"requests_per_second": 2, "burst": 2}))
        .await;
    for _ in 0..2 {
        assert_eq!(get_tenant(&app, "acme").await.status(), StatusCode::OK);
    }
    assert_eq!(
        get_tenant(&app, "acme").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // Half a second at 2 per second: one more request.
    clock.advance(time::Duration::milliseconds(500));
    assert_eq!(get_tenant(&app, "acme").await.status(), StatusCode::OK);
    assert_eq!(
        get_tenant(&app, "acme").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // Idle for long enough, the whole burst is back.
    clock.advance(time::Duration::seconds(5));
    let response = get_tenant(&app, "acme").await;
    assert_eq!(header(&response, "x-ratelimit-remaining"), "1");
}

#[tokio::test]
async fn one_tenant_exhausting_its_limit_does_not_affect_another() {
    let (app, _clock) = app_with_clock(RateLimitSettings::default()).await;
    app.create_tenant("acme").await;
    app.create_tenant("globex").await;
    app.set_quotas("acme", json!({"requests_per_second": 1, "burst": 2}))
        .await;
    app.set_quotas("globex", json!({"requests_per_second": 1, "burst": 2}))
        .await;
    for _ in 0..5 {
        get_tenant(&app, "acme").await;
    }
    assert_eq!(
        get_tenant(&app, "acme").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    let other = get_tenant(&app, "globex").await;
    assert_eq!(other.status(), StatusCode::OK);
    assert_eq!(header(&other, "x-ratelimit-remaining"), "1");
}

#[tokio::test]
async fn a_rate_quota_change_in_the_control_plane_applies_without_restart() {
    let (app, _clock) = app_with_clock(RateLimitSettings::default()).await;
    app.create_tenant("acme").await;
    assert_eq!(
        header(&get_tenant(&app, "acme").await, "x-ratelimit-limit"),
        "20",
        "the free plan's burst"
    );

    // Lowered: only the HTTP API is used, as an operator would.
    let operator = app.operator_api();
    let quotas = operator.tenants();
    quotas
        .set_quotas("acme", &json!({"requests_per_second": 1, "burst": 2}))
        .await
        .unwrap();
    let applied = TestApp::eventually(Duration::from_secs(1), || async {
        header(&get_tenant(&app, "acme").await, "x-ratelimit-limit") == "2"
    })
    .await;
    assert!(
        applied.is_some(),
        "the lowered limit did not apply within a second"
    );
    assert_eq!(get_tenant(&app, "acme").await.status(), StatusCode::OK);
    assert_eq!(
        get_tenant(&app, "acme").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );

    // Raised: the next requests go through again, without the clock moving.
    quotas
        .set_quotas("acme", &json!({"burst": 50}))
        .await
        .unwrap();
    let applied = TestApp::eventually(Duration::from_secs(1), || async {
        let response = get_tenant(&app, "acme").await;
        response.status() == StatusCode::OK && header(&response, "x-ratelimit-limit") == "50"
    })
    .await;
    assert!(
        applied.is_some(),
        "the raised limit did not apply within a second"
    );
}

#[tokio::test]
async fn the_credential_limit_per_client_trips_before_the_tenant_limit() {
    let (app, _clock) = app_with_clock(RateLimitSettings {
        auth_per_minute: 3,
        auth_burst: 3,
        ..RateLimitSettings::default()
    })
    .await;
    app.create_tenant("acme").await;
    // Different unknown addresses, so no account lockout is involved.
    let acme = app.tenant("acme");
    for _ in 0..3 {
        assert_eq!(guess(&acme).await.status(), StatusCode::UNAUTHORIZED);
    }
    let refused = guess(&acme).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "retry-after"), "20");
    let body = refused.value();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["details"]["limit_class"], "auth");
    // Other password endpoints share the credential limit; the rest of the API does not.
    let reset = app
        .tenant("acme")
        .post("/v1/auth/password-reset")
        .json(&json!({"email": unique_address("guess")}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::TOO_MANY_REQUESTS);
    let read = get_tenant(&app, "acme").await;
    assert_eq!(read.status(), StatusCode::OK);
}

/// A wrong-password sign-in through `client`, from a new address (no lockout involved).
async fn guess(client: &Client) -> Reply {
    client
        .post("/v1/auth/login")
        .json(&json!({"email": unique_address("guess"), "password": "guess guess guess"}))
        .send()
        .await
        .unwrap()
}

/// The node's count of refused credential attempts by what became of them (`held`, `full`).
async fn refusals_held(app: &TestApp, outcome: &str) -> Option<f64> {
    let metrics = tenantry_tests::metrics_text(&app.http, &app.data_url).await;
    tenantry_tests::metric_value(
        &metrics,
        &format!("tenantry_credential_refusals_held_total{{outcome=\"{outcome}\"}}"),
    )
}

/// Waits until the node holds its first refusal; whether it did.
async fn first_refusal_held(app: &TestApp) -> bool {
    TestApp::eventually(Duration::from_secs(10), || async {
        refusals_held(app, "held").await == Some(1.0)
    })
    .await
    .is_some()
}

#[tokio::test]
async fn a_refused_credential_attempt_is_answered_only_after_its_hold_and_holds_no_one_else() {
    // One attempt a minute: the second is refused with `Retry-After: 60`, held for five
    // seconds.
    let hold = Duration::from_secs(5);
    let (app, _clock) = app_with_clock(RateLimitSettings {
        auth_per_minute: 1,
        auth_burst: 1,
        refusal_hold: hold,
        ..RateLimitSettings::default()
    })
    .await;
    app.create_tenant("acme").await;
    app.raise_rate_limits("acme").await;
    let acme = app.tenant("acme");
    assert_eq!(guess(&acme).await.status(), StatusCode::UNAUTHORIZED);

    let started = std::time::Instant::now();
    let refused = tokio::spawn({
        let acme = acme.clone();
        async move { (guess(&acme).await, started.elapsed()) }
    });
    // Once the refusal is held, the same tenant's other routes are answered meanwhile: the
    // hold waits on a timer, not on the worker.
    assert!(first_refusal_held(&app).await, "the refusal was never held");
    assert_eq!(get_tenant(&app, "acme").await.status(), StatusCode::OK);
    assert!(
        !refused.is_finished(),
        "the refusal was answered before the read"
    );

    let (refused, took) = refused.await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.value()["error"]["details"]["limit_class"], "auth");
    // Answered as it was refused: `Retry-After` counts from the answer.
    assert_eq!(header(&refused, "retry-after"), "60");
    assert!(took >= hold, "answered after {took:?}, before its hold");
    assert_eq!(refused.header("connection"), None);
}

#[tokio::test]
async fn past_the_holds_a_node_has_a_refusal_is_answered_at_once_and_its_connection_closed() {
    let (app, _clock) = app_with_clock(RateLimitSettings {
        auth_per_minute: 1,
        auth_burst: 1,
        refusal_hold: Duration::from_secs(30),
        refusal_holds: 1,
        ..RateLimitSettings::default()
    })
    .await;
    app.create_tenant("acme").await;
    app.raise_rate_limits("acme").await;
    let acme = app.tenant("acme");
    assert_eq!(guess(&acme).await.status(), StatusCode::UNAUTHORIZED);
    // The one hold, taken for 30 s.
    let first = tokio::spawn({
        let acme = acme.clone();
        async move { guess(&acme).await }
    });
    assert!(
        first_refusal_held(&app).await,
        "the first refusal was never held"
    );

    let second = guess(&acme).await;
    assert_eq!(second.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.header("connection"), Some("close"));
    assert!(!first.is_finished(), "the held refusal was answered early");
    assert_eq!(refusals_held(&app, "full").await, Some(1.0));
    first.abort();
}

#[tokio::test]
async fn operational_endpoints_and_unknown_tenants_are_not_rate_limited() {
    let (app, _clock) = app_with_clock(RateLimitSettings::default()).await;
    app.create_tenant("acme").await;
    app.set_quotas("acme", json!({"requests_per_second": 1, "burst": 2}))
        .await;
    for _ in 0..2 {
        assert_eq!(get_tenant(&app, "acme").await.status(), StatusCode::OK);
    }
    assert_eq!(
        get_tenant(&app, "acme").await.status(),
        StatusCode::TOO_MANY_REQUESTS
    );
    // With the tenant's budget spent (and the clock standing still), its operational
    // endpoints, named for the tenant by header or host, still answer, more often than the
    // burst, and carry no rate-limit headers.
    let by_header = app.tenant("acme");
    let by_host = Client::with_http(app.http.clone(), app.data_url.clone());
    let host = format!("acme.{}", tenantry_tests::BASE_DOMAIN);
    for path in ["/healthz", "/readyz", "/metrics"] {
        for _ in 0..5 {
            for request in [by_header.get(path), by_host.get(path).header("host", &host)] {
                let response = request.send().await.unwrap();
                assert_eq!(response.status(), StatusCode::OK, "{path}");
                assert!(response.header("x-ratelimit-limit").is_none(), "{path}");
            }
        }
    }
    assert_eq!(
        get_tenant(&app, "acme").await.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "the tenant's budget refilled meanwhile: the checks above proved nothing"
    );
    // An unknown tenant has no budget to spend: far more requests than any burst all get 404.
    for _ in 0..30 {
        let unknown = get_tenant(&app, "nosuch").await;
        assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
        assert!(unknown.header("x-ratelimit-limit").is_none());
    }
}

/// Invites `email` as a member: the answer as it came (a refusal is what some tests are about).
async fn invite(owner: &Client, email: &str) -> Reply {
    owner
        .post("/v1/admin/users/invitations")
        .json(&json!({"email": email, "roles": ["member"]}))
        .send()
        .await
        .unwrap()
}

/// `GET /v1/usage` as `key`: the answer as it came.
async fn usage(key: &Client) -> Reply {
    key.get("/v1/usage").send().await.unwrap()
}

async fn user_count(owner: &Client) -> usize {
    owner
        .users()
        .list(None, None, None)
        .await
        .unwrap()
        .users
        .len()
}

#[tokio::test]
async fn invitations_beyond_max_users_are_refused_until_the_quota_is_raised() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.set_quotas("acme", json!({"max_users": 2})).await;

    let first = unique_address("first");
    assert_eq!(invite(&owner, &first).await.status(), StatusCode::CREATED);

    let second = unique_address("second");
    let refused = invite(&owner, &second).await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(refused.header("x-request-id").is_some());
    let body = refused.value();
    assert_eq!(body["error"]["code"], "quota_exceeded");
    assert_eq!(
        body["error"]["details"],
        json!({"quota": "max_users", "limit": 2})
    );
    assert_eq!(user_count(&owner).await, 2, "nothing was created");
    assert_eq!(
        app.queued_mails("acme", &second).await,
        0,
        "no mail was sent"
    );

    app.set_quotas("acme", json!({"max_users": 3})).await;
    assert_eq!(invite(&owner, &second).await.status(), StatusCode::CREATED);
    assert_eq!(user_count(&owner).await, 3);
}

#[tokio::test]
async fn concurrent_invitations_never_overshoot_max_users() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.set_quotas("acme", json!({"max_users": 3})).await;
    let addresses: Vec<String> = (0..6).map(|_| unique_address("rush")).collect();
    let statuses: Vec<StatusCode> = join_all(
        addresses
            .iter()
            .map(|email| async { invite(&owner, email).await.status() }),
    )
    .await;
    let created = statuses
        .iter()
        .filter(|status| **status == StatusCode::CREATED)
        .count();
    let refused = statuses
        .iter()
        .filter(|status| **status == StatusCode::FORBIDDEN)
        .count();
    assert_eq!((created, refused), (2, 4), "{statuses:?}");
    assert_eq!(user_count(&owner).await, 3);
}

#[tokio::test]
async fn self_sign_up_in_a_full_tenant_is_refused_alike_for_known_and_new_addresses() {
    let app = TestApp::spawn().await;
    let owner = app.tenant_with_owner("acme").await;
    app.allow_self_signup("acme").await;
    app.set_quotas("acme", json!({"max_users": 1})).await;
    let register = |email: String| {
        let app = &app;
        async move {
            app.tenant("acme")
                .post("/v1/auth/register")
                .json(&json!({"email": email, "password": "correct horse battery staple"}))
                .send()
                .await
                .unwrap()
        }
    };

    let newcomer = unique_address("newcomer");
    for email in [newcomer.clone(), OWNER_EMAIL.to_owned()] {
        let refused = register(email).await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN);
        let body = refused.value();
        assert_eq!(body["error"]["code"], "quota_exceeded");
        assert_eq!(body["error"]["details"]["quota"], "max_users");
    }
    assert_eq!(app.queued_mails("acme", &newcomer).await, 0);
    assert_eq!(user_count(&owner).await, 1);

    app.set_quotas("acme", json!({"max_users": 2})).await;
    assert_eq!(
        register(newcomer.clone()).await.status(),
        StatusCode::ACCEPTED
    );
    assert_eq!(app.queued_mails("acme", &newcomer).await, 1);
}

#[tokio::test]
async fn one_api_key_may_use_only_its_share_of_the_tenant_rate() {
    let (app, clock) = app_with_clock(RateLimitSettings::default()).await;
    let owner = app.tenant_with_owner("acme").await;
    let usage_key = || async {
        let created = owner
            .api_keys()
            .create(&NewKey::new("usage reader", &["usage:read"]))
            .await
            .unwrap();
        app.tenant("acme").with_api_key(created.key.expose())
    };
    let first = usage_key().await;
    let second = usage_key().await;
    // Each key gets half: a burst of 4 of the tenant's 8.
    app.set_quotas("acme", json!({"requests_per_second": 1, "burst": 8}))
        .await;

    for _ in 0..4 {
        let response = usage(&first).await;
        assert_eq!(response.status(), StatusCode::OK);
    }
    let refused = usage(&first).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&refused, "x-ratelimit-limit"), "4");
    assert!(refused.header("retry-after").is_some());
    let body = refused.value();
    assert_eq!(body["error"]["details"]["limit_class"], "api_key");

    // Another key, and the tenant's users, still have their budget.
    assert_eq!(usage(&second).await.status(), StatusCode::OK);
    assert_eq!(get_tenant(&app, "acme").await.status(), StatusCode::OK);
    // The key's share refills at half the tenant's rate.
    clock.advance(time::Duration::seconds(2));
    assert_eq!(usage(&first).await.status(), StatusCode::OK);
}
