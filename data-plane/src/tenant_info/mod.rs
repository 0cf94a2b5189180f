//! `GET /v1/tenant`: the public facts about the tenant a request is for.

pub mod routes;
mod store;
