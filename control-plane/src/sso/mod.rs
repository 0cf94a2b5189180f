//! The operator's management of a tenant's identity providers: `control-plane sso
//! add|list|remove <slug> …` and `/v1/tenants/{slug}/sso`. The rules are those tenant admins
//! get through the data plane (`shared::sso::providers`), minus the admin's own bound on the
//! roles a provider may grant (the operator is not a tenant user); `owner` stays refused.

pub mod routes;
pub mod service;
