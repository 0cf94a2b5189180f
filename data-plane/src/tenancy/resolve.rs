//! Reading the tenant a request names.
//!
//! Rules: the host `<slug>.<base domain>` names a tenant by slug; any other host may be a
//! custom domain registered in the catalog; the `X-Tenant` header names a tenant by slug when
//! the host does not. When host and header name different tenants the request is refused
//! (400 `tenant_mismatch`) rather than guessing: for a slug host here, for a custom domain
//! once the registry has looked the domain up (`TenantRegistry::lookup`), so the answer is
//! the same whichever way the host names its tenant.

use shared::error::ApiError;
use shared::tenant::TenantSlug;

pub const TENANT_HEADER: &str = "x-tenant";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TenantKey {
    Slug(TenantSlug),
    /// A host outside the base domain, which names a tenant only if it is registered.
    Domain {
        name: String,
        /// The tenant `X-Tenant` named besides: it must be the domain's.
        header: Option<TenantSlug>,
    },
}

/// 400: the host and `X-Tenant` name different tenants.
pub fn tenant_mismatch() -> ApiError {
    ApiError::bad_request(
        "tenant_mismatch",
        "the host and X-Tenant name different tenants",
    )
}

/// The host without port, lower-cased; `None` for an IP literal or an empty host.
fn host_name(host: &str) -> Option<String> {
    if host.starts_with('[') {
        return None; // IPv6 literal
    }
    let name = host
        .rsplit_once(':')
        .map_or(host, |(name, _)| name)
        .trim_end_matches('.');
    if name.is_empty() || name.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

fn not_found(what: &str) -> ApiError {
    ApiError::not_found("tenant_not_found", format!("no tenant {what}"))
}

/// What the request names: by host first, then by header.
pub fn tenant_key(
    host: Option<&str>,
    header: Option<&str>,
    base_domain: &str,
) -> Result<TenantKey, ApiError> {
    let from_header = match header {
        None => None,
        Some(raw) => Some(
            TenantSlug::parse(raw.trim())
                .map_err(|_| not_found(&format!("named '{}'", raw.trim())))?,
        ),
    };
    let from_host = host.and_then(host_name).and_then(|name| {
        if name == base_domain || name == "localhost" {
            return None;
        }
        match name
            .strip_suffix(base_domain)
            .and_then(|rest| rest.strip_suffix('.'))
        {
            // One label in front of the base domain: a slug (or nothing we serve).
            Some(label) if !label.contains('.') => Some(
                TenantSlug::parse(label)
                    .map(TenantKey::Slug)
                    .map_err(|_| not_found(&format!("at host '{name}'"))),
            ),
            Some(_) => Some(Err(not_found(&format!("at host '{name}'")))),
            None => Some(Ok(TenantKey::Domain {
                name,
                header: from_header.clone(),
            })),
        }
    });
    match (from_host.transpose()?, from_header) {
        (Some(TenantKey::Slug(host_slug)), Some(header_slug)) if host_slug != header_slug => {
            Err(tenant_mismatch())
        }
        (Some(key), _) => Ok(key),
        (None, Some(slug)) => Ok(TenantKey::Slug(slug)),
        (None, None) => Err(not_found(
            "named: use <slug>.<base domain> as host or the X-Tenant header",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slug(raw: &str) -> TenantKey {
        TenantKey::Slug(TenantSlug::parse(raw).unwrap())
    }

    #[test]
    fn host_names_the_tenant() {
        assert_eq!(
            tenant_key(Some("acme.example.com:8080"), None, "example.com").unwrap(),
            slug("acme")
        );
        assert_eq!(
            tenant_key(Some("ACME.Example.com"), None, "example.com").unwrap(),
            slug("acme")
        );
        assert_eq!(
            tenant_key(Some("app.acme.io"), None, "example.com").unwrap(),
            TenantKey::Domain {
                name: "app.acme.io".into(),
                header: None
            }
        );
        // The header travels with a custom domain, for the registry to compare.
        assert_eq!(
            tenant_key(Some("app.acme.io"), Some("globex"), "example.com").unwrap(),
            TenantKey::Domain {
                name: "app.acme.io".into(),
                header: Some(TenantSlug::parse("globex").unwrap())
            }
        );
    }

    #[test]
    fn header_is_used_when_the_host_names_no_tenant() {
        assert_eq!(
            tenant_key(Some("127.0.0.1:8781"), Some("acme"), "example.com").unwrap(),
            slug("acme")
        );
        assert_eq!(
            tenant_key(Some("example.com"), Some("acme"), "example.com").unwrap(),
            slug("acme")
        );
        assert_eq!(
            tenant_key(None, Some("acme"), "localhost").unwrap(),
            slug("acme")
        );
    }

    #[test]
    fn conflicting_or_missing_names_are_refused() {
        assert_eq!(
            tenant_key(Some("acme.example.com"), Some("globex"), "example.com")
                .unwrap_err()
                .code(),
            "tenant_mismatch"
        );
        assert_eq!(
            tenant_key(Some("127.0.0.1"), None, "example.com")
                .unwrap_err()
                .code(),
            "tenant_not_found"
        );
        assert_eq!(
            tenant_key(Some("a.b.example.com"), None, "example.com")
                .unwrap_err()
                .code(),
            "tenant_not_found"
        );
        assert_eq!(
            tenant_key(None, Some("Bad Slug"), "example.com")
                .unwrap_err()
                .code(),
            "tenant_not_found"
        );
    }
}
