//! The HELLO payload: version, worker, agent id, token and routes (docs/PROTOCOL.md §3).

use bytes::{Buf, BufMut, BytesMut};

use super::error::ProtocolError;
use super::frame::{kind, Hello, StreamId};

/// Value of the hello's worker field meaning "any worker".
const ANY_WORKER: u16 = u16::MAX;

fn short(s: &str) -> &[u8] {
    let bytes = s.as_bytes();
    &bytes[..bytes.len().min(usize::from(u16::MAX))]
}

pub(crate) fn hello_payload_len(hello: &Hello) -> usize {
    let routes = hello.routes.iter().take(usize::from(u16::MAX));
    2 + 2
        + 2
        + short(&hello.agent_id).len()
        + 2
        + short(&hello.token).len()
        + 2
        + routes.map(|r| 2 + short(r).len()).sum::<usize>()
}

pub(crate) fn encode_hello(hello: &Hello, out: &mut BytesMut) {
    let len = hello_payload_len(hello);
    super::codec::put_header(out, len, kind::HELLO, 0, StreamId::CONNECTION);
    out.reserve(len);
    out.put_u16(hello.version);
    out.put_u16(hello.worker.unwrap_or(ANY_WORKER));
    put_string(out, &hello.agent_id);
    put_string(out, &hello.token);
    let routes = hello.routes.len().min(usize::from(u16::MAX));
    out.put_u16(routes as u16);
    for route in &hello.routes[..routes] {
        put_string(out, route);
    }
}

fn put_string(out: &mut BytesMut, s: &str) {
    let bytes = short(s);
    out.put_u16(bytes.len() as u16);
    out.put_slice(bytes);
}

/// Parses a HELLO payload; a route count above `max_routes` is [`ProtocolError::TooManyRoutes`],
/// found before anything is allocated for the routes.
pub(crate) fn parse_hello(mut payload: &[u8], max_routes: u16) -> Result<Hello, ProtocolError> {
    let version = take_u16(&mut payload)?;
    let worker = match take_u16(&mut payload)? {
        ANY_WORKER => None,
        index => Some(index),
    };
    let agent_id = take_string(&mut payload)?;
    let token = take_string(&mut payload)?;
    let count = take_u16(&mut payload)?;
    if count > max_routes {
        return Err(ProtocolError::TooManyRoutes {
            count,
            max: max_routes,
        });
    }
    let mut routes = Vec::with_capacity(usize::from(count).min(payload.len() / 2));
    for _ in 0..count {
        routes.push(take_string(&mut payload)?);
    }
    if !payload.is_empty() {
        return Err(hello_error("trailing bytes"));
    }
    Ok(Hello {
        version,
        agent_id,
        token,
        routes,
        worker,
    })
}

const fn hello_error(reason: &'static str) -> ProtocolError {
    ProtocolError::Malformed {
        kind: "HELLO",
        reason,
    }
}

fn take_u16(payload: &mut &[u8]) -> Result<u16, ProtocolError> {
    if payload.len() < 2 {
        return Err(hello_error("truncated"));
    }
    Ok(payload.get_u16())
}

fn take_string(payload: &mut &[u8]) -> Result<String, ProtocolError> {
    let len = usize::from(take_u16(payload)?);
    if payload.len() < len {
        return Err(hello_error("string runs past the payload"));
    }
    let (bytes, rest) = payload.split_at(len);
    *payload = rest;
    std::str::from_utf8(bytes)
        .map(str::to_owned)
        .map_err(|_| hello_error("string is not UTF-8"))
}
