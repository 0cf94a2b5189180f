//! The extractor that guards every operator route: `Authorization: Bearer <operator token>`.

use std::future::Future;
use std::pin::Pin;

use actix_web::{web, FromRequest, HttpRequest};
use shared::error::ApiError;

use crate::context::ControlPlane;

/// An authenticated operator. Taking it as a handler argument is what makes a route
/// operator-only.
#[derive(Debug, Clone)]
pub struct Operator {
    pub token_name: String,
}

impl FromRequest for Operator {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let control = req.app_data::<web::Data<ControlPlane>>().cloned();
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
