//! The hashing gate seen from outside: a sign-in flood on one tenant is refused with 503
//! `credential_check_busy` and `Retry-After` (never a 500), refused requests change nothing,
//! and another tenant still signs in and reads meanwhile. The gate's own limits are unit
//! tested in `data-plane/src/identity/hash_gate.rs`.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use data_plane::identity::hash_gate::HashLimits;
use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::{Client, Reply, TestApp, TestOptions, PASSWORD};

/// An app whose gate runs one computation at a time with room for two more requests (a
/// tenant may have two admitted), waiting as long as it takes: every refusal below comes
/// from the admission limits, none from a clock. The credential rate limit is lifted, as if
/// the flood came from many addresses.
async fn app_with_a_small_gate() -> TestApp {
    TestApp::spawn_with(TestOptions {
        password_hashing: HashLimits {
            concurrency: 1,
            queue: 2,
            wait: Duration::from_secs(600),
        },
        rate_limit: data_plane::rate_limit::RateLimitSettings {
            auth_per_minute: 1_000_000,
            auth_burst: 1_000_000,
            ..Default::default()
        },
        ..TestOptions::default()
    })
    .await
}

/// `POST /v1/auth/login` at `tenant`, whatever the answer.
async fn sign_in(tenant: &Client, email: &str, password: &str) -> Reply {
    tenant
        .post("/v1/auth/login")
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .unwrap()
}

/// Asserts `reply` is the gate's refusal; returns its `Retry-After`.
fn assert_busy(reply: &Reply) -> String {
    assert_eq!(
        reply.error_code(),
        (StatusCode::SERVICE_UNAVAILABLE, "credential_check_busy"),
        "{}",
        reply.text()
    );
    reply
        .header("retry-after")
        .expect("a busy refusal carries Retry-After")
        .to_owned()
}

async fn login_attempts(app: &TestApp, slug: &str) -> i64 {
    app.superuser()
        .await
        .query_one(
            &format!("SELECT count(*) FROM tenant_{slug}.login_attempts"),
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn a_flood_on_one_tenant_is_refused_as_busy_while_another_signs_in_and_reads() {
    let app = app_with_a_small_gate().await;
    let flooded = app
        .tenant_with_active_admin("flooded", "owner@flooded.example", PASSWORD)
        .await;
    app.tenant_with_active_admin("bystander", "owner@bystander.example", PASSWORD)
        .await;
    for slug in ["flooded", "bystander"] {
        app.raise_rate_limits(slug).await;
    }
    let attempts_before = login_attempts(&app, "flooded").await;
    let flooded_tenant = app.tenant("flooded");

    // Sixteen clients send wrong-password sign-ins at one tenant until told to stop, each to
    // an address of its own so that no lockout cuts the flood short.
    let stop = AtomicBool::new(false);
    let refused = AtomicUsize::new(0);
    let flood = join_all((0..16).map(|client| {
        let (flooded_tenant, stop, refused) = (&flooded_tenant, &stop, &refused);
        async move {
            let mut answers = Vec::new();
            let mut attempt = 0;
            while !stop.load(Ordering::SeqCst) {
                attempt += 1;
                let email = format!("nobody-{client}-{attempt}@flooded.example");
                let reply = sign_in(flooded_tenant, &email, "wrong password here").await;
                let status = reply.status();
                let retry_after = match status {
                    StatusCode::SERVICE_UNAVAILABLE => {
                        refused.fetch_add(1, Ordering::SeqCst);
                        Some(assert_busy(&reply))
                    }
                    _ => None,
                };
                answers.push((status, retry_after));
            }
            answers
        }
    }));
    let bystander = async {
        // Once the flood has its share of the gate and is being refused beyond it ...
        let flooding = TestApp::eventually(Duration::from_secs(60), || async {
            let (_, of_flooded) = app.data.password_hasher.admitted(flooded.id);
            of_flooded == app.data.password_hasher.limits().per_tenant()
                && refused.load(Ordering::SeqCst) > 0
        })
        .await;
        // ... the other tenant's owner signs in and reads.
        let signed_in = sign_in(
            &app.tenant("bystander"),
            "owner@bystander.example",
            PASSWORD,
        )
        .await;
        let signed_in_status = signed_in.status();
        let tokens: Value = signed_in.value();
        let me = app
            .as_bearer(
                "bystander",
                tokens["access_token"].as_str().unwrap_or_default(),
            )
            .get("/v1/me")
            .send()
            .await
            .unwrap();
        let me_status = me.status();
        stop.store(true, Ordering::SeqCst);
        (flooding, signed_in_status, tokens, me_status)
    };
    let (answers, (flooding, signed_in, tokens, me)) = futures_util::join!(flood, bystander);

    assert!(flooding.is_some(), "the flood never filled its share");
    assert_eq!(signed_in, StatusCode::OK, "{tokens}");
    assert_eq!(me, StatusCode::OK);
    let answers: Vec<(StatusCode, Option<String>)> = answers.into_iter().flatten().collect();
    let wrong = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::UNAUTHORIZED)
        .count();
    let busy: Vec<&Option<String>> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .map(|(_, retry_after)| retry_after)
        .collect();
    assert_eq!(
        wrong + busy.len(),
        answers.len(),
        "only 401 and 503 answers: {answers:?}"
    );
    assert!(wrong > 0 && !busy.is_empty(), "{answers:?}");
    // Each refusal is given a turn in the flooded tenant's line, whole seconds, capped.
    let max = data_plane::identity::hash_gate::MAX_RETRY_AFTER_SECONDS;
    assert!(
        busy.iter().all(|retry_after| retry_after
            .as_deref()
            .and_then(|seconds| seconds.parse::<u64>().ok())
            .is_some_and(|seconds| (1..=max).contains(&seconds))),
        "{busy:?}"
    );
    // Every checked password left its attempt; refused requests left nothing.
    assert_eq!(
        login_attempts(&app, "flooded").await - attempts_before,
        i64::try_from(wrong).unwrap()
    );
    // The places are all given back.
    assert_eq!(app.data.password_hasher.admitted(flooded.id), (0, 0));
}

#[tokio::test]
async fn every_password_endpoint_answers_busy_when_the_gate_is_full_and_changes_nothing() {
    let app = app_with_a_small_gate().await;
    let tenant = app
        .tenant_with_active_admin("acme", "owner@acme.example", PASSWORD)
        .await;
    app.raise_rate_limits("acme").await;
    let owner = app.signed_in("acme", "owner@acme.example", PASSWORD).await;
    let (acme, newco) = (app.tenant("acme"), app.tenant("newco"));
    let (_, activation) = app
        .create_tenant_with_admin("newco", "first@newco.example")
        .await;
    app.raise_rate_limits("newco").await;
    app.superuser()
        .await
        .execute(
            "INSERT INTO tenant_acme.settings (key, value)
             VALUES ('auth_policy', '{\"self_signup\": true}')
             ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            &[],
        )
        .await
        .unwrap();

    // Other tenants' requests hold every place on the node.
    let hasher = &app.data.password_hasher;
    let held: Vec<_> = (0..hasher.limits().admitted())
        .map(|_| hasher.admit(uuid::Uuid::new_v4()).unwrap())
        .collect();

    let new_password = "a brand new passphrase";
    let attempts = login_attempts(&app, "acme").await;
    let requests = [
        acme.post("/v1/auth/login")
            .json(&json!({"email": "owner@acme.example", "password": PASSWORD})),
        owner
            .post("/v1/me/password")
            .json(&json!({"current_password": PASSWORD, "new_password": new_password})),
        acme.post("/v1/auth/register")
            .json(&json!({"email": "newcomer@acme.example", "password": new_password})),
        newco
            .post("/v1/auth/activate")
            .json(&json!({"token": activation, "password": new_password})),
    ];
    for request in requests {
        assert_eq!(assert_busy(&request.send().await.unwrap()), "1");
    }
    // Operators see each refusal in the refusal counter.
    let metrics = tenantry_tests::metrics_text(&app.http, &app.data_url).await;
    let counted = tenantry_tests::refusals_counted(&metrics, 503, "credential_check_busy");
    assert_eq!(counted, Some(4), "{metrics}");
    // Nothing changed: no attempt recorded, the password and the activation token unchanged,
    // nobody registered.
    assert_eq!(login_attempts(&app, "acme").await, attempts);
    let db = app.superuser().await;
    let users: i64 = db
        .query_one(
            "SELECT count(*) FROM tenant_acme.users WHERE email = 'newcomer@acme.example'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(users, 0);

    // When the places come back, the same requests go through.
    drop(held);
    assert_eq!(hasher.admitted(tenant.id), (0, 0));
    app.signed_in("acme", "owner@acme.example", PASSWORD).await;
    let activated = newco
        .post("/v1/auth/activate")
        .json(&json!({"token": activation, "password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(activated.status(), StatusCode::OK);
    let changed = owner
        .post("/v1/me/password")
        .json(&json!({"current_password": PASSWORD, "new_password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
}
