//! Which addresses a download may connect to.
//!
//! Only globally routable unicast addresses are allowed. Everything that reaches this machine,
//! its networks or a cloud's metadata service is refused: loopback, private, shared (carrier-grade
//! NAT, where Alibaba's metadata service lives), link-local (AWS, GCP and Azure metadata at
//! 169.254.169.254), unspecified (`0.0.0.0` and `::` reach the local host on Linux), unique local
//! IPv6 (AWS's IPv6 metadata `fd00:ec2::254`), multicast, broadcast, reserved and documentation
//! ranges. IPv6 forms that carry an IPv4 address (mapped `::ffff:a.b.c.d`, compatible `::a.b.c.d`,
//! NAT64 `64:ff9b::/96`, 6to4 `2002::/16`) are judged by that IPv4 address; Teredo is refused.
//!
//! The check is on resolved addresses, so how a host is spelled (decimal `2130706433`, octal,
//! hex, a name that resolves to 127.0.0.1) does not matter: [`crate::ingest::FilterProxy`]
//! resolves every host itself, checks every address, and connects to the address it checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why an address is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Forbidden {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16.
    Private,
    /// 100.64.0.0/10 (carrier-grade NAT; cloud metadata on some providers).
    Shared,
    /// 169.254.0.0/16, fe80::/10 (cloud metadata services live here).
    LinkLocal,
    /// 0.0.0.0/8, :: (reach the local host).
    Unspecified,
    /// fc00::/7 (unique local IPv6), fec0::/10 (site-local).
    UniqueLocal,
    /// 224.0.0.0/4, ff00::/8, 255.255.255.255.
    Multicast,
    /// Documentation, benchmarking, protocol-assignment and reserved ranges.
    Reserved,
}

impl Forbidden {
    /// Words for messages ("a loopback address").
    pub fn describe(self) -> &'static str {
        match self {
            Forbidden::Loopback => "loopback",
            Forbidden::Private => "private network",
            Forbidden::Shared => "shared (carrier-grade NAT)",
            Forbidden::LinkLocal => "link-local (cloud metadata)",
            Forbidden::Unspecified => "unspecified (local host)",
            Forbidden::UniqueLocal => "unique local IPv6",
            Forbidden::Multicast => "multicast or broadcast",
            Forbidden::Reserved => "reserved",
        }
    }
}

impl std::fmt::Display for Forbidden {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why `ip` may not be reached, or `None` when it is a global unicast address.
pub fn classify(ip: IpAddr) -> Option<Forbidden> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<Forbidden> {
    let [a, b, c, _] = ip.octets();
    let f = match (a, b, c) {
        (0, _, _) => Forbidden::Unspecified,
        (10, _, _) => Forbidden::Private,
        (100, 64..=127, _) => Forbidden::Shared,
        (127, _, _) => Forbidden::Loopback,
        (169, 254, _) => Forbidden::LinkLocal,
        (172, 16..=31, _) => Forbidden::Private,
        (192, 168, _) => Forbidden::Private,
        // IETF protocol assignments, TEST-NET-1, 6to4 relay anycast, benchmarking, TEST-NET-2/3.
        (192, 0, 0) | (192, 0, 2) | (192, 88, 99) | (198, 18..=19, _) | (198, 51, 100) => {
            Forbidden::Reserved
        }
        (203, 0, 113) => Forbidden::Reserved,
        (224..=239, _, _) => Forbidden::Multicast,
        _ if ip.is_broadcast() => Forbidden::Multicast,
        (240..=255, _, _) => Forbidden::Reserved,
        _ => return None,
    };
    Some(f)
}

fn classify_v6(ip: Ipv6Addr) -> Option<Forbidden> {
    let seg = ip.segments();
    if ip.is_unspecified() {
        return Some(Forbidden::Unspecified);
    }
    if ip.is_loopback() {
        return Some(Forbidden::Loopback);
    }
    // IPv4-mapped ::ffff:a.b.c.d and IPv4-compatible ::a.b.c.d (deprecated, but some stacks still
    // route them to the IPv4 address).
    if seg[..5] == [0; 5] && (seg[5] == 0xffff || seg[5] == 0) {
        return classify_v4(embedded_v4(seg[6], seg[7]));
    }
    // IPv4-translated ::ffff:0:a.b.c.d (SIIT).
    if seg[..4] == [0; 4] && seg[4] == 0xffff && seg[5] == 0 {
        return classify_v4(embedded_v4(seg[6], seg[7]));
    }
    // NAT64 well-known prefix 64:ff9b::/96 and local-use 64:ff9b:1::/48: a NAT64 gateway turns
    // these into the embedded IPv4 address.
    if seg[0] == 0x64 && seg[1] == 0xff9b {
        if seg[2..6] == [0; 4] {
            return classify_v4(embedded_v4(seg[6], seg[7]));
        }
        if seg[2] == 1 {
            return Some(Forbidden::Reserved);
        }
    }
    // 6to4 2002:AABB:CCDD::/48 carries the IPv4 address AA.BB.CC.DD.
    if seg[0] == 0x2002 {
        return classify_v4(embedded_v4(seg[1], seg[2]));
    }
    let f = match seg[0] {
        0xfc00..=0xfdff => Forbidden::UniqueLocal,
        0xfe80..=0xfebf => Forbidden::LinkLocal,
        0xfec0..=0xfeff => Forbidden::UniqueLocal,
        0xff00..=0xffff => Forbidden::Multicast,
        // Teredo (2001:0::/32: the IPv4 address is obfuscated; refuse the whole prefix),
        // documentation 2001:db8::/32, ORCHID and benchmarking 2001:2::/48.
        0x2001 if matches!(seg[1], 0 | 0x0db8 | 0x0002 | 0x0010..=0x002f) => Forbidden::Reserved,
        // Documentation 3fff::/20.
        0x3fff if seg[1] <= 0x0fff => Forbidden::Reserved,
        // Discard-only 100::/64.
        0x0100 if seg[1..4] == [0; 3] => Forbidden::Reserved,
        // Everything outside 2000::/3 (global unicast) is unassigned or special.
        s if !(0x2000..=0x3fff).contains(&s) => Forbidden::Reserved,
        _ => return None,
    };
    Some(f)
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Which addresses a download may reach: global unicast always; loopback only with
/// `allow_loopback` (tests); and the exact socket addresses of `allow_exact` (tests that need
/// one local server to count as "the internet" while every other local port stays refused).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressPolicy {
    /// Allows loopback addresses (127/8, ::1, and their IPv4-mapped forms). For tests only
    /// (`INGEST_ALLOW_LOOPBACK`): it lets a URL reach every service on this machine.
    pub allow_loopback: bool,
    /// Exact `ip:port` pairs allowed whatever their range. For tests only; never read from the
    /// environment.
    pub allow_exact: Vec<SocketAddr>,
}

impl AddressPolicy {
    /// The production policy: global unicast addresses only.
    pub fn strict() -> Self {
        Self::default()
    }

    /// `Ok` when `addr` may be connected to, else why not.
    pub fn check(&self, addr: SocketAddr) -> Result<(), Forbidden> {
        if self.allow_exact.contains(&addr) {
            return Ok(());
        }
        match classify(addr.ip()) {
            None => Ok(()),
            Some(Forbidden::Loopback) if self.allow_loopback => Ok(()),
            Some(f) => Err(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Option<Forbidden> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn every_local_and_metadata_range_is_refused() {
        use Forbidden::*;
        let cases = [
            ("127.0.0.1", Loopback),
            ("127.255.255.254", Loopback),
            ("10.0.0.1", Private),
            ("10.255.255.255", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("169.254.0.1", LinkLocal),
            ("100.64.0.1", Shared),
            ("100.100.100.200", Shared),
            ("100.127.255.255", Shared),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Multicast),
            ("240.0.0.1", Reserved),
            ("192.0.2.10", Reserved),
            ("198.18.0.1", Reserved),
            ("203.0.113.7", Reserved),
            ("::1", Loopback),
            ("::", Unspecified),
            ("fc00::1", UniqueLocal),
            ("fd00:ec2::254", UniqueLocal),
            ("fdff:ffff::1", UniqueLocal),
            ("fe80::1", LinkLocal),
            ("febf::1", LinkLocal),
            ("fec0::1", UniqueLocal),
            ("ff02::1", Multicast),
            // IPv4 in IPv6 clothing.
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:7f00:1", Loopback),
            ("::ffff:10.1.2.3", Private),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:0.0.0.0", Unspecified),
            ("::127.0.0.1", Loopback),
            ("::10.0.0.1", Private),
            ("::ffff:0:127.0.0.1", Loopback),
            ("64:ff9b::127.0.0.1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("2002:7f00:0001::1", Loopback),
            ("2002:c0a8:0101::1", Private),
            ("2001:0:4136:e378:8000:63bf:3fff:fdd2", Reserved),
            ("2001:db8::1", Reserved),
            ("100::1", Reserved),
            ("4000::1", Reserved),
        ];
        for (ip, want) in cases {
            assert_eq!(v(ip), Some(want), "{ip}");
        }
    }

    #[test]
    fn global_unicast_is_allowed() {
        for ip in [
            "93.184.215.14",
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.0",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.255.255",
            "192.167.255.255",
            "11.0.0.1",
            "2606:4700:4700::1111",
            "2a00:1450:4001:80e::200e",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:0808:0808::1",
        ] {
            assert_eq!(v(ip), None, "{ip}");
        }
    }

    #[test]
    fn policy_allows_loopback_and_exact_addresses_only_when_told() {
        let lo: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:8080".parse().unwrap();
        let private: SocketAddr = "10.0.0.1:80".parse().unwrap();
        let strict = AddressPolicy::strict();
        assert_eq!(strict.check(lo), Err(Forbidden::Loopback));
        assert_eq!(strict.check(mapped), Err(Forbidden::Loopback));
        let loopback = AddressPolicy {
            allow_loopback: true,
            ..AddressPolicy::default()
        };
        assert_eq!(loopback.check(lo), Ok(()));
        assert_eq!(loopback.check(mapped), Ok(()));
        assert_eq!(loopback.check(private), Err(Forbidden::Private));
        let exact = AddressPolicy {
            allow_exact: vec![lo],
            ..AddressPolicy::default()
        };
        assert_eq!(exact.check(lo), Ok(()));
        assert_eq!(
            exact.check("127.0.0.1:8081".parse().unwrap()),
            Err(Forbidden::Loopback)
        );
        assert_eq!(
            exact.check("127.0.0.2:8080".parse().unwrap()),
            Err(Forbidden::Loopback)
        );
    }
}
