//! Stable names for what a request did. A route's action, resource type and the path
//! parameter naming its resource are declared on the route (`audit = event(…)` in its
//! `#[route]`); a route without one records its refusals as `http.<method>` on its pattern.

/// What a request's event names.
pub struct Action {
    pub name: String,
    pub resource_type: String,
    /// The path parameter holding the resource id, if any.
    pub id_param: Option<&'static str>,
}

/// The action of the request's route.
pub fn of(request: &actix_web::HttpRequest) -> Action {
    let route = shared::routes::served_by(request);
    match route
        .as_ref()
        .and_then(|route| route.policy.audit.event().copied())
    {
        Some(event) => Action {
            name: event.action.to_owned(),
            resource_type: event.resource_type.to_owned(),
            id_param: event.id_param,
        },
        None => Action {
            name: format!("http.{}", request.method().as_str().to_ascii_lowercase()),
            resource_type: route.map_or_else(|| "unmatched".to_owned(), |route| route.path.clone()),
            id_param: None,
        },
    }
}

/// `success` (2xx/3xx), `denied` (401/403), `refused` (429, 503), `failure` (other 4xx),
/// `error` (5xx).
pub fn result_of(status: u16) -> &'static str {
    match status {
        200..=399 => "success",
        401 | 403 => "denied",
        429 | 503 => "refused",
        400..=499 => "failure",
        _ => "error",
    }
}
