//! The built-in roles every tenant starts with. Permissions are `resource:action` strings
//! (actions: create, read, update, delete, execute, manage; `*` is a wildcard). The identity
//! and RBAC issues build on these names; custom roles come later.

pub struct BuiltInRole {
    pub name: &'static str,
    pub description: &'static str,
    pub permissions: &'static [&'static str],
}

pub const BUILT_IN_ROLES: &[BuiltInRole] = &[
    BuiltInRole {
        name: "owner",
        description: "Full control of the tenant, including its owners",
        permissions: &["*:*"],
    },
    BuiltInRole {
        name: "admin",
        description: "Manages users, roles, API keys, SSO and settings; reads audit and usage",
        permissions: &[
            "users:manage",
            "roles:manage",
            "api_keys:manage",
            "sso:manage",
            // A directory's SCIM token is an API key with this scope (template V11).
            "scim:manage",
            "settings:manage",
            "audit:read",
            "usage:read",
            "records:*",
            // Reading sensitive record fields is a family of its own, so `records:*` does not
            // include it (template V7 grants it to the admin of tenants made before).
            "sensitive:read",
            "telemetry:*",
        ],
    },
    BuiltInRole {
        name: "manager",
        description: "Reads users and the audit log; manages all records",
        permissions: &["users:read", "audit:read", "usage:read", "records:*"],
    },
    BuiltInRole {
        name: "developer",
        description: "Manages records, API keys and telemetry",
        permissions: &["records:*", "api_keys:manage", "telemetry:*"],
    },
    BuiltInRole {
        name: "member",
        description: "Creates, reads and updates records",
        permissions: &["records:create", "records:read", "records:update"],
    },
    BuiltInRole {
        name: "viewer",
        description: "Reads records",
        permissions: &["records:read"],
    },
];
