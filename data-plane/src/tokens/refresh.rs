//! Refresh tokens: opaque, stored as digests, one chain per session.
//!
//! Rotation rule (two tabs refreshing at once): the first use of a token wins and gets the
//! next pair; the row is locked for the length of that transaction, so a concurrent use waits
//! and then sees the token used. A used token presented again within [`REUSE_GRACE`] is
//! answered 409 `refresh_token_already_used` and changes nothing (the other tab has the new
//! pair; the session lives on). Presented later than that, it is treated as stolen: the whole
//! session (every token of the chain, and its access tokens through the session check) is
//! revoked. So exactly one new pair exists per rotation, and a race never logs anyone out.

use std::time::Duration;

use shared::secret_token::SecretToken;
use shared::tenant_context::TenantTransaction;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{store, TokenError};

pub const PREFIX: &str = "tnrt_";
pub const REUSE_GRACE: Duration = Duration::from_secs(10);

/// What a presented refresh token turned out to be.
pub enum Presented {
    Unknown,
    /// Live: its session, which the caller checks before rotating.
    Live {
        session_id: Uuid,
    },
    /// Used `ago` before now, in session `session_id`.
    Used {
        session_id: Uuid,
        ago: Duration,
    },
}

/// Looks the token up and locks its row until the transaction ends.
pub async fn find_for_update(
    transaction: &mut TenantTransaction,
    digest: &[u8],
    now: OffsetDateTime,
) -> Result<Presented, TokenError> {
    let Some((session_id, used_at)) = store::refresh_token_for_update(transaction, digest).await?
    else {
        return Ok(Presented::Unknown);
    };
    Ok(match used_at {
        None => Presented::Live { session_id },
        Some(used_at) => Presented::Used {
            session_id,
            ago: (now - used_at).try_into().unwrap_or_default(),
        },
    })
}

/// Marks `digest` used (when given) and stores a new token for the session; returns it.
pub async fn rotate(
    transaction: &mut TenantTransaction,
    rng: &ring::rand::SystemRandom,
    session_id: Uuid,
    used: Option<&[u8]>,
    now: OffsetDateTime,
) -> Result<SecretToken, TokenError> {
    if let Some(digest) = used {
        store::mark_refresh_token_used(transaction, digest, now).await?;
    }
    let token = SecretToken::generate(rng, PREFIX)?;
    store::insert_refresh_token(transaction, token.digest(), session_id, now).await?;
    Ok(token)
}
