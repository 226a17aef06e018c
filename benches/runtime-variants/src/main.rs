//! `runtime-variants`: one minimal HTTP/1.1 keep-alive server (ringway's request parser, a fixed
//! 12-byte `200`) built on each runtime candidate of the IO-runtime decision
//! (docs/decisions/0001-io-runtime.md), so that `benches/scripts/runtime_variants.sh` can measure
//! memory per idle connection and CPU per request of each next to nginx. One worker thread, pinned.
//!
//! ```text
//! runtime-variants VARIANT [--listen ADDR] [--cpu N]
//!   VARIANT: monoio-uring | monoio-epoll | compio-managed | compio-multishot | compio-owned
//!            | compio-poll-managed | compio-poll-owned
//! ```
//!
//! A separate crate, not a bin of `ringway-benches`: compio and its dependencies are built only
//! when this crate is, not by every script that builds `idle-clients`.

mod answer;
mod buffers;
mod on_compio;
mod on_monoio;

use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

use ringway_io::runtime::{pin_current_thread, IoDriver};

use crate::on_compio::Read;

/// io_uring submission queue entries (and the epoll batch), both runtimes.
pub(crate) const RING_ENTRIES: u32 = 1024;

/// One server variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Variant {
    Monoio(IoDriver),
    /// compio with this read strategy; `poll`: on its polling (epoll) driver, not io_uring.
    Compio {
        read: Read,
        poll: bool,
    },
}

impl Variant {
    const NAMES: &'static str = "monoio-uring | monoio-epoll | compio-managed | compio-multishot \
                                 | compio-owned | compio-poll-managed | compio-poll-owned";

    fn compio(read: Read, poll: bool) -> Self {
        Self::Compio { read, poll }
    }

    fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "monoio-uring" => Self::Monoio(IoDriver::Uring),
            "monoio-epoll" => Self::Monoio(IoDriver::Epoll),
            "compio-managed" => Self::compio(Read::Managed, false),
            "compio-multishot" => Self::compio(Read::Multishot, false),
            "compio-owned" => Self::compio(Read::Owned, false),
            "compio-poll-managed" => Self::compio(Read::Managed, true),
            "compio-poll-owned" => Self::compio(Read::Owned, true),
            _ => return None,
        })
    }
}

#[derive(Debug)]
struct Args {
    variant: Variant,
    listen: SocketAddr,
    cpu: Option<usize>,
}

impl Args {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let name = args.next().ok_or("missing VARIANT")?;
        let variant = Variant::parse(&name)
            .ok_or_else(|| format!("unknown variant {name:?} (one of {})", Variant::NAMES))?;
        let mut listen = SocketAddr::from(([127, 0, 0, 1], 18600));
        let mut cpu = None;
        while let Some(flag) = args.next() {
            let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--listen" => {
                    listen = value
                        .parse()
                        .map_err(|e| format!("--listen {value:?}: {e}"))?;
                }
                "--cpu" => {
                    cpu = Some(value.parse().map_err(|e| format!("--cpu {value:?}: {e}"))?);
                }
                _ => return Err(format!("unknown flag {flag}")),
            }
        }
        Ok(Self {
            variant,
            listen,
            cpu,
        })
    }
}

/// Prints the size of one connection's future: what its task holds while the connection is idle,
/// before the runtime's own per-task and per-operation bookkeeping.
pub(crate) fn report_task_size<F>(conn: &F) {
    eprintln!(
        "runtime-variants: connection future {} bytes",
        size_of_val(conn)
    );
}

fn main() -> ExitCode {
    let args = match Args::parse(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(e) => {
            eprintln!(
                "runtime-variants: {e}\nusage: runtime-variants VARIANT [--listen ADDR] [--cpu N]\n  VARIANT: {}",
                Variant::NAMES
            );
            return ExitCode::from(2);
        }
    };
    if let Some(cpu) = args.cpu {
        if !pin_current_thread(cpu) {
            eprintln!("runtime-variants: could not pin to CPU {cpu}; running unpinned");
        }
    }
    let listener = match TcpListener::bind(args.listen).and_then(|l| {
        l.set_nonblocking(true)?;
        Ok(l)
    }) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("runtime-variants: binding {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    let served = match args.variant {
        Variant::Monoio(driver) => on_monoio::run(listener, driver),
        Variant::Compio { read, poll } => on_compio::run(listener, read, poll),
    };
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("runtime-variants: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(line: &str) -> Result<Args, String> {
        Args::parse(line.split_whitespace().map(str::to_owned))
    }

    #[test]
    fn every_listed_variant_parses() {
        for name in Variant::NAMES.split('|').map(str::trim) {
            assert!(Variant::parse(name).is_some(), "{name}");
        }
        assert_eq!(
            Variant::parse("compio-managed"),
            Some(Variant::compio(Read::Managed, false))
        );
    }

    #[test]
    fn flags_parse_and_mistakes_say_what() {
        let args = parse("monoio-epoll --listen 127.0.0.1:9 --cpu 0").unwrap();
        assert_eq!(args.variant, Variant::Monoio(IoDriver::Epoll));
        assert_eq!(args.listen, SocketAddr::from(([127, 0, 0, 1], 9)));
        assert_eq!(args.cpu, Some(0));
        assert!(parse("tokio").unwrap_err().contains("unknown variant"));
        assert!(parse("monoio-uring --cpu")
            .unwrap_err()
            .contains("needs a value"));
        assert!(parse("").unwrap_err().contains("missing VARIANT"));
    }
}
