//! The egress guard (`shared::egress`): a URL a tenant admin configures never makes a node
//! reach loopback, private, link-local, unique-local, carrier-NAT or metadata-service
//! addresses, whether the URL names the address or a host name resolving to it, and no
//! redirect is followed. The operator's `egress_allow_networks` opens what it names: every
//! other SSO test runs with loopback allowed, where the local IdPs listen.

use std::net::TcpListener as StdListener;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use shared::egress::EgressPolicy;
use tenantry_tests::{TestApp, TestOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

async fn app_with(egress: &str) -> TestApp {
    TestApp::spawn_with(TestOptions {
        egress: EgressPolicy::parse(egress).unwrap(),
        ..TestOptions::default()
    })
    .await
}

fn port_of(url: &str) -> u16 {
    let port = url.rsplit(':').next().unwrap();
    port.trim_end_matches('/').parse().unwrap()
}

fn saml_by_url(url: &str) -> Value {
    json!({"name": "by-url", "provider": {"kind": "saml", "idp_metadata_url": url}})
}

/// The refusal's message, once checked to be a 400 `invalid_sso_config`.
fn refusal(reply: &Reply) -> String {
    assert_eq!(reply.status(), StatusCode::BAD_REQUEST, "{}", reply.text());
    let body = reply.value();
    assert_eq!(body["error"]["code"], "invalid_sso_config", "{body}");
    body["error"]["message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_saml_metadata_url_reaching_an_internal_address_is_refused_and_nothing_is_saved() {
    let app = app_with("").await;
    let admin = app
        .tenant_with_admin("egress-saml", &idp_address("owner"))
        .await;
    // The pysaml2 IdP really answers there: a refusal is the guard's, not a dead address's.
    let idp = port_of(&saml_idp_url());
    for (url, class) in [
        (format!("http://127.0.0.1:{idp}/metadata"), "loopback"),
        // A name that resolves to loopback is judged by the address it resolves to.
        (format!("http://localhost:{idp}/metadata"), "loopback"),
        (format!("http://[::1]:{idp}/metadata"), "loopback"),
        (
            format!("https://[::ffff:127.0.0.1]:{idp}/metadata"),
            "loopback",
        ),
        ("https://10.0.0.1/metadata".to_owned(), "private"),
        ("https://192.168.1.20/metadata".to_owned(), "private"),
        ("https://172.16.5.4/metadata".to_owned(), "private"),
        // The cloud metadata services: AWS, GCP and Azure; AWS over IPv6; Alibaba.
        (
            "https://169.254.169.254/latest/meta-data/".to_owned(),
            "link-local",
        ),
        (
            "https://[fd00:ec2::254]/latest/meta-data/".to_owned(),
            "unique-local",
        ),
        (
            "https://100.100.100.200/latest/meta-data/".to_owned(),
            "carrier-NAT (shared)",
        ),
        ("https://[fe80::1]/metadata".to_owned(), "link-local"),
        ("https://0.0.0.0/metadata".to_owned(), "unspecified"),
    ] {
        let message = refusal(&create_provider(&admin, &saml_by_url(&url)).await);
        assert!(
            message.contains(&format!(": {class} addresses are refused")),
            "{url}: {message}"
        );
        assert!(message.contains("egress_allow_networks"), "{message}");
    }
    assert_eq!(
        app.count_in("egress-saml", "sso_providers").await,
        0,
        "a refused provider was saved"
    );

    // The operator's API fetches through the same guard.
    let operator = app
        .operator_api()
        .call(Method::POST, "/v1/tenants/egress-saml/sso")
        .json(&saml_by_url(&format!("http://127.0.0.1:{idp}/metadata")))
        .send()
        .await
        .unwrap();
    assert!(refusal(&operator).contains("loopback addresses are refused"));
}

#[tokio::test]
async fn an_oidc_issuer_at_an_internal_address_is_a_configuration_error_at_sign_in() {
    let app = app_with("").await;
    let admin = app
        .tenant_with_admin("egress-oidc", &idp_address("owner"))
        .await;
    let issuer = oidc_issuer();
    let by_name = issuer.replace("127.0.0.1", "localhost");
    for (name, issuer) in [("literal", issuer.as_str()), ("by-name", by_name.as_str())] {
        // Saving fetches nothing; the first sign-in fetches the discovery document.
        let created = create_provider(
            &admin,
            &json!({"name": name, "provider": {"kind": "oidc", "issuer": issuer,
                    "client_id": "tenantry"}, "client_secret": "s3cret"}),
        )
        .await;
        assert_eq!(created.status(), StatusCode::CREATED, "{}", created.text());
        let start = Browser::new(&app)
            .tenant_get("egress-oidc", &format!("/v1/auth/sso/{name}/start"))
            .await;
        let message = refusal(&start);
        assert!(
            message.contains("OIDC discovery") && message.contains("loopback"),
            "{issuer}: {message}"
        );
    }
}

/// An HTTP server on `127.0.0.1` that answers every request with a redirect to `location`.
async fn redirecting_server(location: String) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut request = [0_u8; 4096];
                let read = stream.read(&mut request).await.unwrap_or(0);
                assert!(read > 0, "the client sent no request");
                let answer = format!(
                    "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                stream.write_all(answer.as_bytes()).await.unwrap();
                stream.shutdown().await.unwrap();
            });
        }
    });
    port
}

#[tokio::test]
async fn a_redirect_is_not_followed_even_to_an_allowed_address() {
    // Loopback allowed, so a redirect to 127.0.0.2 would be followed if redirects were.
    let app = app_with("127.0.0.0/8").await;
    let admin = app
        .tenant_with_admin("egress-redirect", &idp_address("owner"))
        .await;
    let target = StdListener::bind("127.0.0.2:0").unwrap();
    target.set_nonblocking(true).unwrap();
    let target_port = target.local_addr().unwrap().port();
    let server = redirecting_server(format!("http://127.0.0.2:{target_port}/metadata")).await;

    let message = refusal(
        &create_provider(
            &admin,
            &saml_by_url(&format!("http://127.0.0.1:{server}/metadata")),
        )
        .await,
    );
    assert!(message.contains("302"), "{message}");
    // A connection the node had made would be waiting in the backlog by now.
    assert_eq!(
        target.accept().map_err(|error| error.kind()).err(),
        Some(std::io::ErrorKind::WouldBlock),
        "the node followed the redirect"
    );
    assert_eq!(app.count_in("egress-redirect", "sso_providers").await, 0);
}
