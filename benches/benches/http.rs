//! criterion micro-benchmarks of `ringway_core::http`: head parsing (a small GET and a
//! 20-header browser request), chunked decoding of a 64 KiB body in 4 KiB chunks, and the
//! forwarding rewrite of a browser request.
use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ringway_core::http::forward::{self, ForwardInfo};
use ringway_core::http::{
    BodyDecoder, BodyEncoder, BodyEvent, BodyFraming, Limits, RequestHead, RequestParser,
};

const SMALL_GET: &[u8] =
    b"GET /api/v1/items?id=42 HTTP/1.1\r\nHost: example.com\r\nAccept: */*\r\n\r\n";

/// A Chrome-like navigation request with 20 header fields.
const BROWSER: &[u8] = b"GET /products/shoes/running?color=blue&size=42&sort=price HTTP/1.1\r\n\
Host: shop.example.com\r\n\
Connection: keep-alive\r\n\
Cache-Control: max-age=0\r\n\
sec-ch-ua: \"Chromium\";v=\"124\", \"Google Chrome\";v=\"124\", \"Not-A.Brand\";v=\"99\"\r\n\
sec-ch-ua-mobile: ?0\r\n\
sec-ch-ua-platform: \"Linux\"\r\n\
Upgrade-Insecure-Requests: 1\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8\r\n\
Sec-Fetch-Site: same-origin\r\n\
Sec-Fetch-Mode: navigate\r\n\
Sec-Fetch-User: ?1\r\n\
Sec-Fetch-Dest: document\r\n\
Referer: https://shop.example.com/products/shoes\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9,de;q=0.8\r\n\
Cookie: session=3f2a9c1b7e8d4f60a5b2c3d4e5f60718; theme=dark; cart=7\r\n\
If-None-Match: \"5d8c72a5edda8d6a\"\r\n\
If-Modified-Since: Tue, 24 Nov 2026 10:00:00 GMT\r\n\
X-Requested-With: XMLHttpRequest\r\n\r\n";

fn parse_once(raw: &[u8]) -> RequestHead {
    let mut parser = RequestParser::new(Limits::default());
    let mut buf = BytesMut::from(raw);
    match parser.parse(&mut buf) {
        Ok(Some(head)) => head,
        other => panic!("benchmark input must parse: {other:?}"),
    }
}

fn head_parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("http_parse");
    for (name, raw) in [("small_get", SMALL_GET), ("browser_20_headers", BROWSER)] {
        assert_eq!(parse_once(raw).as_bytes().len(), raw.len());
        group.throughput(Throughput::Bytes(raw.len() as u64));
        // The copy into a fresh BytesMut stands in for the socket read; it is the same for
        // every parser and is included in the time.
        group.bench_function(name, |b| {
            let mut parser = RequestParser::new(Limits::default());
            b.iter(|| {
                let mut buf = BytesMut::from(black_box(raw));
                black_box(parser.parse(&mut buf).ok().flatten())
            });
        });
    }
    group.finish();
}

fn chunked_decoding(c: &mut Criterion) {
    let data = vec![b'x'; 4096];
    let mut encoded = BytesMut::new();
    let mut encoder = BodyEncoder::new(BodyFraming::Chunked);
    for _ in 0..16 {
        encoder.encode(&data, &mut encoded);
    }
    encoder.finish(&mut encoded);
    let encoded: Bytes = encoded.freeze();

    let mut group = c.benchmark_group("http_chunked");
    group.throughput(Throughput::Bytes(64 * 1024));
    group.bench_function("decode_64k_in_4k_chunks", |b| {
        b.iter_batched(
            || BytesMut::from(&encoded[..]),
            |mut buf| {
                let mut decoder = BodyDecoder::new(BodyFraming::Chunked, None);
                let mut total = 0;
                loop {
                    match decoder.decode(&mut buf) {
                        Ok(BodyEvent::Data(d)) => total += d.len(),
                        Ok(BodyEvent::End) => break,
                        other => panic!("unexpected {other:?}"),
                    }
                }
                assert_eq!(total, 64 * 1024);
                total
            },
            BatchSize::SmallInput,
        );
    });
    group.bench_function("encode_64k_in_4k_chunks", |b| {
        let mut out = BytesMut::with_capacity(70 * 1024);
        b.iter(|| {
            out.clear();
            let mut encoder = BodyEncoder::new(BodyFraming::Chunked);
            for _ in 0..16 {
                encoder.encode(black_box(&data), &mut out);
            }
            encoder.finish(&mut out);
            out.len()
        });
    });
    group.finish();
}

fn forwarding(c: &mut Criterion) {
    let head = parse_once(BROWSER);
    let info = ForwardInfo {
        client_addr: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 17)),
        proto: "https",
        request_id: "01HZX3K2Q4W5E6R7T8Y9U0I1O2",
        trusted_peer: true,
    };
    let mut group = c.benchmark_group("http_forward");
    group.bench_function("write_request_browser", |b| {
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            out.clear();
            forward::write_request(black_box(&head), &info, head.framing(), &mut out);
            out.len()
        });
    });
    group.finish();
}

criterion_group!(benches, head_parsing, chunked_decoding, forwarding);
criterion_main!(benches);
