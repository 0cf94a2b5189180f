//! SQL of the SCIM service, in the tenant's transaction: users as a directory sees them,
//! groups and their members, and the roles groups give.

use serde_json::Value;
use shared::tenant_context::{TenantDbError, TenantTransaction};
use time::OffsetDateTime;
use tokio_postgres::types::Type;
use uuid::Uuid;

/// A user's row, with what SCIM shows of them.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub status: String,
    pub user_name: Option<String>,
    pub external_id: Option<String>,
    /// What the directory sent that has no column (name, emails, …); `None` for a user no
    /// directory has written.
    pub attributes: Option<Value>,
    /// The groups the user is a member of: `[{"value": id, "display": name}]`.
    pub groups: Value,
    pub roles: Vec<String>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const USER_COLUMNS: &str = "u.id, u.email, u.display_name, u.status, u.user_name, u.external_id,
     u.scim_attributes, u.created_at, u.updated_at,
     ARRAY(SELECT role_name FROM user_roles WHERE user_id = u.id ORDER BY role_name) AS roles,
     (SELECT coalesce(jsonb_agg(jsonb_build_object('value', g.id::text, 'display', g.display_name)
                                ORDER BY g.display_name), '[]')
      FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id
      WHERE m.user_id = u.id) AS groups";

fn user_from_row(row: &tokio_postgres::Row) -> Result<UserRow, tokio_postgres::Error> {
    Ok(UserRow {
        id: row.try_get("id")?,
        email: row.try_get("email")?,
        display_name: row.try_get("display_name")?,
        status: row.try_get("status")?,
        user_name: row.try_get("user_name")?,
        external_id: row.try_get("external_id")?,
        attributes: row.try_get("scim_attributes")?,
        groups: row.try_get("groups")?,
        roles: row.try_get("roles")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What narrows a list before its filter is applied in full: the equality a directory looks a
/// resource up by, answered from an index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Narrowing {
    All,
    Id(Uuid),
    /// A user's `userName` or a group's `displayName`, compared without case.
    Name(String),
    ExternalId(String),
}

impl Narrowing {
    /// The `WHERE` condition on the table aliased `alias` (columns `id`, `external_id`), with
    /// `name_condition` for [`Narrowing::Name`], and its one text parameter (`$1`).
    fn condition(&self, alias: &str, name_condition: &str) -> (String, Option<String>) {
        match self {
            Self::All => ("$1::text IS NULL".to_owned(), None),
            Self::Id(id) => (format!("{alias}.id = $1::text::uuid"), Some(id.to_string())),
            Self::Name(name) => (name_condition.to_owned(), Some(name.clone())),
            Self::ExternalId(id) => (format!("{alias}.external_id = $1"), Some(id.clone())),
        }
    }
}

/// Users in creation order, narrowed by `narrowing`.
pub async fn users(
    transaction: &mut TenantTransaction,
    narrowing: &Narrowing,
) -> Result<Vec<UserRow>, TenantDbError> {
    let (condition, value) = narrowing.condition(
        "u",
        // The expression of the unique index users_scim_user_name (template V12).
        "lower(coalesce(u.user_name, u.email)) = lower($1)",
    );
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users u
         WHERE {condition}
         ORDER BY u.created_at, u.id"
    );
    let rows = transaction
        .query_typed(&sql, &[(&value, Type::TEXT)])
        .await?;
    Ok(rows.iter().map(user_from_row).collect::<Result<_, _>>()?)
}

pub async fn user(
    transaction: &mut TenantTransaction,
    id: Uuid,
) -> Result<Option<UserRow>, TenantDbError> {
    Ok(users(transaction, &Narrowing::Id(id))
        .await?
        .into_iter()
        .next())
}

/// Serialises writes of the user names `names` (lower-cased) for the rest of the transaction,
/// so two directory requests cannot both take one.
pub async fn lock_names(
    transaction: &mut TenantTransaction,
    names: &[String],
) -> Result<(), TenantDbError> {
    let mut keys: Vec<String> = names.iter().map(|name| name.to_lowercase()).collect();
    keys.sort();
    keys.dedup();
    transaction
        .query_typed(
            "SELECT pg_advisory_xact_lock(hashtextextended('scim-user-name:' || key, 0))
             FROM unnest($1::text[]) AS key",
            &[(&keys, Type::TEXT_ARRAY)],
        )
        .await?;
    Ok(())
}

/// Whether a user other than `except` goes by `user_name` (their set name, or their address
/// when they have none) or has `email`.
pub async fn name_taken(
    transaction: &mut TenantTransaction,
    user_name: &str,
    email: &str,
    except: Option<Uuid>,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT 1 FROM users
             WHERE ($3::uuid IS NULL OR id <> $3)
               AND (lower(user_name) = lower($1) OR email = lower($1) OR email = $2)
             LIMIT 1",
            &[
                (&user_name, Type::TEXT),
                (&email, Type::TEXT),
                (&except, Type::UUID),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// A user's columns as the directory sets them.
pub struct UserFields<'a> {
    pub email: &'a str,
    pub display_name: &'a str,
    pub user_name: &'a str,
    pub external_id: Option<&'a str>,
    pub attributes: &'a Value,
}

/// Creates an active user with a verified address (the directory vouches for it) and the
/// tenant's default role.
pub async fn insert_user(
    transaction: &mut TenantTransaction,
    id: Uuid,
    fields: &UserFields<'_>,
    active: bool,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    let status = if active { "active" } else { "disabled" };
    transaction
        .query_typed(
            "INSERT INTO users (id, email, display_name, status, email_verified_at, user_name,
                                external_id, scim_attributes, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $5, $5)",
            &[
                (&id, Type::UUID),
                (&fields.email, Type::TEXT),
                (&fields.display_name, Type::TEXT),
                (&status, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
                (&fields.user_name, Type::TEXT),
                (&fields.external_id, Type::TEXT),
                (fields.attributes, Type::JSONB),
            ],
        )
        .await?;
    transaction
        .query_typed(
            "INSERT INTO user_roles (user_id, role_name)
             SELECT $1, name FROM roles WHERE name = 'member'",
            &[(&id, Type::UUID)],
        )
        .await?;
    Ok(())
}

/// Writes the directory's fields of user `id`.
pub async fn update_user(
    transaction: &mut TenantTransaction,
    id: Uuid,
    fields: &UserFields<'_>,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET email = $2, display_name = $3, user_name = $4, external_id = $5,
                 scim_attributes = $6, updated_at = $7,
                 email_verified_at = CASE WHEN email = $2 THEN email_verified_at ELSE $7 END
             WHERE id = $1",
            &[
                (&id, Type::UUID),
                (&fields.email, Type::TEXT),
                (&fields.display_name, Type::TEXT),
                (&fields.user_name, Type::TEXT),
                (&fields.external_id, Type::TEXT),
                (fields.attributes, Type::JSONB),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// Makes a user who is not active (disabled, invited or pending) active, their address
/// verified: the directory vouches for them.
pub async fn activate(
    transaction: &mut TenantTransaction,
    id: Uuid,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE users SET status = 'active', updated_at = $2,
                 email_verified_at = coalesce(email_verified_at, $2)
             WHERE id = $1 AND status <> 'active'",
            &[(&id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(())
}

/// A group's row.
#[derive(Debug, Clone)]
pub struct GroupRow {
    pub id: Uuid,
    pub display_name: String,
    pub external_id: Option<String>,
    pub role: Option<String>,
    /// `[{"value": user id}]`, in id order.
    pub members: Value,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

const GROUP_COLUMNS: &str = "g.id, g.display_name, g.external_id, g.role_name, g.created_at,
     g.updated_at,
     (SELECT coalesce(jsonb_agg(jsonb_build_object('value', u.id::text) ORDER BY u.id), '[]')
      FROM scim_group_members m JOIN users u ON u.id = m.user_id
      WHERE m.group_id = g.id) AS members";

fn group_from_row(row: &tokio_postgres::Row) -> Result<GroupRow, tokio_postgres::Error> {
    Ok(GroupRow {
        id: row.try_get("id")?,
        display_name: row.try_get("display_name")?,
        external_id: row.try_get("external_id")?,
        role: row.try_get("role_name")?,
        members: row.try_get("members")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// Groups in creation order, narrowed by `narrowing`.
pub async fn groups(
    transaction: &mut TenantTransaction,
    narrowing: &Narrowing,
) -> Result<Vec<GroupRow>, TenantDbError> {
    let (condition, value) = narrowing.condition("g", "lower(g.display_name) = lower($1)");
    let sql = format!(
        "SELECT {GROUP_COLUMNS} FROM scim_groups g
         WHERE {condition}
         ORDER BY g.created_at, g.id"
    );
    let rows = transaction
        .query_typed(&sql, &[(&value, Type::TEXT)])
        .await?;
    Ok(rows.iter().map(group_from_row).collect::<Result<_, _>>()?)
}

pub async fn group(
    transaction: &mut TenantTransaction,
    id: Uuid,
) -> Result<Option<GroupRow>, TenantDbError> {
    Ok(groups(transaction, &Narrowing::Id(id))
        .await?
        .into_iter()
        .next())
}

/// Locks group `id`'s row for the rest of the transaction; `false` when there is none.
pub async fn lock_group(
    transaction: &mut TenantTransaction,
    id: Uuid,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT id FROM scim_groups WHERE id = $1 FOR UPDATE",
            &[(&id, Type::UUID)],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Creates a group; `false` when its name is taken.
pub async fn insert_group(
    transaction: &mut TenantTransaction,
    id: Uuid,
    display_name: &str,
    external_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    let rows = transaction
        .query_typed(
            "INSERT INTO scim_groups (id, display_name, external_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $4) ON CONFLICT DO NOTHING RETURNING id",
            &[
                (&id, Type::UUID),
                (&display_name, Type::TEXT),
                (&external_id, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(!rows.is_empty())
}

/// Renames a group; `false` when another group has the name.
pub async fn update_group(
    transaction: &mut TenantTransaction,
    id: Uuid,
    display_name: &str,
    external_id: Option<&str>,
    now: OffsetDateTime,
) -> Result<bool, TenantDbError> {
    let taken = transaction
        .query_typed(
            "SELECT 1 FROM scim_groups WHERE lower(display_name) = lower($2) AND id <> $1",
            &[(&id, Type::UUID), (&display_name, Type::TEXT)],
        )
        .await?;
    if !taken.is_empty() {
        return Ok(false);
    }
    transaction
        .query_typed(
            "UPDATE scim_groups SET display_name = $2, external_id = $3, updated_at = $4
             WHERE id = $1",
            &[
                (&id, Type::UUID),
                (&display_name, Type::TEXT),
                (&external_id, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(true)
}

/// Deletes group `id`; the users who were its members (for their roles to be brought in
/// line), or `None` when there was no such group.
pub async fn delete_group(
    transaction: &mut TenantTransaction,
    id: Uuid,
) -> Result<Option<Vec<Uuid>>, TenantDbError> {
    let members = member_ids(transaction, id).await?;
    let rows = transaction
        .query_typed(
            "DELETE FROM scim_groups WHERE id = $1 RETURNING id",
            &[(&id, Type::UUID)],
        )
        .await?;
    Ok((!rows.is_empty()).then_some(members))
}

pub async fn member_ids(
    transaction: &mut TenantTransaction,
    group_id: Uuid,
) -> Result<Vec<Uuid>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT user_id FROM scim_group_members WHERE group_id = $1 ORDER BY user_id",
            &[(&group_id, Type::UUID)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("user_id"))
        .collect::<Result<_, _>>()?)
}

/// Which of `ids` are users of this tenant.
pub async fn existing_users(
    transaction: &mut TenantTransaction,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, TenantDbError> {
    let rows = transaction
        .query_typed(
            "SELECT id FROM users WHERE id = ANY($1)",
            &[(&ids, Type::UUID_ARRAY)],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?)
}

/// Makes `members` exactly group `group_id`'s members.
pub async fn set_members(
    transaction: &mut TenantTransaction,
    group_id: Uuid,
    members: &[Uuid],
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "DELETE FROM scim_group_members WHERE group_id = $1 AND NOT (user_id = ANY($2))",
            &[(&group_id, Type::UUID), (&members, Type::UUID_ARRAY)],
        )
        .await?;
    transaction
        .query_typed(
            "INSERT INTO scim_group_members (group_id, user_id)
             SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING",
            &[(&group_id, Type::UUID), (&members, Type::UUID_ARRAY)],
        )
        .await?;
    transaction
        .query_typed(
            "UPDATE scim_groups SET updated_at = $2 WHERE id = $1",
            &[(&group_id, Type::UUID), (&now, Type::TIMESTAMPTZ)],
        )
        .await?;
    Ok(())
}

/// Maps group `group_id` to `role` (`None`: to no role).
pub async fn set_group_role(
    transaction: &mut TenantTransaction,
    group_id: Uuid,
    role: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), TenantDbError> {
    transaction
        .query_typed(
            "UPDATE scim_groups SET role_name = $2, updated_at = $3 WHERE id = $1",
            &[
                (&group_id, Type::UUID),
                (&role, Type::TEXT),
                (&now, Type::TIMESTAMPTZ),
            ],
        )
        .await?;
    Ok(())
}

/// Brings the group-managed roles of `users` in line with their groups: a role some group is
/// mapped to (besides `also_managed`, a role a group was mapped to until now) is held exactly
/// while the user is in a group mapped to it. Other roles are left alone.
pub async fn sync_group_roles(
    transaction: &mut TenantTransaction,
    users: &[Uuid],
    also_managed: Option<&str>,
) -> Result<(), TenantDbError> {
    if users.is_empty() {
        return Ok(());
    }
    transaction
        .query_typed(
            "WITH managed AS (
                 SELECT role_name FROM scim_groups WHERE role_name IS NOT NULL
                 UNION SELECT $2::text WHERE $2::text IS NOT NULL
             ), wanted AS (
                 SELECT DISTINCT m.user_id, g.role_name
                 FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id
                 WHERE m.user_id = ANY($1) AND g.role_name IS NOT NULL
             )
             DELETE FROM user_roles ur
             WHERE ur.user_id = ANY($1)
               AND ur.role_name IN (SELECT role_name FROM managed)
               AND NOT EXISTS (SELECT 1 FROM wanted w
                               WHERE w.user_id = ur.user_id AND w.role_name = ur.role_name)",
            &[(&users, Type::UUID_ARRAY), (&also_managed, Type::TEXT)],
        )
        .await?;
    transaction
        .query_typed(
            "INSERT INTO user_roles (user_id, role_name)
             SELECT DISTINCT m.user_id, g.role_name
             FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id
             WHERE m.user_id = ANY($1) AND g.role_name IS NOT NULL
             ON CONFLICT (user_id, role_name) DO NOTHING",
            &[(&users, Type::UUID_ARRAY)],
        )
        .await?;
    Ok(())
}
