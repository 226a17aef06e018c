//! criterion micro-benchmarks of the tunnel codec and connection state machine.
//!
//! Run: `cargo bench -p ringway-benches --bench tunnel -- --warm-up-time 1 --measurement-time 3`
//! (numbers in results/archive/core-tunnel-bench.md).
use std::hint::black_box;
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ringway_core::tunnel::pair::Pair;
use ringway_core::tunnel::{encode, Config, Event, Frame, FrameDecoder, StreamId};

/// A 300-byte request head as the balancer forwards it.
fn request_head_300() -> Bytes {
    let mut head = String::from(
        "GET /api/v1/items?page=2 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: bench/1.0\r\n\
         Accept: application/json\r\nX-Forwarded-For: 192.0.2.7\r\nX-Forwarded-Proto: http\r\n\
         X-Request-Id: 3f2a9c1e-bench\r\n",
    );
    let filler = 300 - head.len() - "X-Pad: \r\n\r\n".len();
    head.push_str(&format!("X-Pad: {}\r\n\r\n", "p".repeat(filler)));
    assert_eq!(head.len(), 300);
    Bytes::from(head)
}

fn round_trip(frames: &[Frame], out: &mut BytesMut, decoder: &mut FrameDecoder) -> usize {
    for frame in frames {
        encode(frame, out);
    }
    let mut n = 0;
    while let Ok(Some(frame)) = decoder.decode(out) {
        black_box(&frame);
        n += 1;
    }
    n
}

fn codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("tunnel_codec");
    let mut out = BytesMut::with_capacity(64 * 1024);
    let mut decoder = FrameDecoder::new(64 * 1024);

    let head = [Frame::RequestHead {
        id: StreamId(1),
        head: request_head_300(),
        end: true,
    }];
    group.throughput(Throughput::Elements(1));
    group.bench_function("request_head_300B_encode_decode", |b| {
        b.iter(|| round_trip(black_box(&head), &mut out, &mut decoder));
    });

    let data = [Frame::Data {
        id: StreamId(1),
        data: Bytes::from(vec![0x5a; 16 * 1024]),
        end: false,
    }];
    group.throughput(Throughput::Bytes(16 * 1024));
    group.bench_function("data_16KiB_encode_decode", |b| {
        b.iter(|| round_trip(black_box(&data), &mut out, &mut decoder));
    });

    // What one tunnel read looks like under load: many streams' small frames in one buffer.
    let small: Vec<Frame> = (0..64u32)
        .map(|i| match i % 4 {
            0 => Frame::Data {
                id: StreamId(2 * i + 1),
                data: Bytes::from_static(b"hello world!"),
                end: true,
            },
            1 => Frame::WindowUpdate {
                id: StreamId(2 * i + 1),
                increment: 65_536,
            },
            2 => Frame::ResponseHead {
                id: StreamId(2 * i + 1),
                head: Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n"),
                end: false,
            },
            _ => Frame::Reset {
                id: StreamId(2 * i + 1),
                code: ringway_core::tunnel::ResetCode::Cancel,
            },
        })
        .collect();
    group.throughput(Throughput::Elements(64));
    group.bench_function("64_small_frames_coalesced", |b| {
        b.iter(|| round_trip(black_box(&small), &mut out, &mut decoder));
    });
    group.finish();
}

/// A whole exchange through both state machines: open a stream with a 300-byte head, answer with
/// a response head and a 12-byte body, release; bytes move in memory.
fn exchange(c: &mut Criterion) {
    let mut group = c.benchmark_group("tunnel_connection");
    let head = request_head_300();
    let response = Bytes::from_static(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n");
    let mut pair = Pair::new(&Config::default());
    assert!(pair.handshake(1, 0));
    let mut wire = BytesMut::with_capacity(64 * 1024);
    let now = Instant::now();
    group.throughput(Throughput::Elements(1));
    group.bench_function("request_response_exchange", |b| {
        b.iter(|| {
            let id = pair
                .balancer
                .open_stream(head.clone(), true)
                .unwrap_or(StreamId(0));
            pair.balancer.poll_transmit(&mut wire);
            let _ = pair.agent.handle_input(&mut wire, now);
            while let Some(event) = pair.agent.poll_event() {
                black_box(event);
            }
            let _ = pair.agent.send_response_head(id, response.clone(), false);
            let _ = pair
                .agent
                .send_data(id, &mut Bytes::from_static(b"hello world!"), true);
            pair.agent.poll_transmit(&mut wire);
            let _ = pair.balancer.handle_input(&mut wire, now);
            while let Some(event) = pair.balancer.poll_event() {
                if let Event::Data { id, data, .. } = event {
                    pair.balancer.release(id, data.len());
                }
            }
        });
    });
    group.finish();
}

criterion_group!(benches, codec, exchange);
criterion_main!(benches);
