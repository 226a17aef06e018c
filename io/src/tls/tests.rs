//! A rustls client on a std thread against the driver on a runtime, over loopback.

use std::io::{Read, Write as _};
use std::net::TcpListener;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};

use super::*;
use crate::runtime::{block_on, IoDriver};

/// A CA and a certificate for `localhost` it signed: the server's config, the client's.
fn configs() -> (Arc<ServerConfig>, Arc<ClientConfig>) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![leaf.der().clone()], key)
        .unwrap();
    let mut roots = RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).unwrap();
    let client = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    (Arc::new(server), Arc::new(client))
}

/// Connects a rustls client to `addr` on a thread; it sends `request` and reads until the
/// server closes.
fn client(
    addr: std::net::SocketAddr,
    config: Arc<ClientConfig>,
    request: Vec<u8>,
) -> std::thread::JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).unwrap();
        let tcp = std::net::TcpStream::connect(addr).unwrap();
        let mut tls = StreamOwned::new(conn, tcp);
        tls.write_all(&request).unwrap();
        let mut got = Vec::new();
        // The server sends close_notify: a clean end.
        tls.read_to_end(&mut got).unwrap();
        got
    })
}

#[test]
fn echoes_over_tls_whole_and_split() {
    let (server, client_config) = configs();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    // More than rustls buffers in one go, both ways.
    let request: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let peer = client(addr, client_config, request.clone());
    let (half, rest) = (request.len() / 2, request.len() - request.len() / 2);
    block_on(IoDriver::Epoll, 256, |_| async move {
        let (std_tcp, _) = listener.accept().unwrap();
        let tcp = TcpStream::from_std(std_tcp).unwrap();
        let mut tls = TlsStream::accept(tcp, server).await.unwrap();
        assert_eq!(tls.server_name().as_deref(), Some("localhost"));
        // The first half read whole, echoed back whole.
        let mut buf = BytesMut::new();
        while buf.len() < half {
            let n = tls.read_more(&mut buf, 64 * 1024).await.unwrap();
            assert!(n > 0);
        }
        let (res, _) = tls.write_all(buf.split_to(half)).await;
        res.unwrap();
        // The rest through the halves, cancelable reads on one side.
        let (mut rd, mut wr) = tls.into_split();
        let canceller = monoio::io::Canceller::new();
        while buf.len() < rest {
            rd.read_more_cancelable(&mut buf, 64 * 1024, canceller.handle())
                .await
                .unwrap();
        }
        let (res, _) = wr.write_all(buf.split()).await;
        res.unwrap();
        let mut tls = rd.reunite(wr).map_err(drop).unwrap();
        tls.shutdown().await.unwrap();
    });
    assert_eq!(peer.join().unwrap(), request);
}

#[test]
fn a_client_that_does_not_speak_tls_fails_the_handshake() {
    let (server, _) = configs();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peer = std::thread::spawn(move || {
        let mut tcp = std::net::TcpStream::connect(addr).unwrap();
        tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
        let mut got = Vec::new();
        let _ = tcp.read_to_end(&mut got);
    });
    block_on(IoDriver::Epoll, 256, |_| async move {
        let (std_tcp, _) = listener.accept().unwrap();
        let tcp = TcpStream::from_std(std_tcp).unwrap();
        let err = TlsStream::accept(tcp, server).await.err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    });
    peer.join().unwrap();
}

/// The client driver against the server driver, each on its own runtime thread; the server's
/// connection is taken apart after its first read (`into_parts`: a `Send` state, as a hand-off
/// to another thread carries it) and put together again (`from_parts`): it goes on where it
/// stopped, nothing rustls buffered is lost.
#[test]
fn a_connection_taken_apart_past_its_handshake_goes_on() {
    fn is_send<T: Send>() {}
    is_send::<TlsState>();
    let (server, client_config) = configs();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let message: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let sent = message.clone();
    let client = std::thread::spawn(move || {
        block_on(IoDriver::Epoll, 256, |_| async move {
            let tcp = TcpStream::connect_addr(addr).await.unwrap();
            let name = ServerName::try_from("localhost").unwrap();
            let mut tls = TlsStream::connect(tcp, client_config, name).await.unwrap();
            assert!(tls.peer_certificate().is_some(), "the server's certificate");
            let (res, _) = tls.write_all(BytesMut::from(&sent[..])).await;
            res.unwrap();
            let mut back = BytesMut::new();
            while back.len() < 5 {
                assert!(tls.read_more(&mut back, 1024).await.unwrap() > 0);
            }
            back
        })
    });
    let total = message.len();
    let got = block_on(IoDriver::Epoll, 256, |_| async move {
        let (std_tcp, _) = listener.accept().unwrap();
        let tcp = TcpStream::from_std(std_tcp).unwrap();
        let mut tls = TlsStream::accept(tcp, server).await.unwrap();
        assert!(
            tls.peer_certificate().is_none(),
            "no client certificate asked for"
        );
        let mut got = BytesMut::new();
        tls.read_more(&mut got, 10).await.unwrap();
        let (tcp, state) = tls.into_parts().ok().unwrap();
        let state = std::thread::spawn(move || state).join().unwrap();
        let mut tls = TlsStream::from_parts(tcp, state);
        while got.len() < total {
            assert!(tls.read_more(&mut got, 64 * 1024).await.unwrap() > 0);
        }
        let (res, _) = tls.write_all(BytesMut::from(&b"moved"[..])).await;
        res.unwrap();
        got
    });
    assert_eq!(&got[..], &message[..]);
    assert_eq!(&client.join().unwrap()[..], b"moved");
}
