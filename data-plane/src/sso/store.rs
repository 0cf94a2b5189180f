//! SQL of providers, domain bindings, login transactions, consumed SAML assertions, linked
//! identities and applications' one-time codes, run in the tenant's transaction.

use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::handoff::AppReturn;
use super::Destination;

pub use shared::sso::store::{existing_roles, provider_by_name, ProviderRow};

/// The enabled provider an email domain is bound to.
pub struct BoundDomain {
    pub provider_name: String,
    pub kind: String,
    pub display_name: String,
    pub require_sso: bool,
}

pub async fn domain_binding(
    transaction: &mut TenantTransaction,
    domain: &str,
) -> Result<Option<BoundDomain>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT p.name, p.kind, p.display_name, d.require_sso
             FROM sso_domains d JOIN sso_providers p ON p.id = d.provider_id
             WHERE d.domain = $1 AND p.enabled",
            &[(&domain, Type::TEXT)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(BoundDomain {
            provider_name: row.try_get("name")?,
            kind: row.try_get("kind")?,
            display_name: row.try_get("display_name")?,
            require_sso: row.try_get("require_sso")?,
        })),
        None => Ok(None),
    }
}

/// A login transaction to store.
pub struct NewTransaction<'a> {
    pub state_digest: &'a [u8],
    pub provider_id: Uuid,
    pub nonce: Option<&'a str>,
    pub pkce_verifier: Option<&'a str>,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// Where the finished sign-in goes.
    pub destination: &'a Destination,
}

pub async fn insert_transaction(
    transaction: &mut TenantTransaction,
    login: &NewTransaction<'_>,
) -> Result<(), TenantDbError> {
    // Expired transactions of the tenant go as new ones come: the table stays small without
    // a background job.
    transaction
        .query_typed(
            "DELETE FROM sso_login_transactions WHERE expires_at < $1",
            &[(&(login.now - time::Duration::hours(1)), Type::TIMESTAMPTZ)],
        )
        .await?;
    let (landing, app) = match login.destination {
        Destination::Tokens => (None, None),
        Destination::Console(landing) => (Some(landing), None),
        Destination::App(app) => (None, Some(app)),
    };
    transaction
        .query_typed(
            "INSERT INTO sso_login_transactions
                 (state_digest, provider_id, nonce, pkce_verifier, created_at, expires_at,
                  return_to, browser_digest, is_test,
                  app_redirect_uri, app_code_challenge, app_state)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            &[
                (&login.state_digest, Type::BYTEA),
                (&login.provider_id, Type::UUID),
                (&login.nonce, Type::TEXT),
                (&login.pkce_verifier, Type::TEXT),
                (&login.now, Type::TIMESTAMPTZ),
                (&login.expires_at, Type::TIMESTAMPTZ),
                (
                    &landing.map(|landing| landing.return_to.as_str()),
                    Type::TEXT,
                ),
                (
                    &landing.map(|landing| landing.browser_digest.as_slice()),
                    Type::BYTEA,
                ),
                (&landing.is_some_and(|landing| landing.test), Type::BOOL),
                (&app.map(|app| app.redirect_uri.as_str()), Type::TEXT),
                (&app.map(|app| app.code_challenge.as_str()), Type::TEXT),
                (&app.and_then(|app| app.state.as_deref()), Type::TEXT),
            ],
        )
        .await?;
    Ok(())
}

/// A spent login transaction: what the callback needs.
pub struct TakenTransaction {
    pub nonce: Option<String>,
    pub pkce_verifier: Option<String>,
    pub destination: Destination,
}

/// Spends the live, unspent transaction of `provider_id` with this digest. `None` when there
/// is none: unknown, expired, spent, or another provider's.
pub async fn take_transaction(
    transaction: &mut TenantTransaction,
    state_digest: &[u8],
    provider_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<TakenTransaction>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "UPDATE sso_login_transactions SET consumed_at = $3
             WHERE state_digest = $1 AND provider_id = $2 AND consumed_at IS NULL
               AND expires_at > $3
             RETURNING nonce, pkce_verifier, return_to, browser_digest, is_test,
                       app_redirect_uri, app_code_challenge, app_state",
            &[
                (&state_digest, Type::BYTEA),
                (&provider_id, Type::UUID),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    match rows.first() {
        Some(row) => {
            let return_to: Option<String> = row.try_get("return_to")?;
            let browser_digest: Option<Vec<u8>> = row.try_get("browser_digest")?;
            let app_redirect_uri: Option<String> = row.try_get("app_redirect_uri")?;
            let app_code_challenge: Option<String> = row.try_get("app_code_challenge")?;
            let destination = match (
                return_to,
                browser_digest,
                app_redirect_uri,
                app_code_challenge,
            ) {
                (Some(return_to), Some(browser_digest), _, _) => {
                    Destination::Console(super::Landing {
                        return_to,
                        browser_digest,
                        test: row.try_get("is_test")?,
                    })
                }
                (_, _, Some(redirect_uri), Some(code_challenge)) => Destination::App(AppReturn {
                    redirect_uri,
                    code_challenge,
                    state: row.try_get("app_state")?,
                }),
                _ => Destination::Tokens,
            };
            Ok(Some(TakenTransaction {
                nonce: row.try_get("nonce")?,
                pkce_verifier: row.try_get("pkce_verifier")?,
                destination,
            }))
        }
        None => Ok(None),
    }
}

/// Records a SAML assertion id as used; false when it was used before.
pub async fn consume_assertion(
    transaction: &mut TenantTransaction,
    provider_id: Uuid,
    assertion_id: &str,
    keep_until: OffsetDateTime,
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    transaction
        .query_typed(
            "DELETE FROM sso_consumed_assertions WHERE provider_id = $1 AND expires_at < $2",
            &[(&provider_id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    let rows = transaction
        .query_typed(
            "INSERT INTO sso_consumed_assertions (provider_id, assertion_id, expires_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING assertion_id",
            &[
                (&provider_id, Type::UUID),
                (&assertion_id, Type::TEXT),
                (&keep_until, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// The user an IdP subject is linked to.
pub async fn linked_user(
    transaction: &mut TenantTransaction,
    provider_id: Uuid,
    subject: &str,
) -> Result<Option<Uuid>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT user_id FROM sso_identities WHERE provider_id = $1 AND subject = $2",
            &[(&provider_id, Type::UUID), (&subject, Type::TEXT)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("user_id")?)),
        None => Ok(None),
    }
}

pub async fn link_identity(
    transaction: &mut TenantTransaction,
    provider_id: Uuid,
    subject: &str,
    user_id: Uuid,
    groups: &[String],
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "INSERT INTO sso_identities (provider_id, subject, user_id, groups, created_at,
                 last_login_at)
             VALUES ($1, $2, $3, $4, $5, $5)
             ON CONFLICT (provider_id, subject)
             DO UPDATE SET groups = EXCLUDED.groups, last_login_at = EXCLUDED.last_login_at",
            &[
                (&provider_id, Type::UUID),
                (&subject, Type::TEXT),
                (&user_id, Type::UUID),
                (&groups, Type::TEXT_ARRAY),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// Creates an active user signed in through SSO (no password); `false` when the address is
/// taken (a user's address, or a directory's `userName`: template V12).
pub async fn insert_sso_user(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    email: &str,
    display_name: &str,
    email_verified: bool,
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    let verified_at = email_verified.then_some(now);
    let rows = transaction
        .query_typed(
            "INSERT INTO users (id, email, display_name, status, email_verified_at)
             VALUES ($1, $2, $3, 'active', $4)
             ON CONFLICT DO NOTHING RETURNING id",
            &[
                (&user_id, Type::UUID),
                (&email, Type::TEXT),
                (&display_name, Type::TEXT),
                (&verified_at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Makes the user's roles among `managed` exactly `wanted` (roles outside `managed` are left
/// alone). Returns whether anything changed.
pub async fn sync_roles(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    managed: &[String],
    wanted: &[String],
) -> Result<bool, TenantDbError> {
    let removed = transaction
        .query_typed(
            "DELETE FROM user_roles WHERE user_id = $1 AND role_name = ANY($2)
                 AND NOT (role_name = ANY($3)) RETURNING role_name",
            &[
                (&user_id, Type::UUID),
                (&managed, Type::TEXT_ARRAY),
                (&wanted, Type::TEXT_ARRAY),
            ],
        )
        .await?;
    let added = transaction
        .query_typed(
            "INSERT INTO user_roles (user_id, role_name)
             SELECT $1, name FROM roles WHERE name = ANY($2)
             ON CONFLICT (user_id, role_name) DO NOTHING RETURNING role_name",
            &[(&user_id, Type::UUID), (&wanted, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(!removed.is_empty() || !added.is_empty())
}

/// Makes an invited or pending user active with a verified address (the IdP vouched for it).
pub async fn activate(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET status = 'active',
                 email_verified_at = coalesce(email_verified_at, $2)
             WHERE id = $1 AND status IN ('invited', 'pending')",
            &[(&user_id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(())
}

/// Keeps a test's result for the admin's page (and drops results over an hour old).
pub async fn insert_test_result(
    transaction: &mut TenantTransaction,
    provider_id: Uuid,
    result: &serde_json::Value,
    now: OffsetDateTime,
) -> Result<Uuid, TenantDbError> {
    transaction
        .query_typed(
            "DELETE FROM sso_test_results WHERE created_at < $1",
            &[(&(now - time::Duration::hours(1)), Type::TIMESTAMPTZ)],
        )
        .await?;
    let id = Uuid::now_v7();
    transaction
        .query_typed(
            "INSERT INTO sso_test_results (id, provider_id, result, created_at)
             VALUES ($1, $2, $3, $4)",
            &[
                (&id, Type::UUID),
                (&provider_id, Type::UUID),
                (result, Type::JSONB),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(id)
}

/// A test result of provider `provider_id`, while it is kept.
pub async fn test_result(
    transaction: &mut TenantTransaction,
    id: Uuid,
    provider_id: Uuid,
    now: OffsetDateTime,
) -> Result<Option<serde_json::Value>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT result FROM sso_test_results
             WHERE id = $1 AND provider_id = $2 AND created_at >= $3",
            &[
                (&id, Type::UUID),
                (&provider_id, Type::UUID),
                (&(now - time::Duration::hours(1)), Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("result")?)),
        None => Ok(None),
    }
}

/// A one-time code to store: what its exchange checks and whom it signs in.
pub struct NewHandoffCode<'a> {
    pub code_digest: &'a [u8],
    pub user_id: Uuid,
    pub provider_id: Uuid,
    pub redirect_uri: &'a str,
    pub code_challenge: &'a str,
    pub now: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

pub async fn insert_handoff_code(
    transaction: &mut TenantTransaction,
    code: &NewHandoffCode<'_>,
) -> Result<(), TenantDbError> {
    // Expired codes go as new ones come (the table holds a minute's worth at most).
    transaction
        .query_typed(
            "DELETE FROM sso_handoff_codes WHERE expires_at < $1",
            &[(&code.now, Type::TIMESTAMPTZ)],
        )
        .await?;
    transaction
        .query_typed(
            "INSERT INTO sso_handoff_codes
                 (code_digest, user_id, provider_id, redirect_uri, code_challenge, created_at,
                  expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[
                (&code.code_digest, Type::BYTEA),
                (&code.user_id, Type::UUID),
                (&code.provider_id, Type::UUID),
                (&code.redirect_uri, Type::TEXT),
                (&code.code_challenge, Type::TEXT),
                (&code.now, Type::TIMESTAMPTZ),
                (&code.expires_at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// A code taken for its exchange.
pub struct TakenHandoffCode {
    pub user_id: Uuid,
    pub provider_name: String,
    pub provider_kind: String,
    pub redirect_uri: String,
    pub code_challenge: String,
}

/// Takes (deletes) the live code with this digest: a code is taken once, whatever the
/// exchange then decides. `None` when unknown, spent or expired.
pub async fn take_handoff_code(
    transaction: &mut TenantTransaction,
    code_digest: &[u8],
    now: OffsetDateTime,
) -> Result<Option<TakenHandoffCode>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "WITH taken AS (
                 DELETE FROM sso_handoff_codes WHERE code_digest = $1
                 RETURNING user_id, provider_id, redirect_uri, code_challenge, expires_at)
             SELECT taken.user_id, taken.redirect_uri, taken.code_challenge,
                    p.name AS provider_name, p.kind AS provider_kind
             FROM taken JOIN sso_providers p ON p.id = taken.provider_id
             WHERE taken.expires_at > $2",
            &[(&code_digest, Type::BYTEA), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    rows.first()
        .map(|row| {
            Ok(TakenHandoffCode {
                user_id: row.try_get("user_id")?,
                provider_name: row.try_get("provider_name")?,
                provider_kind: row.try_get("provider_kind")?,
                redirect_uri: row.try_get("redirect_uri")?,
                code_challenge: row.try_get("code_challenge")?,
            })
        })
        .transpose()
}
