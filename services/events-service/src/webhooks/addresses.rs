//! Which addresses deliveries may reach. Unless private networks are
//! allowed, an endpoint must be on the public internet: a webhook is a
//! request the registrant makes the cluster send, and it must not reach
//! the cluster's own services, the cloud's metadata endpoint or anything
//! else on a private network.
//!
//! The check is made on the addresses a name resolves to, when connecting
//! (so a name that later resolves elsewhere is caught), and on addresses
//! written in the URL itself, which are never resolved.

use std::future::Future;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use hyper_util::client::legacy::connect::dns::Name;

/// Whether `ip` is on the public internet: not loopback, private,
/// link-local (the cloud metadata endpoint), carrier-grade NAT,
/// benchmarking, reserved, unique local, unspecified, broadcast or
/// multicast. An IPv6 address that carries an IPv4 one (mapped,
/// compatible, NAT64, 6to4) counts as that IPv4 address.
pub(crate) fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

/// The IPv4 address an IPv6 one stands for, if it stands for one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let octets = ip.octets();
    let four_at = |at: usize| Ipv4Addr::new(octets[at], octets[at + 1], octets[at + 2], octets[at + 3]);
    match ip.segments() {
        // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (compatible; :: and ::1
        // are themselves).
        [0, 0, 0, 0, 0, 0xffff, _, _] => Some(four_at(12)),
        [0, 0, 0, 0, 0, 0, high, _] if high != 0 => Some(four_at(12)),
        // 64:ff9b::a.b.c.d, NAT64's well-known prefix.
        [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(four_at(12)),
        // 2002:aabb:ccdd::, 6to4.
        [0x2002, ..] => Some(four_at(2)),
        _ => None,
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [first, second, ..] = ip.octets();
    let carrier_grade_nat = first == 100 && (64..128).contains(&second);
    let benchmarking = first == 198 && (18..20).contains(&second);
    let reserved = first >= 240;
    !(ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || first == 0
        || carrier_grade_nat
        || benchmarking
        || reserved)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    let unique_local = first & 0xfe00 == 0xfc00;
    let link_local = first & 0xffc0 == 0xfe80;
    !(ip.is_loopback() || ip.is_unspecified() || ip.is_multicast() || unique_local || link_local)
}

/// Why a delivery may not go to `host` when it is an address, if it may
/// not.
pub(crate) fn refuse_literal(host: &str, allow_private: bool) -> Option<String> {
    let ip: IpAddr = host.trim_start_matches('[').trim_end_matches(']').parse().ok()?;
    (!allow_private && !is_public(ip)).then(|| format!("{ip} is not a public address"))
}

/// The resolver of deliveries: the system's, keeping only public
/// addresses unless private networks are allowed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Resolver {
    pub allow_private: bool,
}

type Resolving = Pin<Box<dyn Future<Output = io::Result<std::vec::IntoIter<SocketAddr>>> + Send>>;

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = io::Error;
    type Future = Resolving;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| allow_private || is_public(addr.ip()))
                .collect();
            if allowed.is_empty() && !found.is_empty() {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!("{host} resolves only to addresses that are not public"),
                ));
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::10.0.0.1",
            "64:ff9b::a9fe:a9fe",
            "2002:a9fe:a9fe::1",
            "198.18.0.1",
            "240.0.0.1",
        ] {
            assert!(!is_public(private.parse().expect("an address")), "{private}");
        }
        for public in [
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "198.20.0.1",
            "2606:4700::1111",
            "::ffff:1.1.1.1",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert!(is_public(public.parse().expect("an address")), "{public}");
        }
    }

    #[test]
    fn a_literal_private_address_is_refused_unless_allowed() {
        assert!(refuse_literal("169.254.169.254", false).is_some());
        assert!(refuse_literal("[::1]", false).is_some());
        assert_eq!(refuse_literal("127.0.0.1", true), None);
        assert_eq!(refuse_literal("8.8.8.8", false), None);
        assert_eq!(refuse_literal("hooks.example.com", false), None);
    }

    #[tokio::test]
    async fn a_name_resolving_to_loopback_is_refused_unless_allowed() {
        use tower_service::Service as _;
        let name: Name = "localhost".parse().expect("a name");
        let refused = Resolver { allow_private: false }
            .call(name.clone())
            .await
            .expect_err("localhost is loopback");
        assert_eq!(refused.kind(), io::ErrorKind::PermissionDenied);
        let allowed: Vec<SocketAddr> = Resolver { allow_private: true }
            .call(name)
            .await
            .expect("allowed")
            .collect();
        assert!(allowed.iter().all(|addr| addr.ip().is_loopback()) && !allowed.is_empty());
    }
}
