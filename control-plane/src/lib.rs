//! The Tenantry control plane: the catalog, the cluster registry, tenant provisioning and
//! lifecycle, template
//! roll-outs, operator credentials, and the operator REST API. `main.rs` only parses the
//! command line and calls into here, so the tests run exactly what the binary runs.

pub mod audit;
pub mod cli;
pub mod clusters;
pub mod config;
pub mod console;
pub mod context;
pub mod error;
pub mod moves;
pub mod operators;
pub mod provisioning;
pub mod roles;
pub mod route_table;
pub mod server;
pub mod sso;
pub mod templates;
pub mod tenants;

pub use context::ControlPlane;
