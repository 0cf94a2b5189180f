//! The Tenantry data plane: a stateless node that routes each request to its tenant's schema.
//! `main.rs` only parses arguments and calls into here, so tests run what the binary runs.

pub mod accounts;
pub mod api_keys;
pub mod audit;
pub mod authz;
pub mod config;
pub mod console;
pub mod cors;
pub mod fresh_cache;
pub mod health;
pub mod hygiene;
pub mod identity;
pub mod ingest;
pub mod mail;
pub mod metrics;
pub mod mfa;
pub mod privacy;
pub mod quotas;
pub mod rate_limit;
pub mod records;
pub mod roles;
pub mod route_table;
pub mod scim;
pub mod server;
pub mod sessions;
pub mod settings;
pub mod sso;
pub mod state;
pub mod tenancy;
pub mod tenant_info;
pub mod tokens;
pub mod usage;
pub mod users;

pub use state::DataPlane;
