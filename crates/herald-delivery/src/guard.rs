//! Outbound safety: where Herald may send.
//!
//! Destinations that resolve to private, loopback, link-local, multicast or unspecified
//! addresses are refused, unless the operator allows them by CIDR. The check runs on the
//! addresses a name *resolves to*, at connect time (by the [`client`](crate::client)), so a
//! public name pointing at 127.0.0.1 is refused too; IP literals — in whatever form the URL
//! spelled them (decimal, octal, IPv4-mapped IPv6), which the URL parser has already normalised
//! — are checked before the request is made.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;

/// Which destinations are allowed.
#[derive(Clone, Debug, Default)]
pub struct DestinationPolicy {
    /// Networks allowed even though they are not public (e.g. `127.0.0.0/8` in tests).
    pub allowed: Vec<IpNet>,
}

/// A destination Herald will not send to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("destination {ip} is {why}; allow its network explicitly to send there")]
pub struct Refused {
    pub ip: IpAddr,
    pub why: &'static str,
}

/// A name that did not resolve.
#[derive(Debug, thiserror::Error)]
#[error("could not resolve {name}: {source}")]
pub struct DnsFailure {
    pub name: String,
    #[source]
    pub source: std::io::Error,
}

impl DestinationPolicy {
    pub fn check(&self, ip: IpAddr) -> Result<(), Refused> {
        let ip = canonical(ip);
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return Ok(());
        }
        match non_public(ip) {
            Some(why) => Err(Refused { ip, why }),
            None => Ok(()),
        }
    }
}

/// IPv4-mapped and IPv4-compatible IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn non_public(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => non_public_v6(v6),
    }
}

fn non_public_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    if ip.is_unspecified() || a == 0 {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("private")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if (a == 192 && b == 0 && ip.octets()[2] == 0) || (a == 198 && (18..20).contains(&b)) {
        Some("reserved")
    } else if ip.is_multicast() || ip.is_broadcast() || a >= 240 {
        Some("multicast or reserved")
    } else {
        None
    }
}

fn non_public_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if (first & 0xfe00) == 0xfc00 {
        Some("private")
    } else if (first & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (first & 0xffc0) == 0xfec0 {
        Some("site-local")
    } else if ip.is_multicast() {
        Some("multicast or reserved")
    } else if let Some(v4) = embedded_v4(ip) {
        // IPv4-compatible (::a.b.c.d), NAT64 (64:ff9b::/96, 64:ff9b:1::/48) and 6to4
        // (2002::/16) addresses reach the IPv4 address they carry.
        non_public_v4(v4)
    } else {
        None
    }
}

fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let seg = ip.segments();
    let octets = ip.octets();
    let last32 = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if seg[0] == 0x0064 && seg[1] == 0xff9b {
        Some(last32)
    } else if seg[0] == 0x2002 {
        Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]))
    } else {
        ip.to_ipv4()
    }
}

/// A host that is an IP literal: its address, if the policy allows it. `None` for a name,
/// which is judged by the addresses it resolves to.
pub fn check_literal<S>(
    policy: &DestinationPolicy,
    host: &url::Host<S>,
) -> Result<Option<IpAddr>, Refused> {
    let ip = match host {
        url::Host::Ipv4(ip) => IpAddr::V4(*ip),
        url::Host::Ipv6(ip) => IpAddr::V6(*ip),
        url::Host::Domain(_) => return Ok(None),
    };
    policy.check(ip).map(|()| Some(ip))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(url: &str) -> bool {
        let url = url::Url::parse(url).unwrap();
        check_literal(&DestinationPolicy::default(), &url.host().unwrap()).is_err()
    }

    #[test]
    fn every_spelling_of_a_private_address_is_refused() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.0.0.1/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://10.1.2.3/",
            "http://172.16.0.1/",
            "http://192.168.1.1/",
            "http://169.254.169.254/",
            "http://0.0.0.0/",
            "http://[::]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://224.0.0.1/",
            "http://100.64.0.1/",
            "http://[64:ff9b::a00:5]/",
            "http://[64:ff9b:1::a00:5]/",
            "http://[2002:a00:5::1]/",
            "http://[fec0::1]/",
            "http://198.18.0.1/",
            "http://192.0.0.1/",
        ] {
            assert!(refused(url), "{url} should be refused");
        }
        for url in [
            "http://93.184.216.34/",
            "http://[2606:2800:220:1::1]/",
            "https://example.com/",
        ] {
            assert!(!refused(url), "{url} should be allowed");
        }
    }

    #[test]
    fn allowed_networks_are_let_through() {
        let policy = DestinationPolicy {
            allowed: vec!["127.0.0.0/8".parse().unwrap()],
        };
        assert!(policy.check("127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("::ffff:127.0.0.1".parse().unwrap()).is_ok());
        assert!(policy.check("10.0.0.1".parse().unwrap()).is_err());
    }
}
