//! Liveness, readiness and metrics endpoints (not tenant-scoped).

pub mod routes;
mod store;
