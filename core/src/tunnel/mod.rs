//! The tunnel protocol between agent and balancer (see docs/PROTOCOL.md).
