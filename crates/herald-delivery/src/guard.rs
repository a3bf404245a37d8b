//! Outbound safety: where Herald may send.
//!
//! Destinations that resolve to private, loopback, link-local, multicast or unspecified
//! addresses are refused, unless the operator allows them by CIDR. The check runs on the
//! addresses a name *resolves to*, at connect time (by the [`client`](crate::client)), so a
//! public name pointing at 127.0.0.1 is refused too; IP literals — in whatever form the URL
//! spelled them (decimal, octal, IPv4-mapped IPv6), which the URL parser has already normalised
//! — are checked before the request is made. An IPv6 address that carries an IPv4 address
//! (mapped, translated, compatible, NAT64, 6to4, Teredo) is judged as that IPv4 address, and
//! IPv6's other special-purpose blocks are refused.

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

/// IPv4-mapped IPv6 addresses are the IPv4 address they carry (the kernel connects to it), so
/// the operator's allowed IPv4 networks apply to them. Other embeddings reach their IPv4 address
/// through a translator or a tunnel: they are refused like it, but an allowed IPv4 network does
/// not let them through (see [`embedding`]).
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
    let seg = ip.segments();
    if ip.is_unspecified() {
        Some("unspecified")
    } else if ip.is_loopback() {
        Some("loopback")
    } else if (seg[0] & 0xfe00) == 0xfc00 {
        Some("private")
    } else if (seg[0] & 0xffc0) == 0xfe80 {
        Some("link-local")
    } else if (seg[0] & 0xffc0) == 0xfec0 {
        Some("site-local")
    } else if ip.is_multicast() {
        Some("multicast or reserved")
    } else {
        match embedding(ip) {
            // Such an address reaches the IPv4 address it carries (through the kernel, a
            // NAT64 or 6to4 gateway, or a Teredo relay): judge it as that address, so that
            // no spelling of 10.0.0.1 or 127.0.0.1 gets through.
            Embedding::V4(v4) => non_public_v4(v4),
            Embedding::Reserved(why) => Some(why),
            Embedding::None => None,
        }
    }
}

/// What an IPv6 address says about where it leads, beyond its own prefix.
#[derive(Debug, PartialEq, Eq)]
enum Embedding {
    /// It carries an IPv4 address and leads there.
    V4(Ipv4Addr),
    /// A special-purpose block that is not a public destination (IANA's IPv6 special-purpose
    /// registry), or one whose IPv4 address cannot be known from outside.
    Reserved(&'static str),
    /// An ordinary global address.
    None,
}

/// Every IPv6 block that embeds an IPv4 address or is special-purpose. Blocks are tested most
/// specific first; `::/8` is IETF-reserved apart from the embeddings in it, so an address there
/// that none of them names is refused rather than passed.
fn embedding(ip: Ipv6Addr) -> Embedding {
    let seg = ip.segments();
    let o = ip.octets();
    let last32 = Ipv4Addr::new(o[12], o[13], o[14], o[15]);
    match seg {
        // IPv4-mapped ::ffff:a.b.c.d (also made canonical before the allow-list is checked).
        [0, 0, 0, 0, 0, 0xffff, _, _] => Embedding::V4(last32),
        // IPv4-translated ::ffff:0:a.b.c.d (RFC 2765 / SIIT).
        [0, 0, 0, 0, 0xffff, 0, _, _] => Embedding::V4(last32),
        // IPv4-compatible ::a.b.c.d (deprecated; :: and ::1 are judged above).
        [0, 0, 0, 0, 0, 0, _, _] => Embedding::V4(last32),
        // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052): the IPv4 address is the last 32 bits.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Embedding::V4(last32),
        // Local-use NAT64 64:ff9b:1::/48 (RFC 8215): where its IPv4 address sits depends on the
        // prefix length the local translator uses (RFC 6052 allows /48 to /96), so nothing here
        // can say which IPv4 host it reaches. Refused; an operator running such a translator
        // allows the prefix explicitly.
        [0x64, 0xff9b, 1, ..] => Embedding::Reserved("local-use NAT64 (RFC 8215)"),
        // The rest of ::/8 (including the rest of 64:ff9b::/32) is reserved by the IETF.
        [s0, ..] if s0 <= 0x00ff => Embedding::Reserved("reserved"),
        // Discard-only 100::/64 (RFC 6666).
        [0x100, 0, 0, 0, ..] => Embedding::Reserved("discard-only"),
        // Teredo 2001::/32 (RFC 4380): the client's IPv4 address is the last 32 bits, inverted;
        // a relay forwards there.
        [0x2001, 0, ..] => Embedding::V4(Ipv4Addr::from(!u32::from(last32))),
        // Documentation 2001:db8::/32 and 3fff::/20 (RFC 3849, RFC 9637).
        [0x2001, 0xdb8, ..] => Embedding::Reserved("documentation"),
        [0x3fff, s1, ..] if s1 < 0x1000 => Embedding::Reserved("documentation"),
        // The rest of 2001::/23 is IETF protocol assignments (benchmarking, ORCHID, AMT, ...),
        // none of them a webhook receiver.
        [0x2001, s1, ..] if s1 < 0x0200 => Embedding::Reserved("reserved"),
        // 6to4 2002::/16 (RFC 3056): the IPv4 address is bits 16-47.
        [0x2002, ..] => Embedding::V4(Ipv4Addr::new(o[2], o[3], o[4], o[5])),
        _ => Embedding::None,
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

    fn why(ip: &str) -> Option<&'static str> {
        DestinationPolicy::default()
            .check(ip.parse().unwrap())
            .err()
            .map(|r| r.why)
    }

    #[test]
    fn ipv4_translated_addresses_are_judged_as_the_ipv4_inside() {
        // ::ffff:0:a.b.c.d (RFC 2765).
        assert_eq!(why("::ffff:0:127.0.0.1"), Some("loopback"));
        assert_eq!(why("::ffff:0:10.1.2.3"), Some("private"));
        assert_eq!(why("::ffff:0:169.254.169.254"), Some("link-local"));
        assert_eq!(why("::ffff:0:93.184.216.34"), None);
        assert!(refused("http://[::ffff:0:7f00:1]/"));
    }

    #[test]
    fn ipv4_compatible_addresses_are_judged_as_the_ipv4_inside() {
        assert_eq!(why("::127.0.0.2"), Some("loopback"));
        assert_eq!(why("::10.0.0.1"), Some("private"));
        assert_eq!(why("::192.168.0.1"), Some("private"));
        assert_eq!(why("::93.184.216.34"), None);
    }

    #[test]
    fn nat64_well_known_prefix_is_judged_as_the_ipv4_inside() {
        assert_eq!(why("64:ff9b::127.0.0.1"), Some("loopback"));
        assert_eq!(why("64:ff9b::10.0.0.5"), Some("private"));
        assert_eq!(why("64:ff9b::93.184.216.34"), None);
        // Outside the /96 the well-known prefix is defined for: reserved.
        assert_eq!(why("64:ff9b:0:0:1::5db8:d822"), Some("reserved"));
    }

    #[test]
    fn local_use_nat64_is_refused_whatever_it_seems_to_carry() {
        // Its layout is the local translator's: 93.184.216.34 in the last 32 bits may well be
        // a private address at another prefix length.
        assert_eq!(
            why("64:ff9b:1::93.184.216.34"),
            Some("local-use NAT64 (RFC 8215)")
        );
        assert_eq!(why("64:ff9b:1:a00:5::"), Some("local-use NAT64 (RFC 8215)"));
        let allowed = DestinationPolicy {
            allowed: vec!["64:ff9b:1::/48".parse().unwrap()],
        };
        assert!(allowed.check("64:ff9b:1::a00:5".parse().unwrap()).is_ok());
    }

    #[test]
    fn six_to_four_is_judged_as_the_ipv4_inside() {
        assert_eq!(why("2002:7f00:1::1"), Some("loopback"));
        assert_eq!(why("2002:a00:5::1"), Some("private"));
        assert_eq!(why("2002:c0a8:101::"), Some("private"));
        assert_eq!(why("2002:5db8:d822::1"), None);
    }

    #[test]
    fn teredo_is_judged_as_its_client_ipv4_which_it_carries_inverted() {
        // Server 65.54.227.120, client !0x7f000001 = 127.0.0.1.
        assert_eq!(
            why("2001:0:4136:e378:8000:63bf:80ff:fffe"),
            Some("loopback")
        );
        // Client 10.0.0.1 (inverted: f5ff:fffe).
        assert_eq!(why("2001:0:4136:e378::f5ff:fffe"), Some("private"));
        // Client 93.184.216.34 (inverted: a247:27dd).
        assert_eq!(why("2001:0:4136:e378::a247:27dd"), None);
    }

    #[test]
    fn other_special_purpose_blocks_are_refused() {
        for (ip, expected) in [
            ("::2:0:0:1", "reserved"),
            ("ff:1::1", "reserved"),
            ("100::1", "discard-only"),
            ("2001:db8::1", "documentation"),
            ("3fff::1", "documentation"),
            ("2001:2::1", "reserved"),
            ("2001:10::1", "reserved"),
        ] {
            assert_eq!(why(ip), Some(expected), "{ip}");
        }
        for ip in [
            "2606:2800:220:1::1",
            "2a00:1450:4001::1",
            "2001:4860::8888",
            "100:0:0:1::1",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }

    #[test]
    fn an_allowed_ipv4_network_does_not_let_a_tunnelled_spelling_through() {
        let policy = DestinationPolicy {
            allowed: vec!["10.0.0.0/8".parse().unwrap()],
        };
        assert!(policy.check("::ffff:10.0.0.1".parse().unwrap()).is_ok());
        for ip in ["::ffff:0:10.0.0.1", "64:ff9b::10.0.0.1", "2002:a00:1::1"] {
            assert!(policy.check(ip.parse().unwrap()).is_err(), "{ip}");
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
