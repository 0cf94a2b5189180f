//! The tenant's usage against its quotas (`GET /v1/usage`, `usage:read`, open to API keys):
//! users, live API keys and record storage, each with its limit from the control plane's quotas.
//!
//! Counts are read when asked (a few indexed counts in the tenant's schema); limits come with
//! the served tenant, so a quota change in the control plane shows at the next request.

pub mod daily;
pub mod routes;
pub mod service;
pub mod store;

/// To read the tenant's usage.
pub const READ: &str = "usage:read";
