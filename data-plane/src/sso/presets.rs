//! Walk-through presets for the identity providers tenants bring: the protocol, the claim or
//! attribute names each sends by default (so an admin picks a preset instead of mapping by
//! hand), and the steps in the provider's own console. The console's set-up wizard fills its
//! form from them; `GET /v1/admin/sso/presets` gives them to API clients.

use serde::Serialize;

/// An identity provider as the wizard knows it: the protocol, what it sends by default, and
/// where its admin pastes our values.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Preset {
    pub key: &'static str,
    pub label: &'static str,
    /// A SAML provider (else OpenID Connect).
    pub saml: bool,
    pub issuer_example: &'static str,
    /// Scopes besides `openid`, separated by spaces (OIDC).
    pub scopes: &'static str,
    /// The claim (OIDC) or attribute (SAML) that carries the email address.
    pub email: &'static str,
    /// … the person's name.
    pub name: &'static str,
    /// … their groups (for `role_mapping`).
    pub groups: &'static str,
    /// What to do in the provider's own console.
    pub steps: &'static str,
}

pub const PRESETS: &[Preset] = &[
    Preset {
        key: "okta",
        label: "Okta",
        saml: false,
        issuer_example: "https://your-org.okta.com",
        scopes: "email profile groups",
        email: "email",
        name: "name",
        groups: "groups",
        steps: "In the Okta Admin Console: Applications → Create App Integration → OIDC - OpenID \
                Connect, Web Application. Paste the sign-in redirect URI below, assign the \
                people or groups who may sign in, and under Sign On add a Groups claim (filter \
                \"Matches regex\" .*) to send their groups. Copy the Client ID and Client secret \
                here; the issuer is your Okta domain.",
    },
    Preset {
        key: "entra",
        label: "Microsoft Entra ID",
        saml: false,
        issuer_example: "https://login.microsoftonline.com/<directory (tenant) id>/v2.0",
        scopes: "email profile",
        email: "email",
        name: "name",
        groups: "groups",
        steps: "In the Azure portal: Microsoft Entra ID → App registrations → New registration; \
                Redirect URI (Web): the value below. Under Certificates & secrets make a new \
                client secret; under Token configuration add the groups claim (group ids are \
                sent: map those ids to roles below). The issuer names your directory (tenant) \
                id.",
    },
    Preset {
        key: "google",
        label: "Google Workspace",
        saml: false,
        issuer_example: "https://accounts.google.com",
        scopes: "email profile",
        email: "email",
        name: "name",
        groups: "groups",
        steps: "In the Google Cloud console: APIs & Services → Credentials → Create credentials → \
                OAuth client ID, Web application; Authorized redirect URI: the value below. \
                Google sends no groups: everyone gets the default role.",
    },
    Preset {
        key: "keycloak",
        label: "Keycloak",
        saml: false,
        issuer_example: "https://keycloak.example.com/realms/<realm>",
        scopes: "email profile",
        email: "email",
        name: "name",
        groups: "groups",
        steps: "In the Keycloak admin console, in your realm: Clients → Create client, OpenID \
                Connect, Client authentication on, Standard flow; Valid redirect URIs: the \
                value below. To send groups, add a Group Membership mapper to the client's \
                dedicated scope with token claim name groups and Full group path off. The \
                issuer is the realm's URL.",
    },
    Preset {
        key: "entra-saml",
        label: "Microsoft Entra ID (SAML)",
        saml: true,
        issuer_example: "",
        scopes: "",
        email: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        name: "http://schemas.microsoft.com/identity/claims/displayname",
        groups: "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
        steps: "In the Azure portal: Microsoft Entra ID → Enterprise applications → New \
                application → Create your own (non-gallery) → Single sign-on → SAML. Basic SAML \
                Configuration: the entity id and ACS URL below. Under Attributes & Claims add a \
                group claim (group ids are sent: map those ids to roles below). Download the \
                Federation Metadata XML and upload it here.",
    },
    Preset {
        key: "adfs",
        label: "Active Directory Federation Services (ADFS)",
        saml: true,
        issuer_example: "",
        scopes: "",
        email: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
        name: "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
        groups: "http://schemas.xmlsoap.org/claims/Group",
        steps: "In AD FS Management: Relying Party Trusts → Add Relying Party Trust → import our \
                metadata (the link below) or enter the entity id and ACS URL by hand; SHA-256. \
                Claim issuance policy: send LDAP attributes as claims — E-Mail-Addresses as E-Mail \
                Address, Display-Name as Name, Token-Groups (unqualified) as Group. ADFS often \
                sends a transient NameID: users are then known by their email address. Upload \
                https://<your ADFS>/FederationMetadata/2007-06/FederationMetadata.xml here.",
    },
    Preset {
        key: "keycloak-saml",
        label: "Keycloak (SAML)",
        saml: true,
        issuer_example: "",
        scopes: "",
        email: "urn:oid:1.2.840.113549.1.9.1",
        name: "urn:oid:2.5.4.42",
        groups: "member",
        steps: "In the Keycloak admin console, in your realm: Clients → Create client, SAML, \
                client id = the entity id below; Valid redirect URIs and Master SAML Processing \
                URL: the ACS URL below; Sign assertions on. The built-in X500 email and givenName \
                mappers send the address and the given name; add a Group list mapper (attribute \
                member, Full group path off) for groups. Upload \
                https://<keycloak>/realms/<realm>/protocol/saml/descriptor here.",
    },
    Preset {
        key: "oidc",
        label: "Another OpenID Connect provider",
        saml: false,
        issuer_example: "https://idp.example.com",
        scopes: "email profile",
        email: "email",
        name: "name",
        groups: "groups",
        steps: "Register a web application (confidential client, authorization code flow) with \
                the redirect URI below; copy its client id and secret here. The issuer is the \
                URL its /.well-known/openid-configuration lives under.",
    },
    Preset {
        key: "saml",
        label: "A SAML 2.0 provider",
        saml: true,
        issuer_example: "",
        scopes: "",
        email: "email",
        name: "name",
        groups: "groups",
        steps: "Make a SAML application in your provider with the ACS URL and entity id below (or \
                give it our metadata), signed assertions, SHA-256; then paste its metadata XML \
                here and name the attributes that carry the email address, name and groups.",
    },
];

/// The preset with this key.
pub fn preset(key: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|preset| preset.key == key)
}

/// `GET /v1/admin/sso/presets`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PresetList {
    pub presets: &'static [Preset],
}
