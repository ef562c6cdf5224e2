//! Which machine a request comes from: the socket's peer, or, when that peer is a proxy the
//! configuration trusts (`TRUSTED_PROXIES`), the nearest address it names in
//! `X-Forwarded-For` that is not itself a trusted proxy. A client can put anything in that
//! header; only what a trusted proxy appended is believed.

use std::net::IpAddr;

use actix_web::HttpRequest;

use crate::config::{Network, canonical};

/// Who sent a request, as far as the server can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Client {
    /// An address: the peer's, or the one a trusted proxy named.
    Ip(IpAddr),
    /// What a trusted proxy wrote in `X-Forwarded-For` that is no address (bounded): still
    /// this client's and no one else's, rather than the proxy's shared address.
    Named(String),
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:80`, `[::1]:80`).
fn forwarded_address(entry: &[u8]) -> Option<IpAddr> {
    let text = std::str::from_utf8(entry).ok()?.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Ok(addr) = text.parse::<std::net::SocketAddr>() {
        return Some(canonical(addr.ip()));
    }
    text.strip_prefix('[').and_then(|t| t.strip_suffix(']')).and_then(|t| t.parse().ok()).map(canonical)
}

/// The client: the peer, or behind trusted proxies the nearest address they name that is not
/// a proxy itself. The header is read as bytes, so a client's junk in its own part of a line
/// cannot hide the address a proxy appended.
pub fn client(req: &HttpRequest, trusted: &[Network]) -> Option<Client> {
    let peer = canonical(req.peer_addr()?.ip());
    if !trusted.iter().any(|n| n.contains(peer)) {
        return Some(Client::Ip(peer));
    }
    // Every X-Forwarded-For header, in order; the right-most entries were added last.
    let entries: Vec<&[u8]> = req
        .headers()
        .get_all("x-forwarded-for")
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii)
        .collect();
    let mut client = Client::Ip(peer);
    for entry in entries.iter().rev() {
        match forwarded_address(entry) {
            Some(ip) if trusted.iter().any(|n| n.contains(ip)) => client = Client::Ip(ip),
            Some(ip) => return Some(Client::Ip(ip)),
            None => {
                let named = String::from_utf8_lossy(&entry[..entry.len().min(64)]).into_owned();
                return Some(Client::Named(named));
            }
        }
    }
    Some(client)
}

/// The unit the login throttle counts by: an IPv4 address, or the /64 an IPv6 address lies
/// in (what one subscriber is given, so that a single machine cannot change source at will).
pub fn source(req: &HttpRequest, trusted: &[Network]) -> String {
    match client(req, trusted) {
        Some(Client::Ip(IpAddr::V4(ip))) => ip.to_string(),
        Some(Client::Ip(IpAddr::V6(ip))) => {
            let s = ip.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Some(Client::Named(name)) => format!("named:{name}"),
        None => "-".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn junk_bytes_in_a_clients_part_do_not_hide_what_the_proxy_appended() {
        let req = TestRequest::default()
            .peer_addr("10.0.0.2:40000".parse().unwrap())
            .insert_header((
                "X-Forwarded-For",
                actix_web::http::header::HeaderValue::from_bytes(b"\xff\xfe junk, 198.51.100.7").unwrap(),
            ))
            .to_http_request();
        assert_eq!(source(&req, &nets(&["10.0.0.0/8"])), "198.51.100.7");
    }

    #[test]
    fn blocks_parse_and_contain() {
        let net: Network = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.200.1.2".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.1".parse().unwrap()), "IPv4 written as IPv6");
        let net: Network = "2001:db8::/33".parse().unwrap();
        assert!(net.contains("2001:db8:7fff::1".parse().unwrap()));
        assert!(!net.contains("2001:db8:8000::1".parse().unwrap()));
        assert!("127.0.0.1".parse::<Network>().unwrap().contains("127.0.0.1".parse().unwrap()));
        for bad in ["10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }

    #[test]
    fn forwarded_addresses_count_only_behind_a_trusted_proxy() {
        let behind = |peer: &str, forwarded: Option<&str>, trusted: &[&str]| {
            let mut req =
                TestRequest::default().peer_addr(std::net::SocketAddr::new(peer.parse().unwrap(), 40000));
            if let Some(f) = forwarded {
                req = req.insert_header(("X-Forwarded-For", f));
            }
            source(&req.to_http_request(), &nets(trusted))
        };
        // A client's own header is ignored.
        assert_eq!(behind("203.0.113.9", Some("198.51.100.1"), &[]), "203.0.113.9");
        assert_eq!(behind("203.0.113.9", Some("198.51.100.1"), &["10.0.0.0/8"]), "203.0.113.9");
        // Behind the proxy: the right-most address that is not a proxy, whatever the client
        // wrote further left.
        assert_eq!(behind("10.0.0.2", Some("1.2.3.4, 198.51.100.7"), &["10.0.0.0/8"]), "198.51.100.7");
        assert_eq!(behind("10.0.0.2", Some("198.51.100.7, 10.0.0.5"), &["10.0.0.0/8"]), "198.51.100.7");
        // Nothing forwarded: the proxy itself. What no address is, is that client's own name,
        // not the proxy's shared address; a port is no part of the address.
        assert_eq!(behind("10.0.0.2", None, &["10.0.0.0/8"]), "10.0.0.2");
        assert_eq!(behind("10.0.0.2", Some("unknown"), &["10.0.0.0/8"]), "named:unknown");
        assert_eq!(behind("10.0.0.2", Some("198.51.100.7:4711"), &["10.0.0.0/8"]), "198.51.100.7");
        assert_eq!(behind("10.0.0.2", Some("[2001:db8::1]:80"), &["10.0.0.0/8"]), "2001:db8:0:0::/64");
        // A trusted proxy written as IPv4 in IPv6.
        assert_eq!(behind("10.0.0.2", Some("198.51.100.7"), &["::ffff:10.0.0.0/104"]), "198.51.100.7");
        // One IPv6 subscriber is one source.
        assert_eq!(behind("2001:db8:1:2:aaaa::1", None, &[]), "2001:db8:1:2::/64");
        assert_eq!(behind("2001:db8:1:2:bbbb::9", None, &[]), "2001:db8:1:2::/64");
    }
}
