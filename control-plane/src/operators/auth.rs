//! The route guard of the control plane: every declared route with `access = Operator` needs
//! `Authorization: Bearer <operator token>` ([`authorize`]) — or, on the operator console's
//! pages (and only there), the console's session cookie of an operator account; a handler
//! that needs to know who called takes [`Operator`].

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use shared::error::ApiError;

use crate::context::ControlPlane;

/// An authenticated operator: the route guard put it in the request's extensions.
#[derive(Debug, Clone)]
pub struct Operator {
    /// The token's name, or `account <email>` for an operator signed in to the console.
    pub token_name: String,
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        {
            use actix_web::HttpMessage as _;
            if let Some(operator) = req.extensions().get::<Operator>() {
                let operator = operator.clone();
                return Box::pin(async move { Ok(operator) });
            }
        }
        let control = req.app_data::<web::Data<ControlPlane>>().cloned();
        // A console page takes its operator from the session cookie, and from nothing else.
        if shared::routes::is_console_path(req.path()) {
            let cookie = shared::console::cookies::read(
                req,
                shared::console::cookies::SESSION_COOKIE,
                shared::console::cookies::SESSION_PREFIX,
            );
            return Box::pin(async move {
                let control =
                    control.ok_or_else(|| ApiError::internal(&"control plane state missing"))?;
                let cookie = cookie.ok_or_else(|| ApiError::unauthorized("sign in first"))?;
                match crate::operators::accounts::session(&control, &cookie).await {
                    Ok(Some(email)) => Ok(Operator {
                        token_name: format!("account {email}"),
                    }),
                    Ok(None) => Err(ApiError::unauthorized(
                        "the session has ended; sign in again",
                    )),
                    Err(error) => Err(error.into()),
                }
            });
        }
        let token = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| zeroize::Zeroizing::new(token.trim().to_owned()));
        Box::pin(async move {
            let control =
                control.ok_or_else(|| ApiError::internal(&"control plane state missing"))?;
            let token = token.ok_or_else(|| {
                ApiError::unauthorized("an operator token is required (Authorization: Bearer)")
            })?;
            match crate::operators::authenticate(&control, &token).await {
                Ok(Some(token_name)) => Ok(Operator { token_name }),
                Ok(None) => Err(ApiError::unauthorized("invalid or revoked operator token")),
                Err(error) => Err(error.into()),
            }
        })
    }
}

/// Route middleware (`crate::route_table`): a route declared `access = Operator` runs only for
/// a valid operator token (401 otherwise); a public one for anyone. No other access exists on
/// the control plane, so a route declared with one is refused (403) rather than left open.
pub async fn authorize(
    mut req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<actix_web::body::BoxBody>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::HttpMessage as _;
    use shared::routes::Access;
    let access = shared::routes::served_by(req.request()).map(|route| route.policy.access);
    match access {
        Some(Access::Public) => next.call(req).await,
        Some(Access::Operator) => match req.extract::<Operator>().await {
            Ok(operator) => {
                req.extensions_mut().insert(operator);
                next.call(req).await
            }
            Err(error) => Ok(req.error_response(error)),
        },
        _ => Ok(req.error_response(ApiError::forbidden(
            "forbidden",
            "this route is not served here",
        ))),
    }
}
