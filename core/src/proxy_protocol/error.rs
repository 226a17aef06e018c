//! What can be wrong with the PROXY protocol header a connection began with, one kind per rule.

/// An error in a PROXY protocol header (or the lack of one). Every one means the connection
/// cannot be trusted to say where it came from and must be closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyProtocolError {
    /// The first bytes are neither `PROXY ` (v1) nor the v2 signature: no header was sent.
    #[error("no PROXY protocol header: the connection does not begin with \"PROXY \" or the v2 signature")]
    NotProxyProtocol,
    /// No CRLF within the 107 bytes a v1 header may take.
    #[error("PROXY v1 header: no CRLF within {limit} bytes")]
    V1TooLong { limit: usize },
    /// The v1 line is not `PROXY` SP protocol … CRLF with single spaces and printable bytes.
    #[error("PROXY v1 header: malformed line ({what})")]
    V1Malformed { what: &'static str },
    /// The v1 protocol is none of `TCP4`, `TCP6`, `UNKNOWN`.
    #[error("PROXY v1 header: unknown protocol (expected TCP4, TCP6 or UNKNOWN)")]
    V1UnknownProtocol,
    /// A v1 address is not an address of the family the protocol names.
    #[error("PROXY v1 header: {which} address is not an {family} address")]
    V1BadAddress {
        which: &'static str,
        family: &'static str,
    },
    /// A v1 port is not a decimal number 0..=65535 without sign or leading zero.
    #[error("PROXY v1 header: {which} port is not a decimal number 0..65535")]
    V1BadPort { which: &'static str },
    /// The v2 version nibble is not 2.
    #[error("PROXY v2 header: version {version}, expected 2")]
    V2BadVersion { version: u8 },
    /// The v2 command is neither LOCAL (0) nor PROXY (1).
    #[error("PROXY v2 header: unknown command {command}")]
    V2BadCommand { command: u8 },
    /// The v2 family/transport byte is not one the spec defines.
    #[error("PROXY v2 header: unknown address family and transport 0x{byte:02x}")]
    V2BadFamily { byte: u8 },
    /// A v2 PROXY header for a datagram (UDP or unix datagram) connection, on a stream listener.
    #[error("PROXY v2 header: datagram transport 0x{byte:02x} on a stream connection")]
    V2Datagram { byte: u8 },
    /// The v2 length is shorter than the family's addresses.
    #[error("PROXY v2 header: length {len} is shorter than the {need} bytes of its addresses")]
    V2ShortAddresses { len: usize, need: usize },
    /// The v2 header is longer than this receiver accepts.
    #[error("PROXY v2 header: {len} bytes, more than the {limit} accepted")]
    V2TooLong { len: usize, limit: usize },
    /// A TLV after the addresses runs past the header's length.
    #[error("PROXY v2 header: TLV at offset {offset} runs past the header's end")]
    V2BadTlv { offset: usize },
}
