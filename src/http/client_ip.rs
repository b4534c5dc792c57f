//! Who is calling, by network address: for the per-address rate limits and the failed-login
//! limits.
//!
//! The address is the TCP peer's, unless that peer is one of `TRUSTED_PROXIES`: then the
//! `X-Forwarded-For` chain is read from the right (the entry the trusted proxy appended) and
//! the first address that is not itself a trusted proxy is the client. Entries to its left
//! were written by the client or by untrusted hops, so they are never believed: a client
//! cannot choose its own rate-limit bucket.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use ipnet::IpNet;

use crate::app::AppState;

static FORWARDED_FOR: axum::http::HeaderName =
    axum::http::HeaderName::from_static("x-forwarded-for");

/// The caller's address; `None` when served without connection info (in-process tests).
pub fn client_ip(
    headers: &HeaderMap,
    extensions: &Extensions,
    trusted_proxies: &[IpNet],
) -> Option<IpAddr> {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())?;
    // The header is read only from a trusted proxy: nothing to parse for anyone else.
    if !is_trusted(&peer, trusted_proxies) {
        return Some(peer);
    }
    Some(behind_proxies(
        peer,
        forwarded_for(headers),
        trusted_proxies,
    ))
}

/// The `X-Forwarded-For` entries, every header line in order, left to right.
fn forwarded_for(headers: &HeaderMap) -> Vec<&str> {
    headers
        .get_all(&FORWARDED_FOR)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(str::trim)
        .collect()
}

/// Walks from `peer` leftwards through `chain` while the current hop is a trusted proxy. An
/// entry that is not an address stops the walk at the proxy that passed it on.
fn behind_proxies(peer: IpAddr, chain: Vec<&str>, trusted_proxies: &[IpNet]) -> IpAddr {
    let mut client = peer;
    for entry in chain.into_iter().rev() {
        if !is_trusted(&client, trusted_proxies) {
            break;
        }
        match entry.parse::<IpAddr>() {
            Ok(ip) => client = ip.to_canonical(),
            Err(_) => break,
        }
    }
    client
}

fn is_trusted(ip: &IpAddr, trusted_proxies: &[IpNet]) -> bool {
    trusted_proxies.iter().any(|net| net.contains(ip))
}

/// The caller's address, for handlers.
pub struct ClientIp(pub Option<IpAddr>);

impl FromRequestParts<AppState> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(client_ip(
            &parts.headers,
            &parts.extensions,
            &state.settings.trusted_proxies,
        )))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().map(|net| net.parse().unwrap()).collect()
    }

    #[test]
    fn without_trusted_proxies_the_header_is_ignored() {
        let client = behind_proxies(ip("203.0.113.7"), vec!["198.51.100.1"], &[]);
        assert_eq!(client, ip("203.0.113.7"));
    }

    #[test]
    fn a_trusted_proxy_names_the_client() {
        let trusted = nets(&["10.0.0.0/8"]);
        let client = behind_proxies(ip("10.0.0.2"), vec!["203.0.113.7"], &trusted);
        assert_eq!(client, ip("203.0.113.7"));
    }

    #[test]
    fn entries_a_client_wrote_itself_are_not_believed() {
        // The client sent "X-Forwarded-For: 1.2.3.4"; the proxy appended its real address.
        let trusted = nets(&["10.0.0.2/32"]);
        let client = behind_proxies(ip("10.0.0.2"), vec!["1.2.3.4", "203.0.113.7"], &trusted);
        assert_eq!(client, ip("203.0.113.7"));
    }

    #[test]
    fn a_chain_of_trusted_proxies_is_walked_through() {
        let trusted = nets(&["10.0.0.0/8", "192.168.1.1/32"]);
        let client = behind_proxies(ip("10.0.0.2"), vec!["203.0.113.7", "192.168.1.1"], &trusted);
        assert_eq!(client, ip("203.0.113.7"));
    }

    #[test]
    fn garbage_stops_at_the_proxy_and_v4_mapped_addresses_are_plain_v4() {
        let trusted = nets(&["10.0.0.0/8"]);
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), vec!["not-an-ip"], &trusted),
            ip("10.0.0.2")
        );
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), vec!["::ffff:203.0.113.7"], &trusted),
            ip("203.0.113.7")
        );
        assert_eq!(
            behind_proxies(ip("10.0.0.2"), vec![], &trusted),
            ip("10.0.0.2")
        );
    }
}
