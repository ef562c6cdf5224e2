//! Where a webhook may be sent. An `https` URL whose host resolves to public addresses only;
//! plain `http`, and private, loopback and link-local addresses, only when the operator allows
//! them (`WEBHOOK_ALLOW_PRIVATE_TARGETS`, for tests and closed networks). Checked when a
//! subscription is made and again before every delivery (a name can be re-pointed).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// Why a target is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused(pub String);

/// The longest URL accepted.
pub const MAX_URL_LENGTH: usize = 2000;

/// A checked target: the URL and the addresses its host had.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL as given.
    pub url: String,
    /// Where it resolved.
    pub addresses: Vec<SocketAddr>,
}

/// Whether `ip` is on a public network (not private, loopback, link-local, unspecified,
/// multicast, documentation or shared address space).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => public_v4(v4),
            None => public_v6(v6),
        },
    }
}

fn public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // shared address space (RFC 6598)
        || (a == 198 && (18..20).contains(&b)) // benchmarking (RFC 2544)
        || a >= 240)
}

fn public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_loopback()
        || ip.is_unspecified()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local
        || (first & 0xffc0) == 0xfe80 // link-local
        || first == 0x2001 && ip.segments()[1] == 0x0db8) // documentation
}

/// Parses and resolves `url`, refusing what is not allowed.
pub fn check(url: &str, allow_private: bool) -> Result<Target, Refused> {
    if url.len() > MAX_URL_LENGTH {
        return Err(Refused(format!("at most {MAX_URL_LENGTH} characters")));
    }
    let uri: actix_web::http::Uri = url.parse().map_err(|_| Refused("must be a URL".into()))?;
    let scheme = uri.scheme_str().unwrap_or("");
    let default_port = match scheme {
        "https" => 443,
        "http" if allow_private => 80,
        "http" => return Err(Refused("must be an https URL".into())),
        _ => return Err(Refused("must be an https URL".into())),
    };
    let host = uri.host().filter(|h| !h.is_empty()).ok_or_else(|| Refused("must name a host".into()))?;
    if url.contains('@') {
        return Err(Refused("must not carry credentials".into()));
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(default_port);
    let addresses: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| Refused(format!("the host {host} does not resolve")))?
        .collect();
    if addresses.is_empty() {
        return Err(Refused(format!("the host {host} does not resolve")));
    }
    if !allow_private && let Some(bad) = addresses.iter().find(|a| !is_public(a.ip())) {
        return Err(Refused(format!("resolves to {}, which is not a public address", bad.ip())));
    }
    Ok(Target { url: url.to_owned(), addresses })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_loopback_and_link_local_addresses_are_not_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "203.0.114.1", "2606:4700::1111"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    /// Issue 28, item 12: IPv6 forms that carry an IPv4 address are judged by it, and only
    /// global unicast outside IANA's special-purpose blocks is public.
    #[test]
    fn addresses_that_embed_private_ipv4_and_special_purpose_blocks_are_not_public() {
        for ip in [
            "64:ff9b::7f00:1",      // NAT64 of 127.0.0.1
            "64:ff9b::a9fe:a9fe",   // NAT64 of 169.254.169.254
            "64:ff9b:1::a00:1",     // local-use NAT64
            "2002:7f00:1::1",       // 6to4 of 127.0.0.1
            "2002:808:808::1",      // 6to4, a deprecated relay mechanism
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "::127.0.0.1",          // IPv4-compatible
            "::a9fe:a9fe",
            "::ffff:0:7f00:1",      // IPv4-translated
            "fec0::1",              // site-local
            "2001:2::1",            // benchmarking
            "3fff::1",              // documentation (RFC 9637)
            "192.0.0.8",            // IETF protocol assignments
            "192.88.99.1",          // 6to4 relay anycast
            "198.51.100.7",         // documentation
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["64:ff9b::808:808", "2a00:1450:4001::1", "2400:cb00::1", "::ffff:8.8.8.8", "1.1.1.1"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn only_https_to_public_hosts_unless_allowed() {
        assert_eq!(check("http://127.0.0.1:9/x", false).unwrap_err(), Refused("must be an https URL".into()));
        assert!(check("https://127.0.0.1:9/x", false).unwrap_err().0.contains("not a public address"));
        assert!(check("https://[::1]/x", false).is_err());
        assert!(check("ftp://example.com/", false).is_err());
        assert!(check("https://user:pw@127.0.0.1/", true).is_err());
        assert!(check("not a url", false).is_err());
        let allowed = check("http://127.0.0.1:9/hook", true).unwrap();
        assert_eq!(allowed.addresses, ["127.0.0.1:9".parse::<SocketAddr>().unwrap()]);
    }
}
