//! Shared by the integration tests: which drivers to exercise, and a loopback echo.
#![allow(dead_code, clippy::unwrap_used, unreachable_pub)]

use std::net::SocketAddr;

use ringway_io::buf::IoBuf;
use ringway_io::io::{AsyncReadRent, AsyncReadRentExt, AsyncWriteRentExt};
use ringway_tuning::ring::RingProbe;
use ringway_tuning::runtime::{DriverKind, IoDriver};

/// The forced drivers this host can run; io_uring ones are left out, with the reason printed,
/// only when the kernel really cannot set up a ring.
pub fn drivers() -> Vec<(IoDriver, DriverKind)> {
    let mut out = vec![(IoDriver::Epoll, DriverKind::Epoll)];
    let probe = RingProbe::get();
    match probe.unusable_reason() {
        None => {
            out.push((IoDriver::Uring, DriverKind::Uring));
            if probe.defer_taskrun.ok {
                out.push((IoDriver::UringDefer, DriverKind::Uring));
            } else {
                println!("skipping uring-defer: {:?}", probe.defer_taskrun.error);
            }
        }
        Some(reason) => println!("skipping io_uring drivers: {reason}"),
    }
    out
}

/// Serves one connection on `listener`: echoes every read back until the peer closes.
pub async fn echo_one(listener: ringway_io::net::TcpListener) -> usize {
    let (mut conn, _) = listener.accept().await.unwrap();
    let mut total = 0;
    let mut buf = vec![0u8; 4096];
    loop {
        let (res, b) = conn.read(buf).await;
        let n = res.unwrap();
        if n == 0 {
            return total;
        }
        total += n;
        let (res, b) = conn.write_all(b.slice(..n)).await;
        res.unwrap();
        buf = b.into_inner();
    }
}

/// Sends `rounds` messages to `addr` and checks each comes back unchanged.
pub async fn echo_client(addr: SocketAddr, rounds: usize) {
    let mut conn = ringway_io::net::TcpStream::connect_addr(addr)
        .await
        .unwrap();
    conn.set_nodelay(true).unwrap();
    for i in 0..rounds {
        let msg = format!("round {i:04}").into_bytes();
        let (res, msg) = conn.write_all(msg).await;
        res.unwrap();
        let (res, back) = conn.read_exact(vec![0u8; msg.len()]).await;
        res.unwrap();
        assert_eq!(back, msg);
    }
}
