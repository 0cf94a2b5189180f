//! The texts of the mails an account receives — activation of a first admin, an invitation,
//! email verification, password reset, and the notice that someone tried to register with an
//! address that already has an account — in one place, for both planes (the control plane
//! mails the first admin's activation; the data plane everything else).
//!
//! Each text names the tenant, carries a link to the tenant's own site
//! (`<scheme>://<slug>.<base_domain>/<page>?token=<token>`) and the token itself, for clients
//! that have no such page, and says how long the token is good for. Plain text only: nothing
//! here is interpreted as markup by a mail client, so a tenant's name cannot inject any.
//! Invariant: the token appears only in the body, never in the subject (subjects end up in
//! logs and in the outbox row kept after sending; bodies are erased once sent).

/// A tenant's public site, as its users reach it.
#[derive(Debug, Clone, Copy)]
pub struct TenantSite<'a> {
    /// `https` or `http` (the planes' `public_scheme`).
    pub scheme: &'a str,
    pub slug: &'a str,
    pub base_domain: &'a str,
    /// The tenant's display name, shown to the reader.
    pub tenant_name: &'a str,
}

/// The pages of a tenant's site a mailed token is used on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Activate,
    AcceptInvitation,
    VerifyEmail,
    ResetPassword,
}

impl Page {
    pub fn path(self) -> &'static str {
        match self {
            Page::Activate => "/console/activate",
            Page::AcceptInvitation => "/console/accept-invitation",
            Page::VerifyEmail => "/console/verify-email",
            Page::ResetPassword => "/console/reset-password",
        }
    }
}

impl TenantSite<'_> {
    /// `<scheme>://<slug>.<base_domain>`.
    pub fn origin(&self) -> String {
        format!("{}://{}.{}", self.scheme, self.slug, self.base_domain)
    }

    /// The link that uses `token` on `page`. Tokens are URL-safe (prefix and base64url), so
    /// they go into the query as they are.
    pub fn link(&self, page: Page, token: &str) -> String {
        format!("{}{}?token={token}", self.origin(), page.path())
    }
}

/// A mail's subject and plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountMail {
    pub subject: String,
    pub body_text: String,
}

/// "7 days", "24 hours", "1 hour".
fn validity(hours: u32) -> String {
    match hours {
        1 => "1 hour".to_owned(),
        hours if hours % 24 == 0 && hours > 24 => format!("{} days", hours / 24),
        hours => format!("{hours} hours"),
    }
}

fn token_mail(
    site: &TenantSite<'_>,
    subject: String,
    opening: &str,
    page: Page,
    token: &str,
    valid_hours: u32,
) -> AccountMail {
    let body_text = format!(
        "{opening}\n\n\
         {link}\n\n\
         The link works once and for {validity}. If your application asks for a token \
         instead, use:\n\n\
         {token}\n\n\
         If you did not expect this mail, you can ignore it: nothing changes unless the \
         link is used.\n\n\
         -- \n{name} ({origin})\n",
        link = site.link(page, token),
        validity = validity(valid_hours),
        name = site.tenant_name,
        origin = site.origin(),
    );
    AccountMail { subject, body_text }
}

/// To a tenant's first admin: set a password and take the account.
pub fn activation(site: &TenantSite<'_>, token: &str, valid_hours: u32) -> AccountMail {
    token_mail(
        site,
        format!("Activate your {} administrator account", site.tenant_name),
        &format!(
            "An administrator account has been created for you at {}. Choose your password \
             to activate it:",
            site.tenant_name
        ),
        Page::Activate,
        token,
        valid_hours,
    )
}

/// To someone invited to join a tenant (by `invited_by`, when known).
pub fn invitation(
    site: &TenantSite<'_>,
    token: &str,
    valid_hours: u32,
    invited_by: Option<&str>,
) -> AccountMail {
    let who = invited_by.map_or_else(String::new, |inviter| format!(" by {inviter}"));
    token_mail(
        site,
        format!("You are invited to join {}", site.tenant_name),
        &format!(
            "You have been invited{who} to join {}. Choose your password to accept the \
             invitation:",
            site.tenant_name
        ),
        Page::AcceptInvitation,
        token,
        valid_hours,
    )
}

/// To a newly registered user: prove the address is theirs.
pub fn email_verification(site: &TenantSite<'_>, token: &str, valid_hours: u32) -> AccountMail {
    token_mail(
        site,
        format!("Confirm your email address for {}", site.tenant_name),
        &format!(
            "Thank you for registering at {}. Confirm that this address is yours to finish \
             your registration:",
            site.tenant_name
        ),
        Page::VerifyEmail,
        token,
        valid_hours,
    )
}

/// To a user who asked to reset a forgotten password.
pub fn password_reset(site: &TenantSite<'_>, token: &str, valid_hours: u32) -> AccountMail {
    token_mail(
        site,
        format!("Reset your {} password", site.tenant_name),
        &format!(
            "Someone (hopefully you) asked to reset the password of your account at {}. \
             Choose a new password here; every device signed in to your account will be \
             signed out:",
            site.tenant_name
        ),
        Page::ResetPassword,
        token,
        valid_hours,
    )
}

/// To the holder of an address someone tried to register again: the registration answer is
/// the same for new and known addresses, so only the address's owner learns it is known.
pub fn already_registered(site: &TenantSite<'_>) -> AccountMail {
    AccountMail {
        subject: format!("You already have an account at {}", site.tenant_name),
        body_text: format!(
            "Someone (hopefully you) tried to register at {name} with this address, which \
             already has an account. No new account was made and nothing changed.\n\n\
             To sign in, go to {origin}. If you forgot your password, ask for a password \
             reset there.\n\n\
             If this was not you, you can ignore this mail.\n\n\
             -- \n{name} ({origin})\n",
            name = site.tenant_name,
            origin = site.origin(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: TenantSite<'static> = TenantSite {
        scheme: "https",
        slug: "acme",
        base_domain: "tenantry.example",
        tenant_name: "Acme Corp",
    };
    const TOKEN: &str = "tnut_AAAABBBBCCCCDDDDEEEEFFFFGGGGHHHHIIIIJJJJKKK";

    #[test]
    fn every_token_mail_links_to_its_page_and_carries_the_token_only_in_the_body() {
        let mails = [
            (activation(&SITE, TOKEN, 168), "/console/activate", "7 days"),
            (
                invitation(&SITE, TOKEN, 72, Some("ada@acme.example")),
                "/console/accept-invitation",
                "3 days",
            ),
            (
                email_verification(&SITE, TOKEN, 24),
                "/console/verify-email",
                "24 hours",
            ),
            (
                password_reset(&SITE, TOKEN, 1),
                "/console/reset-password",
                "1 hour",
            ),
        ];
        for (mail, page, validity) in mails {
            let link = format!("https://acme.tenantry.example{page}?token={TOKEN}");
            assert!(mail.body_text.contains(&link), "{}", mail.body_text);
            assert!(mail.body_text.contains(&format!("\n{TOKEN}\n")));
            assert!(mail.body_text.contains(validity), "{}", mail.body_text);
            assert!(!mail.subject.contains(TOKEN));
            assert!(mail.subject.contains("Acme Corp"));
            assert!(!mail.subject.chars().any(char::is_control));
        }
    }

    #[test]
    fn the_already_registered_notice_carries_no_token() {
        let mail = already_registered(&SITE);
        assert!(mail.subject.contains("already have an account"));
        assert!(mail.body_text.contains("https://acme.tenantry.example"));
        assert!(!mail.body_text.contains("token"));
    }
}
