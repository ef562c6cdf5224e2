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

/// Whether `ip` is on the public Internet: global unicast outside IANA's special-purpose
/// address registries (private, loopback, link-local, shared, documentation, benchmarking,
/// protocol assignments, 6to4, Teredo …). An IPv6 address that carries an IPv4 one (mapped
/// `::ffff:a.b.c.d`, or NAT64's `64:ff9b::a.b.c.d`) is judged by the IPv4 address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => public_v4(v4),
        IpAddr::V6(v6) => match (v6.to_ipv4_mapped(), nat64(v6)) {
            (Some(v4), _) | (None, Some(v4)) => public_v4(v4),
            (None, None) => public_v6(v6),
        },
    }
}

/// The IPv4 address in NAT64's well-known prefix `64:ff9b::/96` (RFC 6052).
fn nat64(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| Ipv4Addr::from((u32::from(s[6]) << 16) | u32::from(s[7])))
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], bits: u32) -> bool {
    let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn public_v4(ip: Ipv4Addr) -> bool {
    // IANA IPv4 Special-Purpose Address Registry, and multicast and the reserved 240/4.
    const SPECIAL: [([u8; 4], u32); 19] = [
        ([0, 0, 0, 0], 8),
        ([10, 0, 0, 0], 8),
        ([100, 64, 0, 0], 10),
        ([127, 0, 0, 0], 8),
        ([169, 254, 0, 0], 16),
        ([172, 16, 0, 0], 12),
        ([192, 0, 0, 0], 24),
        ([192, 0, 2, 0], 24),
        ([192, 31, 196, 0], 24),
        ([192, 52, 193, 0], 24),
        ([192, 88, 99, 0], 24),
        ([192, 168, 0, 0], 16),
        ([192, 175, 48, 0], 24),
        ([198, 18, 0, 0], 15),
        ([198, 51, 100, 0], 24),
        ([203, 0, 113, 0], 24),
        ([224, 0, 0, 0], 4),
        ([240, 0, 0, 0], 4),
        ([255, 255, 255, 255], 32),
    ];
    !SPECIAL.iter().any(|(net, bits)| in_v4(ip, *net, *bits))
}

fn public_v6(ip: Ipv6Addr) -> bool {
    // Global unicast is 2000::/3; within it, IANA's IPv6 Special-Purpose Address Registry:
    // IETF protocol assignments 2001::/23 (Teredo 2001::/32, benchmarking, ORCHID …),
    // documentation 2001:db8::/32 and 3fff::/20, 6to4 2002::/16, AS112 2620:4f:8000::/48.
    const SPECIAL: [(u128, u32); 5] = [
        (0x2001_0000 << 96, 23),
        (0x2001_0db8 << 96, 32),
        (0x2002 << 112, 16),
        (0x2620_004f_8000 << 80, 48),
        (0x3fff << 112, 20),
    ];
    let bits = u128::from(ip);
    let within = |net: u128, len: u32| (bits ^ net) >> (128 - len) == 0;
    within(0x2000 << 112, 3) && !SPECIAL.iter().any(|(net, len)| within(*net, *len))
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
            "64:ff9b::7f00:1",                      // NAT64 of 127.0.0.1
            "64:ff9b::a9fe:a9fe",                   // NAT64 of 169.254.169.254
            "64:ff9b:1::a00:1",                     // local-use NAT64
            "2002:7f00:1::1",                       // 6to4 of 127.0.0.1
            "2002:808:808::1",                      // 6to4, a deprecated relay mechanism
            "2001:0:4136:e378:8000:63bf:3fff:fdd2", // Teredo
            "::127.0.0.1",                          // IPv4-compatible
            "::a9fe:a9fe",
            "::ffff:0:7f00:1", // IPv4-translated
            "fec0::1",         // site-local
            "2001:2::1",       // benchmarking
            "3fff::1",         // documentation (RFC 9637)
            "192.0.0.8",       // IETF protocol assignments
            "192.88.99.1",     // 6to4 relay anycast
            "198.51.100.7",    // documentation
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
