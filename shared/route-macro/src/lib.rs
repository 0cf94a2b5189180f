//! `#[route]`: a route declared once, on its handler — method, path, who may call it, its
//! audit action, its rate class and its OpenAPI operation — and `routes![…]`, which lists a
//! capability's declared handlers for the server and the OpenAPI document.
//!
//! ```ignore
//! /// Deletes a user (the summary and description of the OpenAPI operation).
//! #[route(delete, "/v1/admin/users/{id}",
//!     access = Permission("users:manage"),
//!     audit = event("user.delete", "user").id_from("id"),
//!     rate = Write,
//!     tag = "users", responses((status = 204, description = "Deleted")))]
//! async fn delete_user(…) -> Result<HttpResponse, ApiError> { … }
//!
//! pub fn routes() -> Vec<Route> { routes![list_users, delete_user] }
//! ```
//!
//! `access`, `audit` (optional: without it only rate-limit refusals are recorded) and `rate`
//! are Rust expressions evaluated
//! with `shared::routes::policy::*` in scope; everything after them is passed to
//! `utoipa::path` as it is. The macro adds `impl shared::routes::Declared` to the struct
//! `utoipa::path` generates (`__path_<handler>`), which is what `routes!` collects.
//!
//! The macro works on tokens alone (no `syn`): it splits the attribute at its top-level
//! commas and finds the handler's name after `fn`.

use proc_macro::TokenStream;
use proc_macro2::{Delimiter, Ident, Span, TokenStream as Tokens, TokenTree};
use quote::{quote, quote_spanned};

/// Declares the route served by the function it is put on. See the crate documentation.
#[proc_macro_attribute]
pub fn route(attribute: TokenStream, item: TokenStream) -> TokenStream {
    match declare(attribute.into(), item.into()) {
        Ok(tokens) | Err(tokens) => tokens.into(),
    }
}

/// `routes![a, b]`: the declared routes of handlers `a` and `b`, as a `Vec<shared::routes::Route>`.
#[proc_macro]
pub fn routes(input: TokenStream) -> TokenStream {
    let handlers = split_commas(input.into());
    let mut routes = Vec::new();
    for handler in handlers {
        let Some(TokenTree::Ident(name)) = handler.clone().into_iter().last() else {
            return error(
                Span::call_site(),
                "routes! takes handler names: routes![a, b]",
            )
            .into();
        };
        let prefix: Tokens = handler
            .into_iter()
            .take_while(|token| !is(token, &name))
            .collect();
        let declared = Ident::new(&format!("__path_{name}"), name.span());
        routes.push(quote! { ::shared::routes::Route::of::<#prefix #declared>() });
    }
    quote! { vec![#(#routes),*] }.into()
}

fn is(token: &TokenTree, ident: &Ident) -> bool {
    matches!(token, TokenTree::Ident(other) if other == ident)
}

fn declare(attribute: Tokens, item: Tokens) -> Result<Tokens, Tokens> {
    let mut parts = split_commas(attribute).into_iter();
    let method = match parts.next().and_then(single) {
        Some(TokenTree::Ident(method)) => method,
        _ => {
            return Err(error(
                Span::call_site(),
                "#[route] starts with the method: #[route(get, \"/v1/…\", …)]",
            ))
        }
    };
    let path = match parts.next().and_then(single) {
        Some(TokenTree::Literal(path)) => path,
        _ => {
            return Err(error(
                method.span(),
                "#[route] takes the path second, as a string literal",
            ))
        }
    };
    let mut access = None;
    let mut audit = None;
    let mut rate = None;
    let mut openapi = Vec::new();
    for part in parts {
        let mut tokens = part.clone().into_iter();
        let key = match (tokens.next(), tokens.next()) {
            (Some(TokenTree::Ident(key)), Some(TokenTree::Punct(eq))) if eq.as_char() == '=' => {
                Some(key)
            }
            _ => None,
        };
        let value: Tokens = tokens.collect();
        match key.as_ref().map(Ident::to_string).as_deref() {
            Some("access") => access = Some(value),
            Some("audit") => audit = Some(value),
            Some("rate") => rate = Some(value),
            _ => openapi.push(part),
        }
    }
    let Some(access) = access else {
        return Err(error(
            method.span(),
            "#[route] needs `access = …`: who may call the route",
        ));
    };
    let Some(rate) = rate else {
        return Err(error(
            method.span(),
            "#[route] needs `rate = …`: the route's rate class",
        ));
    };
    let audit = match audit {
        Some(audit) => quote! { ::core::convert::Into::into(#audit) },
        None => quote! { ::shared::routes::Audit::Refusals },
    };
    let Some(handler) = function_name(&item) else {
        return Err(error(method.span(), "#[route] goes on a handler function"));
    };
    let declared = Ident::new(&format!("__path_{handler}"), handler.span());
    let method_name = method.to_string();
    let actix_method = Ident::new(&method_name, method.span());
    Ok(quote_spanned! {method.span()=>
        #[utoipa::path(#method, path = #path #(, #openapi)*)]
        #item

        impl ::shared::routes::Declared for #declared {
            fn policy() -> ::shared::routes::Policy {
                #[allow(unused_imports)]
                use ::shared::routes::policy::*;
                ::shared::routes::Policy {
                    access: #access,
                    audit: #audit,
                    rate: #rate,
                }
            }

            fn handler() -> ::actix_web::Route {
                ::actix_web::web::#actix_method().to(#handler)
            }
        }
    })
}

/// The token, if `tokens` is exactly one.
fn single(tokens: Tokens) -> Option<TokenTree> {
    let mut tokens = tokens.into_iter();
    let first = tokens.next()?;
    tokens.next().is_none().then_some(first)
}

/// The name after `fn` in an item.
fn function_name(item: &Tokens) -> Option<Ident> {
    let mut tokens = item.clone().into_iter();
    while let Some(token) = tokens.next() {
        if matches!(&token, TokenTree::Ident(ident) if ident == "fn") {
            return match tokens.next() {
                Some(TokenTree::Ident(name)) => Some(name),
                _ => None,
            };
        }
    }
    None
}

/// The parts of a token stream between its top-level commas (commas inside groups stay).
/// Generic arguments (`Vec<A, B>`) would be split too: the values the macro reads never have
/// a comma outside brackets, and `utoipa::path`'s own arguments keep theirs inside groups.
fn split_commas(tokens: Tokens) -> Vec<Tokens> {
    let mut parts = Vec::new();
    let mut current = Vec::new();
    for token in tokens {
        match &token {
            TokenTree::Punct(punct) if punct.as_char() == ',' => {
                parts.push(current.drain(..).collect());
            }
            _ => current.push(token),
        }
    }
    if !current.is_empty() {
        parts.push(current.into_iter().collect());
    }
    parts
}

fn error(span: Span, message: &str) -> Tokens {
    let message = proc_macro2::Literal::string(message);
    let group = proc_macro2::Group::new(Delimiter::Parenthesis, quote! { #message });
    quote_spanned! {span=> ::core::compile_error! #group; }
}
