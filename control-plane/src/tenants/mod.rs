//! Tenants as operators manage them: create (then provision), list, show, update, suspend,
//! resume, quotas, custom domains, export and delete.

pub mod routes;
pub mod service;
pub(crate) mod store;
