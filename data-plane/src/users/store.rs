//! SQL of the users admin, run in the tenant's transaction (so only ever in the tenant's own
//! schema, where the ids of other tenants' users simply do not exist).

use serde::Serialize;
use shared::email::Email;
use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

/// A user as tenant admins see it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    pub id: Uuid,
    pub email: Email,
    pub display_name: String,
    pub status: String,
    pub email_verified: bool,
    pub mfa_enabled: bool,
    pub roles: Vec<String>,
    /// The conditions of conditional assignments, by role name.
    pub role_conditions: serde_json::Value,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

const VIEW_COLUMNS: &str = "u.id, u.email, u.display_name, u.status,
     u.email_verified_at IS NOT NULL AS email_verified,
     u.totp_enabled_at IS NOT NULL AS mfa_enabled,
     ARRAY(SELECT role_name FROM user_roles WHERE user_id = u.id ORDER BY role_name) AS roles,
     u.created_at, u.updated_at,
     (SELECT coalesce(jsonb_object_agg(role_name, conditions), '{}') FROM user_roles
      WHERE user_id = u.id AND conditions IS NOT NULL) AS role_conditions";

fn view_from_row(row: &tokio_postgres::Row) -> Result<UserView, tokio_postgres::Error> {
    Ok(UserView {
        id: row.try_get("id")?,
        email: Email::from_stored(row.try_get("email")?),
        display_name: row.try_get("display_name")?,
        status: row.try_get("status")?,
        email_verified: row.try_get("email_verified")?,
        mfa_enabled: row.try_get("mfa_enabled")?,
        roles: row.try_get("roles")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        role_conditions: row.try_get("role_conditions")?,
    })
}

/// Up to `limit` users after `after` in id order (a stable order that new users cannot
/// disturb), optionally only those with `status`.
pub async fn list(
    transaction: &mut TenantTransaction,
    status: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<Vec<UserView>, TenantDbError> {
    let sql = format!(
        "SELECT {VIEW_COLUMNS} FROM users u
         WHERE ($1::text IS NULL OR u.status = $1) AND ($2::uuid IS NULL OR u.id > $2)
         ORDER BY u.id LIMIT $3"
    );
    let rows = transaction
        .query_typed(
            &sql,
            &[
                (&status, Type::TEXT),
                (&after, Type::UUID),
                (&limit, Type::INT8),
            ],
        )
        .await?;
    Ok(rows.iter().map(view_from_row).collect::<Result<_, _>>()?)
}

pub async fn get(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Option<UserView>, TenantDbError> {
    let sql = format!("SELECT {VIEW_COLUMNS} FROM users u WHERE u.id = $1");
    let rows = transaction
        .query_typed(&sql, &[(&user_id, Type::UUID)])
        .await?;
    Ok(rows.first().map(view_from_row).transpose()?)
}

/// Locks the rows of every active owner, in id order (so two transactions never wait on each
/// other in a cycle). Every change that could leave the tenant without an active owner takes
/// these locks first, so such changes run one after another.
pub async fn lock_active_owners(transaction: &mut TenantTransaction) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "SELECT u.id FROM users u
             WHERE u.status = 'active'
               AND EXISTS (SELECT 1 FROM user_roles WHERE user_id = u.id AND role_name = 'owner')
             ORDER BY u.id FOR UPDATE",
            &[],
        )
        .await?;
    Ok(())
}

/// Active owners other than `user_id`. Run it after [`lock_active_owners`], as its own
/// statement: in READ COMMITTED it then sees whatever the transactions it waited for
/// committed.
pub async fn other_active_owners(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<i64, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT count(*) AS owners FROM users u
             WHERE u.status = 'active' AND u.id <> $1
               AND EXISTS (SELECT 1 FROM user_roles WHERE user_id = u.id AND role_name = 'owner')",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(row.try_get("owners")?),
        None => Ok(0),
    }
}

/// The longest-standing active owner other than `user_id`: who inherits the records of a
/// user who erases themselves, when the tenant keeps erased users' records.
pub async fn senior_other_owner(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Option<Uuid>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT u.id FROM users u
             WHERE u.status = 'active' AND u.id <> $1
               AND EXISTS (SELECT 1 FROM user_roles WHERE user_id = u.id AND role_name = 'owner')
             ORDER BY u.created_at, u.id LIMIT 1",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    rows.first()
        .map(|row| row.try_get("id"))
        .transpose()
        .map_err(Into::into)
}

/// The user an admin acts on, locked for the rest of the transaction.
pub struct Target {
    pub id: Uuid,
    pub status: String,
    pub roles: Vec<String>,
}

impl Target {
    pub fn is_owner(&self) -> bool {
        self.roles.iter().any(|role| role == super::OWNER)
    }

    pub fn is_active_owner(&self) -> bool {
        self.status == "active" && self.is_owner()
    }
}

pub async fn lock_user(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Option<Target>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT u.id, u.status,
                    ARRAY(SELECT role_name FROM user_roles WHERE user_id = u.id ORDER BY role_name)
                        AS roles
             FROM users u WHERE u.id = $1 FOR UPDATE",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    match rows.first() {
        Some(row) => Ok(Some(Target {
            id: row.try_get("id")?,
            status: row.try_get("status")?,
            roles: row.try_get("roles")?,
        })),
        None => Ok(None),
    }
}

/// Creates an invited user; `false` when the address is taken (a user's address, or the
/// `userName` a directory gave a user: template V12).
pub async fn insert_invited(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    email: &Email,
    display_name: &str,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "INSERT INTO users (id, email, display_name, status) VALUES ($1, $2, $3, 'invited')
             ON CONFLICT DO NOTHING RETURNING id",
            &[
                (&user_id, Type::UUID),
                (&email.as_str(), Type::TEXT),
                (&display_name, Type::TEXT),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Makes `roles` exactly the user's roles.
/// Makes `roles` (each with its `conditions`, `None`: unconditional) exactly the user's role
/// assignments; unchanged ones keep their grant time.
pub async fn set_roles(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
    roles: &[String],
    conditions: &[Option<serde_json::Value>],
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "WITH removed AS (
                 DELETE FROM user_roles WHERE user_id = $1 AND NOT (role_name = ANY($2)))
             INSERT INTO user_roles (user_id, role_name, conditions)
             SELECT $1, role, conditions FROM unnest($2::text[], $3::jsonb[]) AS a (role, conditions)
             ON CONFLICT (user_id, role_name) DO UPDATE SET conditions = EXCLUDED.conditions
             WHERE user_roles.conditions IS DISTINCT FROM EXCLUDED.conditions",
            &[
                (&user_id, Type::UUID),
                (&roles, Type::TEXT_ARRAY),
                (&conditions, Type::JSONB_ARRAY),
            ],
        )
        .await?;
    touch(transaction, user_id).await
}

/// The user's role assignments: role and stored conditions.
pub async fn assignments(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<Vec<(String, Option<serde_json::Value>)>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT role_name, conditions FROM user_roles WHERE user_id = $1",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| Ok((row.try_get("role_name")?, row.try_get("conditions")?)))
        .collect::<Result<_, tokio_postgres::Error>>()?)
}

async fn touch(transaction: &mut TenantTransaction, user_id: Uuid) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET updated_at = now() WHERE id = $1",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(())
}

pub async fn insert_user_token(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    user_id: Uuid,
    purpose: &str,
    expires_at: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "INSERT INTO user_tokens (token_hash, user_id, purpose, expires_at)
             VALUES ($1, $2, $3, $4)",
            &[
                (&digest, Type::BYTEA),
                (&user_id, Type::UUID),
                (&purpose, Type::TEXT),
                (&expires_at, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

pub async fn disable(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET status = 'disabled', updated_at = now() WHERE id = $1",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// Re-enables a disabled user into the status its state implies: `invited` without a
/// password yet, `pending` with an unverified address, otherwise `active`.
pub async fn enable(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET updated_at = now(), status = CASE
                 WHEN password_hash IS NULL THEN 'invited'
                 WHEN email_verified_at IS NULL THEN 'pending'
                 ELSE 'active' END
             WHERE id = $1 AND status = 'disabled'",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// Removes the user's TOTP enrolment, backup codes and pending MFA sign-in steps.
pub async fn clear_mfa(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "WITH codes AS (DELETE FROM backup_codes WHERE user_id = $1),
                  challenges AS (DELETE FROM mfa_challenges WHERE user_id = $1)
             UPDATE users SET totp_secret = NULL, totp_key_version = NULL,
                              totp_enabled_at = NULL, totp_last_step = NULL, updated_at = now()
             WHERE id = $1",
            &[(&user_id, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// Deletes the user; sessions, tokens, roles and history go with it (foreign keys cascade).
pub async fn delete(
    transaction: &mut TenantTransaction,
    user_id: Uuid,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed("DELETE FROM users WHERE id = $1", &[(&user_id, Type::UUID)])
        .await?;
    Ok(())
}
