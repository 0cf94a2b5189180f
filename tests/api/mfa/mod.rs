//! TOTP MFA: enrolment checked against an independent implementation (`oathtool`), the ±1
//! step window, replay refusal, the `mfa_token` sign-in step, backup codes, the tenant's MFA
//! policy and bad input. Time comes from a manual clock, so no test sleeps.

mod enrolment;
mod sign_in;

use serde_json::json;
use shared::clock::ManualClock;
use tenantry_tests::client::Error;
pub use tenantry_tests::totp::{oathtool, STEP};
use tenantry_tests::{Client, Reply, TestApp, PASSWORD};
use time::OffsetDateTime;

/// A signed-in user's TOTP enrolment.
pub struct Enrolled {
    pub secret: String,
    pub backup_codes: Vec<String>,
}

/// Sets up TOTP for the signed-in `user` and enables it with oathtool's code for the
/// clock's time.
pub async fn enrol(clock: &ManualClock, user: &Client) -> Enrolled {
    let setup = user.me().setup_totp().await.unwrap();
    let secret = setup.secret.expose().to_owned();
    let backup_codes = user
        .me()
        .enable_totp(&oathtool(&secret, clock.now()))
        .await
        .unwrap()
        .iter()
        .map(|code| code.expose().to_owned())
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
    enrol(clock, &app.signed_in(slug, &email, PASSWORD).await).await
}

/// Signs in with the password; returns the `mfa_token` the answer must carry.
pub async fn mfa_token(app: &TestApp, slug: &str) -> String {
    match app
        .tenant(slug)
        .sign_in(&format!("ada@{slug}.example"), PASSWORD)
        .await
    {
        Err(Error::MfaRequired(challenge)) => challenge.mfa_token.expose().to_owned(),
        Ok(_) => panic!("signed in at {slug} without MFA"),
        Err(error) => panic!("signing in at {slug}: {error}"),
    }
}

/// `POST /v1/auth/mfa/verify` at `slug`, whatever the answer.
pub async fn verify(app: &TestApp, slug: &str, mfa_token: &str, code: &str) -> Reply {
    app.tenant(slug)
        .post("/v1/auth/mfa/verify")
        .json(&json!({ "mfa_token": mfa_token, "code": code }))
        .send()
        .await
        .unwrap()
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
