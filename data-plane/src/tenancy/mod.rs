//! Which tenant a request is for, and whether it may be served.
//!
//! `resolve` reads the tenant's name from the request (host or `X-Tenant`); `registry` turns
//! it into the catalog's view of the tenant, cached in moka and invalidated by `listener`
//! when the control plane publishes a change; `context` is the extractor that builds the
//! request's immutable [`RequestContext`]; `clusters` starts what a node runs for each
//! cluster holding tenants (their listeners, outbox recovery, mail).

pub mod clusters;
pub mod context;
pub mod data_keys;
pub mod early;
pub mod listener;
pub mod registry;
pub mod resolve;

pub use context::{ApiKeyPrincipal, Principal, RequestContext};
