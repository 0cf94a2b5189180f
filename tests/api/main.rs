//! Integration tests: both planes against a real Postgres (and ClickHouse for readiness),
//! one fresh catalog database per test. One binary, many modules, to keep linking cheap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod api_keys;
mod audit;
mod cli;
mod clickhouse_tls;
mod client;
mod clusters;
mod console;
mod console_admin;
mod console_browser;
mod contract;
mod deploy_files;
mod email_flows;
mod fleet;
mod hangs;
mod hygiene;
mod identity;
mod isolation;
mod layers;
mod lifecycle;
mod limits;
mod mail;
mod mfa;
mod moves;
mod node_process;
mod observability;
mod operator_api;
mod operator_console;
mod password_hashing;
mod password_reset;
mod pgbouncer;
mod postgres_tls;
mod privacy;
mod provisioning;
mod proxies;
mod python_client;
mod rbac;
mod records;
mod records_security;
mod refusals;
mod route_table;
mod routing;
mod scim;
mod session_policy;
mod settings;
mod sso;
mod telemetry;
mod templates;
mod tokens;
mod users_admin;
mod users_admin_owners;
