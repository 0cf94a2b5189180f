//! The SMTP client: lettre's async transport (tokio, connection pool, rustls), built from an
//! [`SmtpUrl`]. Its errors are reduced to text that is safe to log and store: lettre's
//! messages name the failing step and the server's reply, never our credentials.

use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use super::settings::{MailSettings, SmtpSecurity, SmtpUrl};

/// Longest error text stored in `mail_outbox.last_error`.
const MAX_ERROR_CHARS: usize = 500;

#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("cannot set up TLS for the SMTP server: {0}")]
    Tls(String),
}

#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    pub fn new(url: &SmtpUrl, settings: &MailSettings) -> Result<Self, TransportError> {
        let tls_parameters = || {
            TlsParameters::new(url.host.clone())
                .map_err(|error| TransportError::Tls(error_text(&error)))
        };
        let tls = match url.security {
            SmtpSecurity::None => Tls::None,
            SmtpSecurity::StartTls => Tls::Required(tls_parameters()?),
            SmtpSecurity::Tls => Tls::Wrapper(tls_parameters()?),
        };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(url.host.clone())
            .port(url.port)
            .tls(tls)
            .timeout(Some(settings.send_timeout));
        if let Some((username, password)) = url.credentials() {
            builder = builder.credentials(Credentials::new(username, password));
        }
        Ok(Self {
            transport: builder.build(),
        })
    }

    /// Hands the message to the SMTP server. `Ok` means the server accepted it.
    pub async fn send(&self, message: Message) -> Result<(), String> {
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|error| error_text(&error))
    }
}

/// An error and its sources on one line, cut to a length fit for a database column.
fn error_text(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        // lettre's Display already includes its direct source; don't repeat it.
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    if text.chars().count() > MAX_ERROR_CHARS {
        text = text.chars().take(MAX_ERROR_CHARS).collect();
        text.push('…');
    }
    text
}
