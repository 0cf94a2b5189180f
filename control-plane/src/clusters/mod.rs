//! The Postgres clusters tenants live on: `control-plane cluster add|list|drain|undrain|
//! set-default|remove` and `/v1/clusters`.
//!
//! A cluster is a row of `control.postgres_clusters`. The catalog's own cluster (`primary`)
//! is reached through the control plane's `database_url`; every other one through a
//! reference to a secret, never the secret itself: the name of an environment variable or
//! the path of a file holding its URL. Each plane resolves the reference in its own
//! environment: the control plane connects with the URL as it is (an administrator), the data
//! plane keeps its hosts, port and database and connects with its own login
//! (`shared::cluster::fleet`).
//!
//! A cluster is prepared when it is added, and again by every `control-plane migrate`: the
//! data plane's role and the audit outbox that a tenant's transactions write into
//! (`shared::cluster`). Adding an unreachable cluster is refused, and nothing is stored.
//!
//! `rebalance` plans (and runs) the moves that empty drained clusters and even out the others.

pub mod pools;
pub mod rebalance;
pub mod routes;
pub mod service;
pub mod store;
