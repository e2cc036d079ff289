//! Mirror URLs split into scheme, host, port and path.
//!
//! The network check needs the host and port of every `Server =` line of `pacman.conf`, and
//! whether a server is a local directory (`file://`). That is a small, well-defined part of
//! URL syntax (RFC 3986's authority), so it is done here instead of pulling in a URL crate:
//! `scheme://[user[:password]@]host[:port][/path]`, with IPv6 literals in brackets. The
//! user information is dropped (it may hold a password and is never needed to probe a host).
//! Why not the `url` crate: docs/decisions.md, "pacman.conf and mirror URLs stay parsed by
//! hand".

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

/// Why a URL could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("{0:?} is not a URL (expected SCHEME://HOST/PATH)")]
    NoScheme(String),
    #[error("{url:?}: scheme {scheme:?} is not supported (http, https, ftp or file)")]
    UnknownScheme { url: String, scheme: String },
    #[error("{0:?} has no host")]
    NoHost(String),
    #[error("{0:?} has a port that is not a number from 1 to 65535")]
    BadPort(String),
    #[error("{0:?} has a bad IPv6 address (write it in brackets: http://[::1]:8080/)")]
    BadIpv6(String),
    #[error("{0:?} has a file URL with a host; write file:///path")]
    FileWithHost(String),
}

/// The host part of a URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Host {
    /// A name to resolve, lowercased (`mirror.example.org`, `localhost`).
    Name(String),
    /// An IPv4 or IPv6 literal (IPv6 without its brackets).
    Ip(IpAddr),
}

impl Host {
    /// Whether the host is this machine: `localhost` (and `*.localhost`, RFC 6761),
    /// 127.0.0.0/8, `::1`, or an IPv4-mapped loopback address.
    pub fn is_loopback(&self) -> bool {
        match self {
            Host::Name(n) => n == "localhost" || n.ends_with(".localhost"),
            Host::Ip(IpAddr::V4(a)) => a.is_loopback(),
            Host::Ip(IpAddr::V6(a)) => {
                a.is_loopback() || a.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
            }
        }
    }
}

impl fmt::Display for Host {
    /// As written in a URL: IPv6 in brackets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Name(n) => f.write_str(n),
            Host::Ip(IpAddr::V4(a)) => write!(f, "{a}"),
            Host::Ip(IpAddr::V6(a)) => write!(f, "[{a}]"),
        }
    }
}

/// A parsed mirror URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MirrorUrl {
    /// Lowercased: `http`, `https`, `ftp` or `file`.
    pub scheme: String,
    /// `None` for `file://` URLs.
    pub host: Option<Host>,
    /// The explicit port, or the scheme's default (http 80, https 443, ftp 21); `None` for
    /// `file://` URLs.
    pub port: Option<u16>,
    /// Everything after the authority, starting with `/` (or empty); query and fragment
    /// included as written.
    pub path: String,
}

impl MirrorUrl {
    /// Parses `url`. See the module documentation for what is accepted.
    pub fn parse(url: &str) -> Result<MirrorUrl, UrlError> {
        let Some((scheme, rest)) = url.split_once("://") else {
            return Err(UrlError::NoScheme(url.to_string()));
        };
        if scheme.is_empty()
            || !scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        {
            return Err(UrlError::NoScheme(url.to_string()));
        }
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "http" => Some(80),
            "https" => Some(443),
            "ftp" => Some(21),
            "file" => None,
            _ => {
                return Err(UrlError::UnknownScheme {
                    url: url.to_string(),
                    scheme,
                })
            }
        };
        let split = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        // Drop user information; the last `@` ends it (a password may contain `@`).
        let hostport = match authority.rfind('@') {
            Some(i) => &authority[i + 1..],
            None => authority,
        };
        if scheme == "file" {
            if !(hostport.is_empty() || hostport.eq_ignore_ascii_case("localhost")) {
                return Err(UrlError::FileWithHost(url.to_string()));
            }
            return Ok(MirrorUrl {
                scheme,
                host: None,
                port: None,
                path: path.to_string(),
            });
        }
        let (host, port_text) = if let Some(after) = hostport.strip_prefix('[') {
            let Some((inside, tail)) = after.split_once(']') else {
                return Err(UrlError::BadIpv6(url.to_string()));
            };
            // A zone (`%eth0`) cannot be probed portably; refuse it rather than guess.
            let addr: Ipv6Addr = inside
                .parse()
                .map_err(|_| UrlError::BadIpv6(url.to_string()))?;
            let port_text = match tail {
                "" => None,
                t => match t.strip_prefix(':') {
                    Some(p) => Some(p),
                    None => return Err(UrlError::BadIpv6(url.to_string())),
                },
            };
            (Host::Ip(IpAddr::V6(addr)), port_text)
        } else {
            let (h, p) = match hostport.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (hostport, None),
            };
            if h.contains(':') {
                return Err(UrlError::BadIpv6(url.to_string()));
            }
            if h.is_empty() {
                return Err(UrlError::NoHost(url.to_string()));
            }
            let host = match h.parse::<std::net::Ipv4Addr>() {
                Ok(a) => Host::Ip(IpAddr::V4(a)),
                Err(_) => Host::Name(h.to_ascii_lowercase()),
            };
            (host, p)
        };
        let port = match port_text {
            // `host:` with nothing after the colon means the default port (RFC 3986).
            None | Some("") => default_port,
            Some(p) => match p.parse::<u16>() {
                Ok(n) if n > 0 && p.chars().all(|c| c.is_ascii_digit()) => Some(n),
                _ => return Err(UrlError::BadPort(url.to_string())),
            },
        };
        Ok(MirrorUrl {
            scheme,
            host: Some(host),
            port,
            path: path.to_string(),
        })
    }

    /// Whether this is a `file://` URL (a directory on this machine).
    pub fn is_file(&self) -> bool {
        self.scheme == "file"
    }

    /// Host and port to connect to; `None` for `file://` URLs.
    pub fn host_port(&self) -> Option<(&Host, u16)> {
        match (&self.host, self.port) {
            (Some(h), Some(p)) => Some((h, p)),
            _ => None,
        }
    }
}

impl fmt::Display for MirrorUrl {
    /// The URL without user information, with the port made explicit.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.host_port() {
            Some((h, p)) => write!(f, "{}://{h}:{p}{}", self.scheme, self.path),
            None => write!(f, "{}://{}", self.scheme, self.path),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::net::Ipv4Addr;

    fn name(s: &str) -> Option<Host> {
        Some(Host::Name(s.to_string()))
    }

    #[test]
    fn default_ports() {
        let u = MirrorUrl::parse("https://geo.mirror.pkgbuild.com/$repo/os/$arch").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, name("geo.mirror.pkgbuild.com"));
        assert_eq!(u.port, Some(443));
        assert_eq!(u.path, "/$repo/os/$arch");
        assert_eq!(MirrorUrl::parse("http://a.b/").unwrap().port, Some(80));
        assert_eq!(
            MirrorUrl::parse("ftp://ftp.example.com/foobar")
                .unwrap()
                .port,
            Some(21)
        );
        assert_eq!(
            MirrorUrl::parse("HTTP://Mirror.Example.ORG").unwrap().port,
            Some(80)
        );
    }

    #[test]
    fn explicit_port_host_case_and_userinfo() {
        let u = MirrorUrl::parse("HTTP://user:p@ss@Mirror.Example.ORG:8080/arch?x=1").unwrap();
        assert_eq!(u.scheme, "http");
        assert_eq!(u.host, name("mirror.example.org"));
        assert_eq!(u.port, Some(8080));
        assert_eq!(u.path, "/arch?x=1");
        assert!(!u.to_string().contains("p@ss"));
        assert_eq!(u.to_string(), "http://mirror.example.org:8080/arch?x=1");
        let u = MirrorUrl::parse("http://host:/x").unwrap();
        assert_eq!(u.port, Some(80));
    }

    #[test]
    fn ip_literals() {
        let u = MirrorUrl::parse("http://127.0.0.1:8080/repo").unwrap();
        assert_eq!(u.host, Some(Host::Ip(IpAddr::V4(Ipv4Addr::LOCALHOST))));
        let u = MirrorUrl::parse("http://[::1]:9000/x").unwrap();
        assert_eq!(u.host, Some(Host::Ip(IpAddr::V6(Ipv6Addr::LOCALHOST))));
        assert_eq!(u.port, Some(9000));
        let u = MirrorUrl::parse("https://[2001:db8::1]/arch").unwrap();
        assert_eq!(u.port, Some(443));
        assert_eq!(u.to_string(), "https://[2001:db8::1]:443/arch");
        assert!(matches!(
            MirrorUrl::parse("http://[::1/x"),
            Err(UrlError::BadIpv6(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("http://[nothex]/x"),
            Err(UrlError::BadIpv6(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("http://::1/x"),
            Err(UrlError::BadIpv6(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("http://[::1]x/"),
            Err(UrlError::BadIpv6(_))
        ));
    }

    #[test]
    fn file_urls_have_no_host() {
        let u = MirrorUrl::parse("file:///home/custompkgs").unwrap();
        assert!(u.is_file());
        assert_eq!(u.host, None);
        assert_eq!(u.port, None);
        assert_eq!(u.path, "/home/custompkgs");
        assert_eq!(u.host_port(), None);
        assert!(MirrorUrl::parse("file://localhost/srv/repo")
            .unwrap()
            .is_file());
        assert!(matches!(
            MirrorUrl::parse("file://server/srv"),
            Err(UrlError::FileWithHost(_))
        ));
    }

    #[test]
    fn refusals() {
        assert!(matches!(
            MirrorUrl::parse("mirror.example.org/x"),
            Err(UrlError::NoScheme(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("://x"),
            Err(UrlError::NoScheme(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("rsync://x/y"),
            Err(UrlError::UnknownScheme { .. })
        ));
        assert!(matches!(
            MirrorUrl::parse("http:///x"),
            Err(UrlError::NoHost(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("http://h:0/"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("http://h:70000/"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("http://h:+80/"),
            Err(UrlError::BadPort(_))
        ));
        assert!(matches!(
            MirrorUrl::parse("http://h:x/"),
            Err(UrlError::BadPort(_))
        ));
    }

    #[test]
    fn loopback_hosts() {
        for u in [
            "http://localhost/x",
            "http://LOCALHOST:8080",
            "http://mirror.localhost/",
            "http://127.0.0.1/",
            "http://127.8.9.10:81/",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            let m = MirrorUrl::parse(u).unwrap();
            assert!(m.host.as_ref().unwrap().is_loopback(), "{u}");
        }
        for u in [
            "http://10.0.0.1/",
            "http://localhost.example.org/",
            "http://[::2]/",
        ] {
            let m = MirrorUrl::parse(u).unwrap();
            assert!(!m.host.as_ref().unwrap().is_loopback(), "{u}");
        }
    }

    proptest! {
        /// Generated URLs parse back into their parts.
        #[test]
        fn prop_parts(
            scheme in prop::sample::select(vec!["http", "https", "ftp"]),
            host in "[a-z][a-z0-9-]{0,10}(\\.[a-z][a-z0-9-]{0,10}){0,3}",
            port in proptest::option::of(1u16..),
            path in "(/[a-zA-Z0-9$._-]{0,8}){0,4}",
        ) {
            let url = match port {
                Some(p) => format!("{scheme}://{host}:{p}{path}"),
                None => format!("{scheme}://{host}{path}"),
            };
            let u = MirrorUrl::parse(&url).unwrap();
            let default = match scheme { "http" => 80, "https" => 443, _ => 21 };
            prop_assert_eq!(u.scheme, scheme);
            prop_assert_eq!(u.host, Some(Host::Name(host)));
            prop_assert_eq!(u.port, Some(port.unwrap_or(default)));
            prop_assert_eq!(u.path, path);
        }

        /// Arbitrary text never panics the parser.
        #[test]
        fn prop_no_panic(s in any::<String>()) {
            let _ = MirrorUrl::parse(&s);
        }
    }
}
