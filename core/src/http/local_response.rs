//! Small responses the balancer answers itself, without an upstream: a redirect to HTTPS
//! (`308 Permanent Redirect` with its `Location`) and a short body of a given type (an ACME
//! HTTP-01 key authorization).

use std::fmt::Write as _;

use bytes::BytesMut;

use super::error_response::reason_phrase;
use super::forward::{Persistence, StrSink};

/// The `Location` of a request for `host` (the Host header or the absolute-form authority,
/// with or without a port) and `origin_form` (path and query) on the HTTPS listener at
/// `https_port`: `https://host[:port]/path?query`, the port left out when it is 443. `None`
/// when `host` is not a plain host name or bracketed IPv6 address (nothing is redirected to
/// a name the proxy would have to make safe first).
pub fn https_location(host: &[u8], origin_form: &[u8], https_port: u16) -> Option<Vec<u8>> {
    let name = strip_port(host)?;
    let name_ok = if name.starts_with(b"[") {
        name.len() > 2
            && name.ends_with(b"]")
            && name[1..name.len() - 1]
                .iter()
                .all(|&b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
    } else {
        !name.is_empty()
            && name
                .iter()
                .all(|&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_')
    };
    if !name_ok {
        return None;
    }
    let target: &[u8] = if origin_form.starts_with(b"/") {
        origin_form
    } else {
        b"/"
    };
    if target.iter().any(|&b| b <= b' ' || b == 0x7f) {
        return None;
    }
    let mut location = Vec::with_capacity(16 + name.len() + target.len());
    location.extend_from_slice(b"https://");
    location.extend_from_slice(name);
    if https_port != 443 {
        location.extend_from_slice(format!(":{https_port}").as_bytes());
    }
    location.extend_from_slice(target);
    Some(location)
}

/// `host` without its `:port`.
fn strip_port(host: &[u8]) -> Option<&[u8]> {
    if host.starts_with(b"[") {
        let end = host.iter().position(|&b| b == b']')?;
        let rest = &host[end + 1..];
        return (rest.is_empty() || rest.starts_with(b":")).then_some(&host[..=end]);
    }
    Some(match host.iter().position(|&b| b == b':') {
        Some(colon) => &host[..colon],
        None => host,
    })
}

/// Appends `308 Permanent Redirect` to `location` (from [`https_location`]), no body.
pub fn write_redirect(out: &mut BytesMut, location: &[u8], persistence: Persistence) {
    out.reserve(96 + location.len());
    out.extend_from_slice(b"HTTP/1.1 308 Permanent Redirect\r\nLocation: ");
    out.extend_from_slice(location);
    out.extend_from_slice(b"\r\nContent-Length: 0\r\n");
    finish_head(out, persistence);
}

/// Appends a `status` response with `body` of `content_type`; for a HEAD request
/// (`head_only`) the same head without the body.
pub fn write_body_response(
    out: &mut BytesMut,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
    persistence: Persistence,
) {
    out.reserve(112 + content_type.len() + body.len());
    let _ = write!(
        StrSink(out),
        "HTTP/1.1 {status} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n",
        reason_phrase(status),
        body.len()
    );
    finish_head(out, persistence);
    if !head_only {
        out.extend_from_slice(body);
    }
}

fn finish_head(out: &mut BytesMut, persistence: Persistence) {
    match persistence {
        Persistence::Close => out.extend_from_slice(b"Connection: close\r\n"),
        Persistence::KeepAlive => out.extend_from_slice(b"Connection: keep-alive\r\n"),
        Persistence::Persistent => {}
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn location(host: &str, target: &str, port: u16) -> Option<String> {
        https_location(host.as_bytes(), target.as_bytes(), port)
            .map(|l| String::from_utf8(l).unwrap())
    }

    #[test]
    fn the_location_keeps_host_path_and_query_and_names_the_https_port() {
        assert_eq!(
            location("shop.test:8080", "/a/b?c=d", 8443).as_deref(),
            Some("https://shop.test:8443/a/b?c=d")
        );
        assert_eq!(
            location("shop.test", "/", 443).as_deref(),
            Some("https://shop.test/")
        );
        assert_eq!(
            location("[::1]:80", "/x", 443).as_deref(),
            Some("https://[::1]/x")
        );
        assert_eq!(
            location("shop.test", "*", 443).as_deref(),
            Some("https://shop.test/")
        );
    }

    #[test]
    fn odd_hosts_are_not_redirected() {
        for host in ["", ":80", "a b", "a/b", "[::1", "[zz]", "a@b.test"] {
            assert_eq!(location(host, "/", 443), None, "{host:?}");
        }
    }

    #[test]
    fn responses_say_what_becomes_of_the_connection() {
        let mut out = BytesMut::new();
        write_redirect(&mut out, b"https://a.test/", Persistence::Close);
        assert_eq!(
            &out[..],
            b"HTTP/1.1 308 Permanent Redirect\r\nLocation: https://a.test/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let mut out = BytesMut::new();
        write_body_response(
            &mut out,
            200,
            "text/plain",
            b"tok.thumb",
            false,
            Persistence::Persistent,
        );
        assert!(
            out.ends_with(b"Content-Length: 9\r\n\r\ntok.thumb"),
            "{out:?}"
        );
        let mut out = BytesMut::new();
        write_body_response(
            &mut out,
            200,
            "text/plain",
            b"tok.thumb",
            true,
            Persistence::KeepAlive,
        );
        assert!(out.ends_with(b"Connection: keep-alive\r\n\r\n"), "{out:?}");
    }
}
