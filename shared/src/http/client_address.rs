//! The client's address, behind load balancers and reverse proxies (config `trusted_proxies`,
//! `forwarded_header`).
//!
//! A request's TCP peer is the client, unless that peer is a proxy the operator trusts: then
//! the client is read from the forwarding header the proxies write (`X-Forwarded-For` by
//! default, or RFC 7239 `Forwarded`), right to left, skipping trusted hops and stopping at the
//! first address that is not trusted. Everything left of that address was written by whoever
//! sent it to the trusted proxies and is never believed. A header from a peer that is not
//! trusted is ignored entirely, as is an entry that is not an address (`unknown`, an
//! obfuscated name, garbage): the address found so far stands. One function gives the address
//! every consumer uses (rate limits, allow-lists, role conditions, sessions, audit).

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use ipnet::IpNet;

/// Hops read from a forwarding header at most: a chain longer than any real deployment's is
/// not walked further (the address found so far stands).
const MAX_HOPS: usize = 16;

/// Which header the trusted proxies write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2` (nginx, HAProxy, AWS and GCP balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for="[2001:db8::1]:4711"`.
    Forwarded,
}

impl FromStr for ForwardedHeader {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" => Ok(Self::XForwardedFor),
            "forwarded" => Ok(Self::Forwarded),
            other => Err(format!(
                "'{other}' is not a forwarding header: give x-forwarded-for or forwarded"
            )),
        }
    }
}

/// The proxies whose forwarding headers are believed, and which header they write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    networks: Vec<IpNet>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// `networks`: addresses and CIDR ranges separated by commas or spaces (empty: no proxy
    /// is trusted, the TCP peer is the client).
    pub fn parse(networks: &str, header: ForwardedHeader) -> Result<Self, String> {
        Ok(Self {
            networks: crate::config::parse_networks(networks)?,
            header,
        })
    }

    fn trusts(&self, address: IpAddr) -> bool {
        self.networks
            .iter()
            .any(|network| network.contains(&address))
    }

    /// The client's address for `request` (`None` only when the peer is unknown).
    pub fn client_address(&self, request: &HttpRequest) -> Option<IpAddr> {
        let peer = request.peer_addr()?.ip();
        Some(self.client_of(peer, request.headers()))
    }

    /// The client behind `peer`, given the request's `headers`.
    pub fn client_of(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.trusts(client) {
            return client;
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => "x-forwarded-for",
            ForwardedHeader::Forwarded => "forwarded",
        };
        // Every line of the header, in order, as one list; read from its end.
        let mut hops: Vec<&str> = Vec::new();
        for value in headers.get_all(name) {
            let Ok(value) = value.to_str() else {
                return client;
            };
            hops.extend(value.split(','));
        }
        for hop in hops.iter().rev().take(MAX_HOPS) {
            let address = match self.header {
                ForwardedHeader::XForwardedFor => address(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop),
            };
            match address {
                Some(address) => {
                    client = address.to_canonical();
                    if !self.trusts(client) {
                        return client;
                    }
                }
                None => return client,
            }
        }
        client
    }
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]`, `[2001:db8::1]:4711`.
fn address(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, after) = rest.split_once(']')?;
        let port_or_nothing = after.is_empty()
            || after
                .strip_prefix(':')
                .is_some_and(|port| port.parse::<u16>().is_ok());
        return port_or_nothing.then(|| inside.parse().ok()).flatten();
    }
    text.parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|socket| socket.ip()))
}

/// The `for=` address of one `Forwarded` element (`for=192.0.2.60;proto=https`), if it has
/// one that is an address.
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        if !name.trim().eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|quoted| quoted.strip_suffix('"'))
            .unwrap_or(value);
        address(value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for value in values {
            map.append(
                HeaderName::from_static(name),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        let none = TrustedProxies::default();
        let forged = headers("x-forwarded-for", &["203.0.113.9"]);
        assert_eq!(
            none.client_of(ip("198.51.100.7"), &forged),
            ip("198.51.100.7")
        );
        let proxies = TrustedProxies::parse("10.0.0.0/8", ForwardedHeader::XForwardedFor).unwrap();
        assert_eq!(
            proxies.client_of(ip("198.51.100.7"), &forged),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn behind_trusted_proxies_the_client_is_the_first_untrusted_hop_from_the_right() {
        let proxies =
            TrustedProxies::parse("10.0.0.0/8, 192.168.1.1", ForwardedHeader::XForwardedFor)
                .unwrap();
        let peer = ip("10.1.2.3");
        // The client wrote a forged first entry; the balancer appended what it saw.
        let chain = headers("x-forwarded-for", &["1.1.1.1, 203.0.113.9, 192.168.1.1"]);
        assert_eq!(proxies.client_of(peer, &chain), ip("203.0.113.9"));
        // The same chain over several header lines.
        let lines = headers("x-forwarded-for", &["1.1.1.1", "203.0.113.9, 192.168.1.1"]);
        assert_eq!(proxies.client_of(peer, &lines), ip("203.0.113.9"));
        // Only trusted hops: the leftmost stands.
        let inside = headers("x-forwarded-for", &["10.9.9.9, 192.168.1.1"]);
        assert_eq!(proxies.client_of(peer, &inside), ip("10.9.9.9"));
        // No header: the proxy itself.
        assert_eq!(proxies.client_of(peer, &HeaderMap::new()), peer);
    }

    #[test]
    fn garbage_unknown_and_too_many_hops_leave_the_last_address_found() {
        let proxies = TrustedProxies::parse("10.0.0.0/8", ForwardedHeader::XForwardedFor).unwrap();
        let peer = ip("10.0.0.1");
        for value in [
            "not-an-address",
            "unknown",
            "",
            "1.2.3.4.5",
            "[::1",
            "[::1]:x",
        ] {
            let chain = headers("x-forwarded-for", &[&format!("9.9.9.9, {value}")]);
            assert_eq!(proxies.client_of(peer, &chain), peer, "{value:?}");
        }
        let garbage_after = headers("x-forwarded-for", &["garbage, 203.0.113.9"]);
        assert_eq!(proxies.client_of(peer, &garbage_after), ip("203.0.113.9"));
        let long: Vec<String> = (0..100).map(|n| format!("10.0.0.{}", n % 250)).collect();
        let chain = headers(
            "x-forwarded-for",
            &[&format!("9.9.9.9, {}", long.join(", "))],
        );
        assert!(proxies.trusts(proxies.client_of(peer, &chain)));
    }

    #[test]
    fn ports_ipv6_and_ipv4_mapped_forms_are_read() {
        let proxies =
            TrustedProxies::parse("::1, 10.0.0.0/8", ForwardedHeader::XForwardedFor).unwrap();
        let mapped_peer = ip("::ffff:10.0.0.1");
        let chain = headers(
            "x-forwarded-for",
            &["[2001:db8::17]:4711, 203.0.113.9:5000, ::ffff:10.0.0.2"],
        );
        assert_eq!(proxies.client_of(mapped_peer, &chain), ip("203.0.113.9"));
        let v6 = headers("x-forwarded-for", &["2001:db8::17"]);
        assert_eq!(proxies.client_of(ip("::1"), &v6), ip("2001:db8::17"));
        let bracketed = headers("x-forwarded-for", &["[2001:db8::18]"]);
        assert_eq!(proxies.client_of(ip("::1"), &bracketed), ip("2001:db8::18"));
    }

    #[test]
    fn the_forwarded_header_is_read_only_when_configured() {
        let proxies = TrustedProxies::parse("10.0.0.0/8", ForwardedHeader::Forwarded).unwrap();
        let peer = ip("10.0.0.1");
        let both = {
            let mut map = headers(
                "forwarded",
                &[r#"for=1.1.1.1, for="[2001:db8:cafe::17]:4711";proto=https, for=10.0.0.5"#],
            );
            map.append(
                HeaderName::from_static("x-forwarded-for"),
                HeaderValue::from_static("203.0.113.9"),
            );
            map
        };
        assert_eq!(proxies.client_of(peer, &both), ip("2001:db8:cafe::17"));
        let hidden = headers("forwarded", &["for=1.1.1.1, for=_hidden, for=10.0.0.5"]);
        assert_eq!(proxies.client_of(peer, &hidden), ip("10.0.0.5"));
        let no_for = headers("forwarded", &["proto=https;by=10.0.0.9"]);
        assert_eq!(proxies.client_of(peer, &no_for), peer);
        // X-Forwarded-For proxies: a Forwarded header is the client's own and ignored.
        let xff = TrustedProxies::parse("10.0.0.0/8", ForwardedHeader::XForwardedFor).unwrap();
        assert_eq!(xff.client_of(peer, &both), ip("203.0.113.9"));
    }

    #[test]
    fn configuration_is_checked() {
        assert!(
            TrustedProxies::parse("10.0.0.0/8 192.168.0.1,::1/128", Default::default()).is_ok()
        );
        assert!(TrustedProxies::parse("10.0.0.0/33", Default::default()).is_err());
        assert!(TrustedProxies::parse("proxy.internal", Default::default()).is_err());
        assert_eq!("Forwarded".parse(), Ok(ForwardedHeader::Forwarded));
        assert!("x-real-ip".parse::<ForwardedHeader>().is_err());
    }
}
