//! SAML 2.0 sign-ins through the pysaml2 IdP.
