//! SQL of operator tokens in the catalog (`control.operator_tokens`); tokens are found by
//! their digest only.

use deadpool_postgres::GenericClient;
use uuid::Uuid;

use crate::error::ControlError;

/// Stores a token's digest under `name`; `false` when a token of that name exists already.
pub async fn insert_token(
    client: &impl GenericClient,
    name: &str,
    token_hash: &[u8],
) -> Result<bool, ControlError> {
    let inserted = client
        .execute(
            "INSERT INTO control.operator_tokens (id, name, token_hash) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO NOTHING",
            &[&Uuid::now_v7(), &name, &token_hash],
        )
        .await?;
    Ok(inserted > 0)
}

/// The name of the live (not revoked) token with this digest, noting that it was used now.
pub async fn use_token(
    client: &impl GenericClient,
    token_hash: &[u8],
) -> Result<Option<String>, ControlError> {
    let row = client
        .query_opt(
            "UPDATE control.operator_tokens SET last_used_at = now()
             WHERE token_hash = $1 AND revoked_at IS NULL
             RETURNING name",
            &[&token_hash],
        )
        .await?;
    match row {
        Some(row) => Ok(Some(row.try_get("name")?)),
        None => Ok(None),
    }
}
