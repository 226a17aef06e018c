//! HTTP/1.1 heads, body framing, forwarding rewrites and keep-alive rules.
