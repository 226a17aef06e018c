//! Body framing as incremental state machines: [`BodyDecoder`] turns wire bytes into body bytes
//! (zero-copy splits of the read buffer), [`BodyEncoder`] frames body bytes for the next hop.

mod chunked;
mod decoder;
mod encoder;

pub use decoder::{BodyDecoder, BodyEvent};
pub use encoder::BodyEncoder;
