//! A route's policy: who may call it, what it records in the audit log, which rate limit it
//! counts against. `#[route(access = …, audit = …, rate = …)]` evaluates its expressions with
//! this module in scope, so declarations read `access = Permission("users:manage")`,
//! `audit = event("user.delete", "user").id_from("id")`, `rate = Write`.

pub use Access::{Caller, Operator, Permission, Public, RestrictedOk, SignedIn, UserOrKey};
pub use Audit::{Never, Refusals};
pub use RateClass::{Auth, Read, Unlimited, Write};

/// Who may call a route. The plane's guard admits or refuses the request before the handler
/// runs: 401 without a credential the access needs, 403 with a restricted session (where the
/// access does not allow one), with an API key where a user is needed, or without the
/// permission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone; the handler reads whatever credential it needs (a sign-in checks a password).
    Public,
    /// A signed-in user whose session has nothing pending.
    SignedIn,
    /// A signed-in user, even one whose session must first change its password or enrol in
    /// MFA: the routes where they do so, see themselves, and sign out.
    RestrictedOk,
    /// A signed-in user whose roles grant the permission (`resource:action`). A `{param}` in
    /// the permission is the path parameter of that name (`records.{collection}:read`).
    Permission(&'static str),
    /// A signed-in user, or an API key, granted the permission (`resource:action`, as above).
    UserOrKey(&'static str),
    /// A signed-in user or an API key, whatever they hold: the route answers with what their
    /// permissions let them see (the collections they may read), decided by its service.
    Caller,
    /// The platform operator (control plane).
    Operator,
}

impl Access {
    /// The permission the route needs, if it names one (with its `{param}`s unfilled).
    pub fn permission(&self) -> Option<&'static str> {
        match self {
            Self::Permission(permission) | Self::UserOrKey(permission) => Some(permission),
            _ => None,
        }
    }

    /// Whether a caller with no credential is admitted.
    pub fn is_public(&self) -> bool {
        matches!(self, Self::Public)
    }

    /// The name the OpenAPI document and the route-table listing use.
    pub fn describe(&self) -> String {
        match self {
            Self::Public => "public".to_owned(),
            Self::SignedIn => "signed_in".to_owned(),
            Self::RestrictedOk => "restricted_ok".to_owned(),
            Self::Permission(permission) => format!("permission {permission}"),
            Self::UserOrKey(permission) => format!("user or API key with {permission}"),
            Self::Caller => "user or API key".to_owned(),
            Self::Operator => "operator".to_owned(),
        }
    }
}

/// Which rate limit a route counts against (the data plane's `rate_limit`; the control plane
/// has none yet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// Operational endpoints (`/healthz`, `/readyz`, `/metrics`, the OpenAPI document): never
    /// limited, so probes and scrapes work during a flood.
    Unlimited,
    /// Credential checks a client could guess at (passwords, codes, tokens): limited per
    /// client address as well as per tenant.
    Auth,
    /// Reads: the tenant's budget.
    Read,
    /// Changes: half the tenant's budget, so a write flood leaves room for reads.
    Write,
}

impl RateClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unlimited => "unlimited",
            Self::Auth => "auth",
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

/// The audit event a route records: its stable action name, the type of resource it acts on
/// and the path parameter naming that resource, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuditEvent {
    pub action: &'static str,
    pub resource_type: &'static str,
    pub id_param: Option<&'static str>,
}

/// The audit event `action` on a resource of type `resource_type`.
pub const fn event(action: &'static str, resource_type: &'static str) -> AuditEvent {
    AuditEvent {
        action,
        resource_type,
        id_param: None,
    }
}

impl AuditEvent {
    /// The resource's id is the path parameter `param`.
    pub const fn id_from(mut self, param: &'static str) -> Self {
        self.id_param = Some(param);
        self
    }
}

/// What a route leaves in the audit log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audit {
    /// An event for every request (routes that change state, and sign-ins): declared with
    /// `audit = event(…)`. Such a request is refused (503) when its event cannot be recorded.
    Event(AuditEvent),
    /// Only requests refused by a rate limit (429), as `http.<method>`: the default, for
    /// reads.
    Refusals,
    /// Nothing, not even refusals: telemetry ingestion, whose events are counted as usage.
    Never,
}

impl From<AuditEvent> for Audit {
    fn from(event: AuditEvent) -> Self {
        Self::Event(event)
    }
}

impl Audit {
    /// The event every request records, if the route has one.
    pub fn event(&self) -> Option<&AuditEvent> {
        match self {
            Self::Event(event) => Some(event),
            _ => None,
        }
    }
}

/// A route's whole policy, as `#[route]` declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub access: Access,
    pub audit: Audit,
    pub rate: RateClass,
}
