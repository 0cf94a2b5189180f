//! What a call can end in besides its answer.

use reqwest::header::{HeaderMap, RETRY_AFTER};
use reqwest::StatusCode;
use serde::Deserialize;

use crate::auth::MfaChallenge;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server refused the request: its status and error envelope.
    #[error("{0}")]
    Api(Box<ApiError>),
    /// No answer: the connection failed or timed out.
    #[error("the request failed: {0}")]
    Transport(#[from] reqwest::Error),
    /// An answer the client could not read as what the operation returns.
    #[error("cannot read the {status} answer: {source}")]
    Decode {
        status: StatusCode,
        source: serde_json::Error,
    },
    /// A password sign-in that needs the user's second factor.
    #[error("the user has MFA: answer the challenge with a code")]
    MfaRequired(MfaChallenge),
}

impl Error {
    /// The refusal's stable code (`error.code` of the envelope), for branching.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api(error) => Some(&error.code),
            _ => None,
        }
    }

    /// The refusal's HTTP status.
    pub fn status(&self) -> Option<StatusCode> {
        match self {
            Self::Api(error) => Some(error.status),
            Self::Decode { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The refusal, when the server refused.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Self::Api(error) => Some(error),
            _ => None,
        }
    }
}

/// The error envelope every refusal carries (`{"error": {"code", "message", …}}`).
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    /// Stable machine-readable code; empty when the answer had no envelope (a proxy's page).
    pub code: String,
    /// For people; may change.
    pub message: String,
    pub request_id: Option<String>,
    /// Specifics of some codes: the rules a password broke, the missing permission, the
    /// limit that refused.
    pub details: Option<serde_json::Value>,
    /// Seconds after which a retry can succeed (`Retry-After`), on 429 and 503.
    pub retry_after: Option<u64>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Body,
}

#[derive(Deserialize)]
struct Body {
    code: String,
    message: String,
    request_id: Option<String>,
    details: Option<serde_json::Value>,
}

impl ApiError {
    pub(crate) fn from_answer(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> Self {
        let retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().parse().ok());
        match serde_json::from_slice::<Envelope>(body) {
            Ok(Envelope { error }) => Self {
                status,
                code: error.code,
                message: error.message,
                request_id: error.request_id,
                details: error.details,
                retry_after,
            },
            Err(_) => Self {
                status,
                code: String::new(),
                message: String::from_utf8_lossy(body).chars().take(200).collect(),
                request_id: None,
                details: None,
                retry_after,
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            formatter,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}
