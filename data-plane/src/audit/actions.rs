//! Stable names for what a request did: `(method, route pattern)` → action, resource type and
//! the path parameter naming the resource. Routes not listed are recorded as
//! `http.<method>` on their route pattern, so nothing goes unrecorded.

use actix_web::http::Method;

pub struct Action {
    pub name: String,
    pub resource_type: String,
    /// The path parameter holding the resource id, if any.
    pub id_param: Option<&'static str>,
}

const ACTIONS: &[(&str, &str, &str, &str, Option<&str>)] = &[
    ("POST", "/v1/auth/login", "auth.login", "session", None),
    (
        "POST",
        "/v1/auth/mfa/verify",
        "auth.mfa_verify",
        "session",
        None,
    ),
    ("POST", "/v1/auth/refresh", "auth.refresh", "session", None),
    ("POST", "/v1/auth/logout", "auth.logout", "session", None),
    ("POST", "/v1/auth/activate", "auth.activate", "user", None),
    ("POST", "/v1/auth/register", "auth.register", "user", None),
    (
        "POST",
        "/v1/auth/verify-email",
        "auth.verify_email",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/auth/verify-email/resend",
        "auth.verify_email_resend",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/auth/password-reset",
        "auth.password_reset_request",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/auth/password-reset/confirm",
        "auth.password_reset",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/me/password",
        "me.password_change",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/me/mfa/totp/setup",
        "mfa.totp_setup",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/me/mfa/totp/enable",
        "mfa.totp_enable",
        "user",
        None,
    ),
    (
        "DELETE",
        "/v1/me/mfa/totp",
        "mfa.totp_disable",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/me/mfa/backup-codes",
        "mfa.backup_codes_regenerate",
        "user",
        None,
    ),
    (
        "DELETE",
        "/v1/me/sessions/{id}",
        "session.revoke",
        "session",
        Some("id"),
    ),
    (
        "POST",
        "/v1/admin/users/invitations",
        "users.invite",
        "user",
        None,
    ),
    (
        "POST",
        "/v1/admin/users/{id}/disable",
        "users.disable",
        "user",
        Some("id"),
    ),
    (
        "POST",
        "/v1/admin/users/{id}/enable",
        "users.enable",
        "user",
        Some("id"),
    ),
    (
        "PUT",
        "/v1/admin/users/{id}/roles",
        "users.set_roles",
        "user",
        Some("id"),
    ),
    (
        "DELETE",
        "/v1/admin/users/{id}/mfa",
        "users.reset_mfa",
        "user",
        Some("id"),
    ),
    (
        "DELETE",
        "/v1/admin/users/{id}",
        "users.delete",
        "user",
        Some("id"),
    ),
    ("POST", "/v1/admin/roles", "roles.create", "role", None),
    ("POST", "/v1/admin/sso", "sso.create", "sso_provider", None),
    (
        "PUT",
        "/v1/admin/sso/{name}",
        "sso.update",
        "sso_provider",
        Some("name"),
    ),
    (
        "DELETE",
        "/v1/admin/sso/{name}",
        "sso.delete",
        "sso_provider",
        Some("name"),
    ),
    (
        "POST",
        "/v1/auth/sso/discover",
        "auth.sso_discover",
        "sso_provider",
        None,
    ),
    (
        "GET",
        "/v1/auth/sso/{name}/callback",
        "auth.sso_login",
        "sso_provider",
        Some("name"),
    ),
    (
        "POST",
        "/v1/auth/saml/{name}/acs",
        "auth.sso_login",
        "sso_provider",
        Some("name"),
    ),
    (
        "PUT",
        "/v1/admin/roles/{name}",
        "roles.update",
        "role",
        Some("name"),
    ),
    (
        "DELETE",
        "/v1/admin/roles/{name}",
        "roles.delete",
        "role",
        Some("name"),
    ),
    (
        "POST",
        "/v1/admin/api-keys",
        "api_keys.create",
        "api_key",
        None,
    ),
    (
        "POST",
        "/v1/admin/api-keys/{id}/rotate",
        "api_keys.rotate",
        "api_key",
        Some("id"),
    ),
    (
        "DELETE",
        "/v1/admin/api-keys/{id}",
        "api_keys.revoke",
        "api_key",
        Some("id"),
    ),
    (
        "PUT",
        "/v1/settings/cors",
        "settings.cors_update",
        "settings",
        None,
    ),
    (
        "PUT",
        "/v1/settings/privacy",
        "settings.privacy_update",
        "settings",
        None,
    ),
    (
        "PUT",
        "/v1/settings/auth-policy",
        "settings.auth_policy_update",
        "settings",
        None,
    ),
    (
        "POST",
        "/v1/settings/signing-keys/rotate",
        "settings.signing_key_rotate",
        "settings",
        None,
    ),
    (
        "PUT",
        "/v1/collections/{collection}",
        "collections.update",
        "collection",
        Some("collection"),
    ),
    (
        "POST",
        "/v1/collections/{collection}/records",
        "records.create",
        "record",
        None,
    ),
    (
        "PUT",
        "/v1/collections/{collection}/records/{id}",
        "records.replace",
        "record",
        Some("id"),
    ),
    (
        "PATCH",
        "/v1/collections/{collection}/records/{id}",
        "records.update",
        "record",
        Some("id"),
    ),
    (
        "DELETE",
        "/v1/collections/{collection}/records/{id}",
        "records.delete",
        "record",
        Some("id"),
    ),
];

/// The action of a request, by its method and matched route pattern.
pub fn of(method: &Method, pattern: Option<&str>) -> Action {
    let pattern = pattern.unwrap_or("unmatched");
    ACTIONS
        .iter()
        .find(|(m, p, ..)| *m == method.as_str() && *p == pattern)
        .map_or_else(
            || Action {
                name: format!("http.{}", method.as_str().to_ascii_lowercase()),
                resource_type: pattern.to_owned(),
                id_param: None,
            },
            |(_, _, name, resource_type, id_param)| Action {
                name: (*name).to_owned(),
                resource_type: (*resource_type).to_owned(),
                id_param: *id_param,
            },
        )
}

/// `success` (2xx/3xx), `denied` (401/403), `refused` (429, 503), `failure` (other 4xx),
/// `error` (5xx).
pub fn result_of(status: u16) -> &'static str {
    match status {
        200..=399 => "success",
        401 | 403 => "denied",
        429 | 503 => "refused",
        400..=499 => "failure",
        _ => "error",
    }
}

/// Paths whose requests are not audited one by one: telemetry ingestion (its events are
/// counted as usage instead) and the node's own endpoints.
/// Whether a request changes state and so must be audited (and refused when it cannot be):
/// every method but GET, HEAD and OPTIONS, and the one GET that signs someone in, the
/// OIDC/OAuth2 callback (`/v1/auth/sso/{name}/callback`).
pub fn changes_state(method: &Method, path: &str) -> bool {
    match *method {
        Method::GET => path.starts_with("/v1/auth/sso/") && path.ends_with("/callback"),
        Method::HEAD | Method::OPTIONS => false,
        _ => true,
    }
}

pub fn audited_path(path: &str) -> bool {
    !(path == "/v1/logs"
        || path == "/v1/metrics"
        || path == "/v1/traces"
        || path.starts_with("/v1/telemetry/")
        || path == "/healthz"
        || path == "/readyz"
        || path == "/metrics")
}
