//! Single sign-on configuration shared by both planes: the provider settings model and its
//! checks, SAML IdP metadata checks (samael), and the SQL and rules by which tenant admins
//! (data plane, `/v1/admin/sso`) and the operator (control plane, `sso add|list|remove`)
//! manage a tenant's providers. The sign-in flows themselves live in the data plane.

pub mod providers;
pub mod saml_metadata;
pub mod settings;
pub mod store;

use uuid::Uuid;

use crate::envelope::EnvelopeError;
use crate::error::ApiError;
use crate::tenant_context::TenantDbError;

/// Associated data of a sealed client secret: it opens only for this tenant and provider.
pub fn secret_context(tenant_id: Uuid, provider_id: Uuid) -> Vec<u8> {
    format!("sso-client-secret:{tenant_id}:{provider_id}").into_bytes()
}

#[derive(Debug, thiserror::Error)]
pub enum SsoConfigError {
    #[error("{0}")]
    Invalid(String),
    #[error("no identity provider with this name")]
    NotFound,
    #[error("an identity provider with this name exists already")]
    Exists,
    #[error("email domain {0} is bound to another identity provider")]
    DomainTaken(String),
    #[error("unknown role names")]
    UnknownRoles(Vec<String>),
    #[error(transparent)]
    Db(#[from] TenantDbError),
    #[error(transparent)]
    Envelope(#[from] EnvelopeError),
}

impl From<tokio_postgres::Error> for SsoConfigError {
    fn from(error: tokio_postgres::Error) -> Self {
        Self::Db(TenantDbError::Query(error))
    }
}

/// The one mapping of configuration outcomes to answers, for both planes' APIs.
impl From<SsoConfigError> for ApiError {
    fn from(error: SsoConfigError) -> Self {
        let message = error.to_string();
        match error {
            SsoConfigError::Invalid(_) => ApiError::bad_request("invalid_sso_config", message),
            SsoConfigError::NotFound => ApiError::not_found("sso_provider_not_found", message),
            SsoConfigError::Exists => ApiError::conflict("sso_provider_exists", message),
            SsoConfigError::DomainTaken(_) => ApiError::conflict("sso_domain_taken", message),
            SsoConfigError::UnknownRoles(roles) => ApiError::bad_request("unknown_role", message)
                .with_details(serde_json::json!({ "unknown_roles": roles })),
            SsoConfigError::Db(error) => error.into(),
            SsoConfigError::Envelope(_) => ApiError::internal(&error),
        }
    }
}
