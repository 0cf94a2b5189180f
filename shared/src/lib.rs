//! What both planes of Tenantry share: configuration pieces, the tenant model and its
//! validated names, the error vocabulary and its HTTP mapping, the rules by which both read
//! request headers and JSON bodies, envelope encryption of tenant data keys, catalog access,
//! the tenant database context, the tenant template, the change notifications (one typed
//! `notify::Change`, its sender and its parser), and the SQL by which either plane queues mail.
//!
//! Nothing here knows about one plane only; code used by a single plane lives in that plane.

// `#[route]` names `::shared::routes`, also when used here (`routes::meta`).
extern crate self as shared;

pub mod account_mail;
pub mod catalog;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod console;
pub mod db;
pub mod egress;
pub mod email;
pub mod envelope;
pub mod error;
pub mod events;
pub mod http;
pub mod json_body;
pub mod mail_outbox;
pub mod metrics;
pub mod notify;
pub mod observability;
pub mod routes;
pub mod secret_token;
pub mod sso;
pub mod template;
pub mod tenant;
pub mod tenant_context;
pub mod tls;
pub mod totp;
