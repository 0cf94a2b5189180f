//! Tenant quotas that bound what a tenant stores (as opposed to the request rate, see
//! `rate_limit`): for now `max_users`.
//!
//! Invariants:
//! - Every code path that creates a user calls [`reserve_user_seat`] in the transaction that
//!   inserts the user, before inserting it: admin invitation, self sign-up and SSO
//!   just-in-time creation.
//! - The count is taken under a per-tenant transaction lock, so concurrent creations are
//!   counted one after another and can never overshoot the quota together.
//! - Every user row counts, whatever its status (invited, pending, active, disabled): each
//!   one can sign in or become able to, and re-enabling a user must not need a free seat.
//! - The limit is read from `ServedTenant::quotas`, which the registry reloads when the
//!   control plane changes it: a new quota applies without restart.

use serde_json::json;
use shared::catalog::Quotas;
use shared::error::ApiError;
use shared::tenant_context::{TenantDbError, TenantTransaction};

mod store;

#[derive(Debug, thiserror::Error)]
pub enum QuotaError {
    #[error("the tenant's {quota} quota ({limit}) is used up")]
    Exceeded { quota: &'static str, limit: i64 },
    #[error(transparent)]
    Db(#[from] TenantDbError),
}

impl From<QuotaError> for ApiError {
    fn from(error: QuotaError) -> Self {
        match error {
            QuotaError::Exceeded { quota, limit } => ApiError::forbidden(
                "quota_exceeded",
                format!("the tenant's {quota} quota ({limit}) is used up"),
            )
            .with_details(json!({ "quota": quota, "limit": limit })),
            QuotaError::Db(error) => error.into(),
        }
    }
}

/// Makes sure one more user fits the tenant's `max_users`, and holds the tenant's user-seat
/// lock until the transaction ends so no concurrent creation counts the same free seat.
pub async fn reserve_user_seat(
    transaction: &mut TenantTransaction,
    quotas: &Quotas,
) -> Result<(), QuotaError> {
    store::lock_user_seats(transaction).await?;
    // A statement of its own, after the lock: in READ COMMITTED it sees every user that the
    // transactions it waited for committed.
    let users = store::count_users(transaction).await?;
    if users >= quotas.max_users {
        return Err(QuotaError::Exceeded {
            quota: "max_users",
            limit: quotas.max_users,
        });
    }
    Ok(())
}
