//! TOTP MFA: enrolment checked against an independent implementation (`oathtool`), the ±1
//! step window, replay refusal, the `mfa_token` sign-in step, backup codes, the tenant's MFA
//! policy and bad input. Time comes from a manual clock, so no test sleeps.

mod enrolment;
mod sign_in;

use data_plane::clock::ManualClock;
use reqwest::StatusCode;
use serde_json::{json, Value};
use tenantry_tests::{TestApp, TestOptions};
use time::OffsetDateTime;

pub const PASSWORD: &str = "correct horse battery staple";
pub const STEP: time::Duration = time::Duration::seconds(30);

/// An app whose data plane reads a manual clock, started 10 seconds into a 30-second step
/// near the real time (tokens are still checked against the real time).
pub async fn app_with_clock() -> (TestApp, ManualClock) {
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let start = OffsetDateTime::from_unix_timestamp(now - now % 30 + 10).unwrap();
    let clock = ManualClock::new(start);
    let app = TestApp::spawn_with(TestOptions {
        clock: Some(clock.clone()),
        ..TestOptions::default()
    })
    .await;
    (app, clock)
}

/// The code for `secret` at `at`, computed by oathtool (Debian's `oathtool` package), not
/// by our code.
pub fn oathtool(secret: &str, at: OffsetDateTime) -> String {
    let format =
        time::macros::format_description!("[year]-[month]-[day] [hour]:[minute]:[second] UTC");
    let output = std::process::Command::new("oathtool")
        .args([
            "--totp",
            "-b",
            secret,
            "--now",
            &at.format(&format).unwrap(),
        ])
        .output()
        .expect("oathtool is installed (apt-get install oathtool)");
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

pub async fn send(request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

pub fn code_of(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

pub fn post_as(
    app: &TestApp,
    slug: &str,
    path: &str,
    token: &str,
    body: &Value,
) -> reqwest::RequestBuilder {
    app.tenant_post(slug, path, body).bearer_auth(token)
}

pub fn get_as(app: &TestApp, slug: &str, path: &str, token: &str) -> reqwest::RequestBuilder {
    app.tenant_get(slug, path).bearer_auth(token)
}

/// A signed-in user's TOTP enrolment.
pub struct Enrolled {
    pub secret: String,
    pub backup_codes: Vec<String>,
}

/// Sets up TOTP for the holder of `access_token` and enables it with oathtool's code for the
/// clock's time.
pub async fn enrol(app: &TestApp, clock: &ManualClock, slug: &str, access_token: &str) -> Enrolled {
    let (status, setup) = send(post_as(
        app,
        slug,
        "/v1/me/mfa/totp/setup",
        access_token,
        &json!({}),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{setup}");
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let code = oathtool(&secret, clock.now());
    let (status, enabled) = send(post_as(
        app,
        slug,
        "/v1/me/mfa/totp/enable",
        access_token,
        &json!({ "code": code }),
    ))
    .await;
    assert_eq!(status, StatusCode::OK, "{enabled}");
    let backup_codes = enabled["backup_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|code| code.as_str().unwrap().to_owned())
        .collect();
    Enrolled {
        secret,
        backup_codes,
    }
}

/// A tenant `slug` whose admin `ada@<slug>.example` has TOTP enabled.
pub async fn tenant_with_mfa_admin(app: &TestApp, clock: &ManualClock, slug: &str) -> Enrolled {
    let email = format!("ada@{slug}.example");
    app.tenant_with_active_admin(slug, &email, PASSWORD).await;
    let tokens = app.sign_in(slug, &email, PASSWORD).await;
    enrol(app, clock, slug, tokens["access_token"].as_str().unwrap()).await
}

/// Signs in with the password; returns the `mfa_token` the answer must carry.
pub async fn mfa_token(app: &TestApp, slug: &str) -> String {
    let body = app
        .sign_in(slug, &format!("ada@{slug}.example"), PASSWORD)
        .await;
    assert_eq!(body["mfa_required"], true, "{body}");
    body["mfa_token"].as_str().unwrap().to_owned()
}

pub async fn verify(app: &TestApp, slug: &str, mfa_token: &str, code: &str) -> (StatusCode, Value) {
    send(app.tenant_post(
        slug,
        "/v1/auth/mfa/verify",
        &json!({ "mfa_token": mfa_token, "code": code }),
    ))
    .await
}

/// A six-digit code that is valid for `secret` at none of the steps around `at`.
pub fn wrong_code(secret: &str, at: OffsetDateTime) -> String {
    let valid: Vec<String> = (-2..=2)
        .map(|steps| oathtool(secret, at + STEP * steps))
        .collect();
    (0..10)
        .map(|digit| digit.to_string().repeat(6))
        .find(|code| !valid.contains(code))
        .unwrap()
}
