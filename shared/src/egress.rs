//! Requests our nodes make to URLs a tenant admin chose (an OIDC issuer and what its discovery
//! document names, a SAML metadata URL): the guard against server-side request forgery.
//!
//! Such a URL must not reach what only our nodes can reach: loopback, private networks
//! (RFC 1918, unique-local IPv6), link-local addresses (where the cloud metadata services
//! listen: `169.254.169.254`, `fd00:ec2::254`), the shared address space of carrier NAT
//! (`100.64.0.0/10`, where Alibaba's metadata service is), and the unspecified, broadcast,
//! multicast and reserved ranges. Each address is checked **after resolution, at connection
//! time** (a resolver that drops forbidden addresses), so a name resolving to `127.0.0.1`, or
//! one that changes its answer between a check and the connection (DNS rebinding), is refused
//! like the address itself. Literal addresses in a URL never reach a resolver, so [`Egress`]
//! checks them before sending. IPv4 addresses inside IPv6 ones (`::ffff:a.b.c.d`, NAT64's
//! `64:ff9b::/96`) are judged as the IPv4 address they carry.
//!
//! Redirects are never followed (an IdP's endpoints are named in its configuration, not
//! found by redirection), and no proxy from the environment is used (a proxy would resolve
//! the name instead of us).
//!
//! An operator names networks that may be reached anyway (`egress_allow_networks`: addresses
//! and CIDR ranges): an IdP inside the company network, or the local IdPs the tests run.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use ipnet::IpNet;

/// Why a request was not sent: the address it would have reached is one our nodes keep to
/// themselves.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{host} is {address}: {class} addresses are refused unless the operator allows them (egress_allow_networks)")]
pub struct Refused {
    pub host: String,
    pub address: IpAddr,
    pub class: AddressClass,
}

/// The kinds of address a tenant's URL may not reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddressClass {
    Loopback,
    Private,
    LinkLocal,
    UniqueLocal,
    SharedNat,
    Unspecified,
    Broadcast,
    Multicast,
    Reserved,
}

impl std::fmt::Display for AddressClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Loopback => "loopback",
            Self::Private => "private",
            Self::LinkLocal => "link-local",
            Self::UniqueLocal => "unique-local",
            Self::SharedNat => "carrier-NAT (shared)",
            Self::Unspecified => "unspecified",
            Self::Broadcast => "broadcast",
            Self::Multicast => "multicast",
            Self::Reserved => "reserved",
        })
    }
}

/// The class of `address` when it is one a tenant's URL may not reach, else `None` (a public
/// address).
pub fn forbidden_class(address: IpAddr) -> Option<AddressClass> {
    match address {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => v4_class(v4),
            None => v6_class(v6),
        },
    }
}

fn v4_class(address: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, ..] = address.octets();
    Some(if address.is_loopback() {
        AddressClass::Loopback
    } else if address.is_private() {
        AddressClass::Private
    } else if address.is_link_local() {
        AddressClass::LinkLocal
    } else if a == 100 && (64..128).contains(&b) {
        AddressClass::SharedNat
    } else if address.is_unspecified() || a == 0 {
        AddressClass::Unspecified
    } else if address.is_broadcast() {
        AddressClass::Broadcast
    } else if address.is_multicast() {
        AddressClass::Multicast
    } else if a >= 240
        || (a == 192 && b == 0 && address.octets()[2] == 0)
        || (a == 198 && (18..20).contains(&b))
    {
        // 240/4 (future use), 192.0.0.0/24 (protocol assignments), 198.18/15 (benchmarking).
        AddressClass::Reserved
    } else {
        return None;
    })
}

fn v6_class(address: Ipv6Addr) -> Option<AddressClass> {
    let first = address.segments()[0];
    Some(if address.is_loopback() {
        AddressClass::Loopback
    } else if address.is_unspecified() {
        AddressClass::Unspecified
    } else if first & 0xffc0 == 0xfe80 {
        AddressClass::LinkLocal
    } else if first & 0xfe00 == 0xfc00 {
        AddressClass::UniqueLocal
    } else if address.is_multicast() {
        AddressClass::Multicast
    } else if first & 0xffc0 == 0xfec0 {
        // Site-local (deprecated, still routed inside some networks).
        AddressClass::Private
    } else {
        return None;
    })
}

/// The IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:a.b.c.d`), IPv4-compatible
/// (`::a.b.c.d`, deprecated) or NAT64 (`64:ff9b::a.b.c.d`).
fn embedded_v4(address: Ipv6Addr) -> Option<Ipv4Addr> {
    let segments = address.segments();
    let [_, _, _, _, _, _, high, low] = segments;
    let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
    match segments[..6] {
        [0, 0, 0, 0, 0, 0xffff] => Some(v4),
        [0x64, 0xff9b, 0, 0, 0, 0] => Some(v4),
        // `::` and `::1` are IPv6's own; anything else in `::/96` is an IPv4-compatible one.
        [0, 0, 0, 0, 0, 0] if u32::from(v4) > 1 => Some(v4),
        _ => None,
    }
}

/// Which addresses requests may reach: public ones, and those in the operator's networks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    allowed: Vec<IpNet>,
}

impl EgressPolicy {
    /// `networks`: addresses and CIDR ranges separated by commas or spaces (config
    /// `egress_allow_networks`; empty: only public addresses).
    pub fn parse(networks: &str) -> Result<Self, String> {
        Ok(Self {
            allowed: crate::config::parse_networks(networks)?,
        })
    }

    /// Config `egress_allow_networks`, which both planes read.
    pub fn from_source(
        source: &crate::config::ConfigSource,
    ) -> Result<Self, crate::config::ConfigError> {
        Self::parse(&source.get("egress_allow_networks").unwrap_or_default()).map_err(|reason| {
            crate::config::ConfigError::Invalid {
                key: "egress_allow_networks".to_owned(),
                reason,
            }
        })
    }

    /// Whether `host` (as the URL named it) may be reached at `address`.
    pub fn check(&self, host: &str, address: IpAddr) -> Result<(), Refused> {
        let address = address.to_canonical();
        match forbidden_class(address) {
            Some(class)
                if !self
                    .allowed
                    .iter()
                    .any(|network| network.contains(&address)) =>
            {
                Err(Refused {
                    host: host.to_owned(),
                    address,
                    class,
                })
            }
            _ => Ok(()),
        }
    }
}

/// Resolves names as the system does, then keeps only the addresses the policy allows; a name
/// left with none fails with the first [`Refused`].
struct GuardedResolver {
    policy: Arc<EgressPolicy>,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = resolved
                .into_iter()
                .filter(|address| match policy.check(&host, address.ip()) {
                    Ok(()) => true,
                    Err(error) => {
                        refused.get_or_insert(error);
                        false
                    }
                })
                .collect();
            match (allowed.is_empty(), refused) {
                (true, Some(refused)) => Err(Box::new(refused) as _),
                _ => Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs),
            }
        })
    }
}

/// Why a guarded request failed.
#[derive(Debug, thiserror::Error)]
pub enum EgressError {
    /// The URL's host is, or resolves only to, an address our nodes keep to themselves.
    #[error(transparent)]
    Refused(#[from] Refused),
    /// Anything else: the URL, the connection, the answer (the whole chain of causes).
    #[error("{0}")]
    Failed(String),
}

impl From<reqwest::Error> for EgressError {
    fn from(error: reqwest::Error) -> Self {
        match refused_in(&error) {
            Some(refused) => Self::Refused(refused),
            None => Self::Failed(describe(&error)),
        }
    }
}

/// The [`Refused`] somewhere in `error`'s chain of causes (a library wraps ours).
pub fn refused_in(error: &(dyn std::error::Error + 'static)) -> Option<Refused> {
    let mut source = Some(error);
    while let Some(cause) = source {
        if let Some(refused) = cause.downcast_ref::<Refused>() {
            return Some(refused.clone());
        }
        if let Some(EgressError::Refused(refused)) = cause.downcast_ref::<EgressError>() {
            return Some(refused.clone());
        }
        source = cause.source();
    }
    None
}

/// `error` and its causes, each once, as one line (libraries' errors often say only
/// "request failed" and keep the reason in a cause).
pub fn describe(error: &(dyn std::error::Error + 'static)) -> String {
    let mut source = Some(error);
    let mut chain: Vec<String> = Vec::new();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !chain.iter().any(|seen| seen.contains(&text)) {
            chain.push(text);
        }
        source = cause.source();
    }
    chain.join(": ")
}

/// The HTTP client for tenant-chosen URLs: the [`EgressPolicy`] at every connection, no
/// redirects, no proxies, bounded in time.
#[derive(Clone)]
pub struct Egress {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
}

impl std::fmt::Debug for Egress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Egress")
            .field("policy", &self.policy)
            .finish_non_exhaustive()
    }
}

impl Egress {
    pub fn new(policy: EgressPolicy) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .no_proxy()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(10))
            .build()?;
        Ok(Self { client, policy })
    }

    /// Whether `url` may be requested as far as can be told before resolving it: its scheme is
    /// HTTP(S) and, when its host is a literal address, that address is allowed. A host name
    /// is checked by the resolver at connection time.
    pub fn check_url(&self, url: &url::Url) -> Result<(), EgressError> {
        if !matches!(url.scheme(), "http" | "https") {
            return Err(EgressError::Failed(format!(
                "{url}: only http and https URLs are fetched"
            )));
        }
        let address = match url.host() {
            Some(url::Host::Ipv4(address)) => IpAddr::V4(address),
            Some(url::Host::Ipv6(address)) => IpAddr::V6(address),
            Some(url::Host::Domain(_)) => return Ok(()),
            None => return Err(EgressError::Failed(format!("{url}: no host"))),
        };
        Ok(self
            .policy
            .check(url.host_str().unwrap_or_default(), address)?)
    }

    /// A GET of `url`, once [`Self::check_url`] allows it.
    pub fn get(&self, url: url::Url) -> Result<reqwest::RequestBuilder, EgressError> {
        self.check_url(&url)?;
        Ok(self.client.get(url))
    }

    /// Sends `request`, once [`Self::check_url`] allows its URL.
    pub async fn execute(
        &self,
        request: reqwest::Request,
    ) -> Result<reqwest::Response, EgressError> {
        self.check_url(request.url())?;
        Ok(self.client.execute(request).await?)
    }

    /// Sends a request built by an OAuth 2.0 / OpenID Connect library (`http` types), for its
    /// `AsyncHttpClient`. Answers over [`MAX_LIBRARY_BODY`] are refused.
    pub async fn execute_http(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, EgressError> {
        let request = reqwest::Request::try_from(request)?;
        let response = self.execute(request).await?;
        let mut answer = http::Response::builder().status(response.status());
        if let Some(headers) = answer.headers_mut() {
            headers.extend(response.headers().clone());
        }
        let body = read_body(response, MAX_LIBRARY_BODY).await?;
        answer
            .body(body)
            .map_err(|error| EgressError::Failed(error.to_string()))
    }
}

/// Largest answer read for a library's request (a discovery document, a JWKS, a token
/// response): far over any real one.
pub const MAX_LIBRARY_BODY: usize = 1024 * 1024;

/// The body of `response`, read a chunk at a time and refused as soon as it passes `max`
/// bytes (a hostile server cannot make us hold more).
pub async fn read_body(
    mut response: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, EgressError> {
    let too_large = || EgressError::Failed(format!("the answer is over {max} bytes"));
    if response
        .content_length()
        .is_some_and(|length| length > max as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > max {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(address: &str) -> Option<AddressClass> {
        forbidden_class(address.parse().unwrap())
    }

    #[test]
    fn each_class_of_internal_address_is_recognised_and_public_ones_pass() {
        for (address, expected) in [
            ("127.0.0.1", AddressClass::Loopback),
            ("127.8.9.10", AddressClass::Loopback),
            ("::1", AddressClass::Loopback),
            ("10.1.2.3", AddressClass::Private),
            ("172.16.0.1", AddressClass::Private),
            ("172.31.255.254", AddressClass::Private),
            ("192.168.1.1", AddressClass::Private),
            ("169.254.169.254", AddressClass::LinkLocal),
            ("fe80::1", AddressClass::LinkLocal),
            ("fc00::1", AddressClass::UniqueLocal),
            ("fd00:ec2::254", AddressClass::UniqueLocal),
            ("100.100.100.200", AddressClass::SharedNat),
            ("0.0.0.0", AddressClass::Unspecified),
            ("0.1.2.3", AddressClass::Unspecified),
            ("::", AddressClass::Unspecified),
            ("255.255.255.255", AddressClass::Broadcast),
            ("224.0.0.1", AddressClass::Multicast),
            ("ff02::1", AddressClass::Multicast),
            ("240.0.0.1", AddressClass::Reserved),
            ("198.18.0.1", AddressClass::Reserved),
            // IPv4 inside IPv6 is judged as the IPv4 address.
            ("::ffff:127.0.0.1", AddressClass::Loopback),
            ("::ffff:169.254.169.254", AddressClass::LinkLocal),
            ("64:ff9b::10.0.0.1", AddressClass::Private),
            ("::10.0.0.1", AddressClass::Private),
        ] {
            assert_eq!(class(address), Some(expected), "{address}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::8.8.8.8",
        ] {
            assert_eq!(class(public), None, "{public}");
        }
    }

    #[test]
    fn the_operators_networks_are_allowed_and_nothing_else() {
        let policy = EgressPolicy::parse("127.0.0.1, 10.20.0.0/16").unwrap();
        assert!(policy.check("idp", "127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy
            .check("idp", "::ffff:127.0.0.1".parse().unwrap())
            .is_ok());
        assert!(policy.check("idp", "10.20.3.4".parse().unwrap()).is_ok());
        let refused = policy
            .check("idp.corp", "10.21.0.1".parse().unwrap())
            .unwrap_err();
        assert_eq!(refused.class, AddressClass::Private);
        assert!(refused
            .to_string()
            .contains("idp.corp is 10.21.0.1: private addresses"));
        assert!(policy.check("idp", "127.0.0.2".parse().unwrap()).is_err());
        assert!(policy
            .check("idp", "93.184.215.14".parse().unwrap())
            .is_ok());
        assert!(EgressPolicy::parse("10.0.0.0/33").is_err());
        assert!(EgressPolicy::parse("localhost").is_err());
        assert_eq!(EgressPolicy::parse(" ").unwrap(), EgressPolicy::default());
    }
}
