//! Behind a load balancer: with the balancer's address in `trusted_proxies`, each client it
//! forwards is itself (its own sign-in limit, its own address on sessions and audit events);
//! a forged forwarding header from anyone else, or the part of a chain a client wrote, changes
//! nothing; garbage in the header never costs a 5xx.

use data_plane::rate_limit::RateLimitSettings;
use reqwest::StatusCode;
use serde_json::{json, Value};
use shared::http::client_address::{ForwardedHeader, TrustedProxies};
use tenantry_tests::client::NewKey;
use tenantry_tests::{TestApp, TestOptions, OWNER_EMAIL, PASSWORD};

/// Sign-in attempts admitted per client before 429.
const BURST: u32 = 3;

/// An app whose data plane trusts `proxies` (the tests' requests come from 127.0.0.1) and
/// admits `burst` sign-in attempts per tenant and client.
async fn app_behind(proxies: &str, burst: u32) -> TestApp {
    TestApp::spawn_with(TestOptions {
        trusted_proxies: TrustedProxies::parse(proxies, ForwardedHeader::XForwardedFor).unwrap(),
        rate_limit: RateLimitSettings {
            auth_burst: burst,
            auth_per_minute: burst,
            ..RateLimitSettings::default()
        },
        ..TestOptions::default()
    })
    .await
}

/// A wrong-password sign-in at `slug` forwarded as `forwarded_for`; its status.
async fn failed_sign_in(app: &TestApp, slug: &str, forwarded_for: &str) -> StatusCode {
    tenantry_tests::failed_sign_in(&app.tenant(slug), "x-forwarded-for", forwarded_for).await
}

/// Fails sign-ins forwarded as `forwarded_for` until one is refused with 429; how many were
/// admitted (401) before it.
async fn admitted_until_refused(app: &TestApp, slug: &str, forwarded_for: &str) -> u32 {
    let mut admitted = 0;
    loop {
        match failed_sign_in(app, slug, forwarded_for).await {
            StatusCode::UNAUTHORIZED if admitted < BURST => admitted += 1,
            StatusCode::TOO_MANY_REQUESTS => return admitted,
            other => panic!("{forwarded_for}: {other} after {admitted} admitted"),
        }
    }
}

/// The owner signs in forwarded as `forwarded_for`; the address the new session records.
async fn session_address(app: &TestApp, slug: &str, forwarded_for: &str) -> Option<String> {
    let reply = app
        .tenant(slug)
        .post("/v1/auth/login")
        .header("x-forwarded-for", forwarded_for)
        .json(&json!({"email": OWNER_EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), StatusCode::OK);
    let tokens: Value = reply.json().unwrap();
    let token = tokens["access_token"].as_str().unwrap();
    let client = app.as_bearer(slug, token);
    let sessions = client.me().sessions().await.unwrap();
    let current = sessions
        .iter()
        .max_by_key(|session| session.created_at)
        .unwrap();
    current.ip.clone()
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_client_is_itself() {
    let app = app_behind("127.0.0.1/32", BURST).await;
    app.tenant_with_owner("acme").await;

    // One client's sign-in limit is its own: another behind the same balancer is admitted.
    assert_eq!(
        admitted_until_refused(&app, "acme", "203.0.113.1").await,
        BURST
    );
    assert_eq!(
        failed_sign_in(&app, "acme", "203.0.113.2").await,
        StatusCode::UNAUTHORIZED
    );

    // The client's address is what the session records; in a chain, the hop the balancer
    // appended (the rightmost untrusted one), never what the client wrote before it.
    // Trusted hops (another proxy in front of the balancer) are skipped.
    for (forwarded_for, client) in [
        ("203.0.113.7", "203.0.113.7"),
        ("198.51.100.1, 203.0.113.8", "203.0.113.8"),
        ("203.0.113.9, 127.0.0.1", "203.0.113.9"),
    ] {
        assert_eq!(
            session_address(&app, "acme", forwarded_for)
                .await
                .as_deref(),
            Some(client),
            "{forwarded_for}"
        );
    }
    // And the forged client of an exhausted limit is still refused.
    assert_eq!(
        failed_sign_in(&app, "acme", "10.9.9.9, 203.0.113.1").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn an_api_key_allow_list_sees_the_forwarded_client_not_the_balancer() {
    let app = app_behind("127.0.0.1/32", BURST).await;
    let owner = app.tenant_with_owner("acme").await;
    let key = owner
        .api_keys()
        .create(&NewKey::new("office", &["usage:read"]).allowed_ips(&["203.0.113.0/24"]))
        .await
        .unwrap()
        .key;
    let usage = |forwarded_for: &'static str| {
        let client = app.tenant("acme");
        let key = key.expose().to_owned();
        async move {
            client
                .get("/v1/usage")
                .header("x-api-key", &key)
                .header("x-forwarded-for", forwarded_for)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(usage("203.0.113.20").await, StatusCode::OK);
    assert_eq!(usage("198.51.100.20").await, StatusCode::FORBIDDEN);
    // The balancer's own address is not in the list, and a client cannot borrow a listed one
    // by writing it before its own.
    assert_eq!(
        usage("203.0.113.20, 198.51.100.20").await,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn a_forwarding_header_from_a_peer_that_is_not_trusted_changes_nothing() {
    // The node trusts a proxy that is not the tests' address.
    let app = app_behind("10.0.0.0/8", BURST).await;
    app.tenant_with_owner("acme").await;

    // The forged client shares the peer's limit, which the owner's sign-in has used already.
    assert!(admitted_until_refused(&app, "acme", "203.0.113.1").await < BURST);
    // Another forged client is the same peer, and the same exhausted limit.
    assert_eq!(
        failed_sign_in(&app, "acme", "203.0.113.2").await,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        failed_sign_in(&app, "acme", "garbage").await,
        StatusCode::TOO_MANY_REQUESTS
    );
}

#[tokio::test]
async fn garbage_in_the_forwarding_header_is_ignored_never_a_5xx() {
    let app = app_behind("127.0.0.1/32, ::1/128", 100).await;
    app.tenant_with_owner("acme").await;
    let long_chain = vec!["127.0.0.1"; 200].join(", ");
    for forwarded in [
        "not-an-address",
        "unknown",
        "_hidden",
        "1.2.3.4.5",
        "[2001:db8::1",
        "[2001:db8::1]:port",
        ",,,",
        "2001:db8::1, ::ffff:203.0.113.5",
        "[2001:db8::2]:4711",
        long_chain.as_str(),
    ] {
        let reply = app
            .tenant("acme")
            .post("/v1/auth/login")
            .header("x-forwarded-for", forwarded)
            .json(&json!({"email": OWNER_EMAIL, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::OK, "{forwarded:?}");
    }
    // An IPv4-mapped address is its IPv4 form, and a port is not part of the address; garbage
    // where the client should be leaves the balancer's own address.
    for (forwarded_for, client) in [
        ("::ffff:203.0.113.5", "203.0.113.5"),
        ("[2001:db8::2]:4711", "2001:db8::2"),
        ("garbage", "127.0.0.1"),
    ] {
        assert_eq!(
            session_address(&app, "acme", forwarded_for)
                .await
                .as_deref(),
            Some(client),
            "{forwarded_for}"
        );
    }
}

/// A load balancer keeps idle connections to a node open for up to its idle timeout (AWS
/// ALB: 60 s) and sends the next request on one. If the node closed it first, that request
/// fails (a 502 at the balancer). The node keeps an idle connection longer than that
/// (`http_keep_alive_seconds`, 75 s), not actix-web's 5 s: here a connection idle past 5 s
/// still serves its next request.
#[tokio::test]
async fn an_idle_keep_alive_connection_outlives_a_few_seconds_for_the_balancer_to_reuse() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn().await;
    let address = app.data_url.trim_start_matches("http://").to_owned();
    let mut connection = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!("GET /healthz HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let answer = async |connection: &mut tokio::net::TcpStream| {
        connection.write_all(request.as_bytes()).await.unwrap();
        let mut buffer = vec![0u8; 4096];
        let read = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            connection.read(&mut buffer),
        )
        .await
        .expect("no answer")
        .unwrap();
        String::from_utf8_lossy(&buffer[..read]).into_owned()
    };
    let first = answer(&mut connection).await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    // Idle for longer than actix-web's default keep-alive (5 s): what the balancer does
    // between two requests on a quiet connection.
    tokio::time::sleep(std::time::Duration::from_secs(6)).await;
    let second = answer(&mut connection).await;
    assert!(
        second.starts_with("HTTP/1.1 200"),
        "the node closed an idle connection after a few seconds: {second:?}"
    );
}
