//! Mail settings of a data-plane node: the SMTP server (a URL whose password never reaches a
//! log or a `Debug` string), the sender, and the worker's timing.
//!
//! `smtp_url` schemes: `smtp://host[:25]` (no TLS: loopback relays and tests),
//! `smtp+starttls://host[:587]` (STARTTLS, required) and `smtps://host[:465]` (TLS from the
//! first byte). Credentials go in the URL's user-info, percent-encoded, and are accepted only
//! with TLS.

use std::fmt;
use std::time::Duration;

use lettre::message::Mailbox;
use shared::config::{ConfigError, ConfigSource};
use zeroize::Zeroizing;

/// The sender when `mail_from` is not set.
pub const DEFAULT_FROM: &str = "Tenantry <no-reply@localhost>";

/// How the connection to the SMTP server is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpSecurity {
    /// No TLS (`smtp://`): for a relay on loopback or a private network.
    None,
    /// STARTTLS, required (`smtp+starttls://`).
    StartTls,
    /// TLS from the first byte (`smtps://`).
    Tls,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtpUrlError {
    // The input itself is never echoed: it may hold a password.
    #[error("not a valid URL ({0})")]
    Syntax(url::ParseError),
    #[error("unsupported scheme '{0}': use smtp://, smtp+starttls:// or smtps://")]
    Scheme(String),
    #[error("the URL names no host")]
    NoHost,
    #[error("the URL's user name or password is not valid percent-encoded UTF-8")]
    Credentials,
    #[error("credentials need TLS: use smtp+starttls:// or smtps://")]
    CredentialsWithoutTls,
    #[error("a path, query or fragment is not supported in an SMTP URL")]
    Extra,
}

/// A parsed SMTP URL. `Debug` and `Display` show it without the password.
#[derive(Clone)]
pub struct SmtpUrl {
    pub security: SmtpSecurity,
    pub host: String,
    pub port: u16,
    username: Option<String>,
    password: Option<Zeroizing<String>>,
}

impl SmtpUrl {
    pub fn parse(input: &str) -> Result<Self, SmtpUrlError> {
        let url = url::Url::parse(input).map_err(SmtpUrlError::Syntax)?;
        let (security, default_port) = match url.scheme() {
            "smtp" => (SmtpSecurity::None, 25),
            "smtp+starttls" => (SmtpSecurity::StartTls, 587),
            "smtps" => (SmtpSecurity::Tls, 465),
            other => return Err(SmtpUrlError::Scheme(other.to_owned())),
        };
        let host = match url.host() {
            Some(url::Host::Domain(domain)) if !domain.is_empty() => domain.to_owned(),
            Some(url::Host::Ipv4(address)) => address.to_string(),
            Some(url::Host::Ipv6(address)) => address.to_string(),
            _ => return Err(SmtpUrlError::NoHost),
        };
        if !matches!(url.path(), "" | "/") || url.query().is_some() || url.fragment().is_some() {
            return Err(SmtpUrlError::Extra);
        }
        let decode = |raw: &str| {
            percent_encoding::percent_decode_str(raw)
                .decode_utf8()
                .map(|text| text.into_owned())
                .map_err(|_| SmtpUrlError::Credentials)
        };
        let username = match url.username() {
            "" => None,
            raw => Some(decode(raw)?),
        };
        let password = url
            .password()
            .map(|raw| decode(raw).map(Zeroizing::new))
            .transpose()?;
        if (username.is_some() || password.is_some()) && security == SmtpSecurity::None {
            return Err(SmtpUrlError::CredentialsWithoutTls);
        }
        Ok(Self {
            security,
            host,
            port: url.port().unwrap_or(default_port),
            username,
            password,
        })
    }

    /// User name and password, when the URL has them.
    pub(super) fn credentials(&self) -> Option<(String, String)> {
        let username = self.username.clone()?;
        let password = self
            .password
            .as_ref()
            .map(|password| password.as_str().to_owned())
            .unwrap_or_default();
        Some((username, password))
    }
}

impl fmt::Display for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = match self.security {
            SmtpSecurity::None => "smtp",
            SmtpSecurity::StartTls => "smtp+starttls",
            SmtpSecurity::Tls => "smtps",
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match (&self.username, &self.password) {
            (Some(username), Some(_)) => {
                write!(f, "{scheme}://{username}:***@{host}:{}", self.port)
            }
            (Some(username), None) => write!(f, "{scheme}://{username}@{host}:{}", self.port),
            _ => write!(f, "{scheme}://{host}:{}", self.port),
        }
    }
}

impl fmt::Debug for SmtpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SmtpUrl({self})")
    }
}

/// How a node delivers mail.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// Where mail is sent (`smtp_url`). `None`: this node sends nothing; mail still queues in
    /// the outboxes for nodes that have SMTP.
    pub smtp: Option<SmtpUrl>,
    /// The `From` of every mail (`mail_from`).
    pub from: Mailbox,
    /// How often a worker looks for due mail without being woken: a safety net for missed
    /// notifications and resumed tenants; retries are scheduled for when they fall due.
    pub poll_interval: Duration,
    /// Delay before the first retry; doubles with each failed attempt up to `retry_cap`.
    pub retry_base: Duration,
    pub retry_cap: Duration,
    /// Limit on each SMTP command, connecting included.
    pub send_timeout: Duration,
}

impl MailSettings {
    pub fn from_source(source: &ConfigSource) -> Result<Self, ConfigError> {
        let invalid = |key: &str, reason: String| ConfigError::Invalid {
            key: key.to_owned(),
            reason,
        };
        let smtp = source
            .get("smtp_url")
            .map(|url| SmtpUrl::parse(&url))
            .transpose()
            .map_err(|error| invalid("smtp_url", error.to_string()))?;
        let from = source
            .get("mail_from")
            .unwrap_or_else(|| DEFAULT_FROM.to_owned())
            .parse::<Mailbox>()
            .map_err(|error| invalid("mail_from", error.to_string()))?;
        Ok(Self {
            smtp,
            from,
            poll_interval: Duration::from_secs(5),
            retry_base: Duration::from_secs(30),
            retry_cap: Duration::from_secs(3600),
            send_timeout: Duration::from_secs(30),
        })
    }

    /// How long to wait before attempt number `attempts + 1`, after `attempts` failures:
    /// `retry_base * 2^(attempts - 1)`, at most `retry_cap`.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(31);
        self.retry_base
            .checked_mul(1u32 << doublings)
            .map_or(self.retry_cap, |delay| delay.min(self.retry_cap))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_choose_security_and_default_port() {
        let plain = SmtpUrl::parse("smtp://127.0.0.1:18025").unwrap();
        assert_eq!(
            (plain.security, plain.host.as_str(), plain.port),
            (SmtpSecurity::None, "127.0.0.1", 18025)
        );
        let starttls = SmtpUrl::parse("smtp+starttls://mail.example.com").unwrap();
        assert_eq!(
            (starttls.security, starttls.port),
            (SmtpSecurity::StartTls, 587)
        );
        let tls = SmtpUrl::parse("smtps://mail.example.com").unwrap();
        assert_eq!((tls.security, tls.port), (SmtpSecurity::Tls, 465));
        let ipv6 = SmtpUrl::parse("smtp://[::1]:2525").unwrap();
        assert_eq!(ipv6.to_string(), "smtp://[::1]:2525");
    }

    #[test]
    fn the_password_never_shows_in_display_debug_or_errors() {
        let url = SmtpUrl::parse("smtps://mailer:s3cr%40t@mail.example.com").unwrap();
        assert_eq!(
            url.credentials(),
            Some(("mailer".to_owned(), "s3cr@t".to_owned()))
        );
        assert_eq!(url.to_string(), "smtps://mailer:***@mail.example.com:465");
        assert!(!format!("{url:?}").contains("s3cr"));
        for bad in [
            "smtp://mailer:s3cret@mail.example.com",
            "http://mailer:s3cret@mail.example.com",
            "smtps://mailer:s3cret@mail.example.com/x?y",
            "smtps://mailer:s3cret@",
        ] {
            let error = SmtpUrl::parse(bad).unwrap_err().to_string();
            assert!(!error.contains("s3cret"), "{bad}: {error}");
        }
    }

    #[test]
    fn credentials_without_tls_are_refused() {
        assert_eq!(
            SmtpUrl::parse("smtp://user:pw@relay.example.com").unwrap_err(),
            SmtpUrlError::CredentialsWithoutTls
        );
    }

    #[test]
    fn settings_come_from_the_config_source() {
        let settings = MailSettings::from_source(&ConfigSource::from_pairs([
            ("smtp_url", "smtp://127.0.0.1:18025"),
            ("mail_from", "Acme <mail@acme.example>"),
        ]))
        .unwrap();
        assert_eq!(settings.smtp.unwrap().port, 18025);
        assert_eq!(settings.from.email.to_string(), "mail@acme.example");

        let defaults = MailSettings::from_source(&ConfigSource::default()).unwrap();
        assert!(defaults.smtp.is_none());
        assert_eq!(defaults.from.to_string(), DEFAULT_FROM);

        let error = MailSettings::from_source(&ConfigSource::from_pairs([("smtp_url", "ftp://x")]))
            .unwrap_err();
        assert!(error.to_string().contains("smtp_url"), "{error}");
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let settings = MailSettings::from_source(&ConfigSource::default()).unwrap();
        let seconds: Vec<u64> = [1, 2, 3, 7, 8, 50, u32::MAX]
            .into_iter()
            .map(|attempts| settings.retry_delay(attempts).as_secs())
            .collect();
        assert_eq!(seconds, [30, 60, 120, 1920, 3600, 3600, 3600]);
    }
}
