//! SQL of the personal-data export and erasure, in the tenant's schema.

use shared::tenant_context::{TenantDbError, TenantTransaction};
use tokio_postgres::types::Type;
use uuid::Uuid;

use super::{PrivacyPolicy, SETTINGS_KEY};

/// Everything the tenant holds about `user_id`, secrets left out, as one JSON document;
/// `None` for an unknown user. Records the user owns come without their sensitive fields
/// (flagged `sensitive_fields_withheld`): those stay behind `sensitive.<collection>:read`, as
/// on the records API, since a record's owner is not necessarily its subject.
pub async fn export(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Option<serde_json::Value>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT jsonb_build_object(
                 'user', jsonb_build_object(
                     'id', u.id, 'email', u.email, 'display_name', u.display_name,
                     'status', u.status, 'email_verified_at', u.email_verified_at,
                     'password_changed_at', u.password_changed_at,
                     'mfa_enabled', u.totp_enabled_at IS NOT NULL,
                     'created_at', u.created_at, 'updated_at', u.updated_at),
                 'roles', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'role', role_name, 'conditions', conditions, 'granted_at', granted_at)
                         ORDER BY role_name), '[]')
                     FROM user_roles WHERE user_id = u.id),
                 'backup_codes_remaining', (SELECT count(*) FROM backup_codes
                     WHERE user_id = u.id AND used_at IS NULL),
                 'sessions', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', id, 'created_at', created_at, 'last_seen_at', last_seen_at,
                         'expires_at', expires_at, 'ip', host(ip), 'user_agent', user_agent,
                         'amr', amr, 'revoked_at', revoked_at, 'revoked_reason', revoked_reason)
                         ORDER BY created_at), '[]')
                     FROM sessions WHERE user_id = u.id),
                 'api_keys', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'id', id, 'name', name, 'prefix', prefix, 'scopes', scopes,
                         'allowed_ips', allowed_ips, 'expires_at', expires_at,
                         'created_at', created_at, 'revoked_at', revoked_at,
                         'last_used_at', last_used_at, 'use_count', use_count)
                         ORDER BY created_at), '[]')
                     FROM api_keys WHERE created_by = u.id),
                 'records', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'collection', collection, 'id', id, 'data', data, 'version', version,
                         'sensitive_fields_withheld', sealed IS NOT NULL,
                         'created_at', created_at, 'updated_at', updated_at)
                         ORDER BY collection, created_at, id), '[]')
                     FROM records WHERE owner_id = u.id),
                 'sign_in_attempts', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                         'at', at, 'method', method, 'outcome', outcome, 'ip', host(ip),
                         'user_agent', user_agent) ORDER BY at), '[]')
                     FROM login_attempts WHERE user_id = u.id OR email = u.email)) AS export
             FROM users u WHERE u.id = $1",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(row.try_get("export")?)),
        None => Ok(None),
    }
}

/// Strips what is kept about `email` outside the user's own rows (deleted with the user) of
/// personal data: sign-in attempts keep their time, method and outcome only; throttling rows
/// and mail to the address go.
pub async fn forget_address(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    email: &str,
) -> Result<(), TenantDbError> {
    let params: [(&(dyn tokio_postgres::types::ToSql + Sync), Type); 2] =
        [(&user_id, Type::UUID), (&email, Type::TEXT)];
    transaction
        .query_typed(
            "UPDATE login_attempts SET email = 'erased', user_id = NULL, ip = NULL,
                 user_agent = NULL
             WHERE user_id = $1 OR email = $2",
            &params,
        )
        .await?;
    let email_only = &params[1..];
    for sql in [
        "DELETE FROM login_throttle WHERE email = $1",
        "DELETE FROM account_mail_sends WHERE email = $1",
        "DELETE FROM mail_outbox WHERE to_address = $1",
    ] {
        transaction.query_typed(sql, email_only).await?;
    }
    Ok(())
}

/// The tenant's privacy policy. One stored that no longer parses reads as the default, which
/// keeps data.
pub async fn policy(transaction: &mut TenantTransaction) -> Result<PrivacyPolicy, TenantDbError> {
    crate::settings::store::read(transaction, SETTINGS_KEY).await
}

pub async fn save_policy(
    transaction: &mut TenantTransaction,
    policy: &PrivacyPolicy,
) -> Result<(), TenantDbError> {
    crate::settings::store::write(transaction, SETTINGS_KEY, policy).await
}
