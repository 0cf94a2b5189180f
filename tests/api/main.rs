//! Integration tests: both planes against a real Postgres (and ClickHouse for readiness),
//! one fresh catalog database per test. One binary, many modules, to keep linking cheap.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod cli;
mod identity;
mod isolation;
mod lifecycle;
mod mail;
mod operator_api;
mod provisioning;
mod routing;
mod templates;
