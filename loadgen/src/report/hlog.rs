//! `--hlog`: an HdrHistogram interval log — one base64, compressed (V2 + deflate) histogram of
//! corrected latency per interval, tagged with the target's index (`t0`, `t1`, …), readable by
//! HdrHistogram's `HistogramLogProcessor` and the hdrhistogram crate's `IntervalLogIterator`.

use std::io::Write;

use hdrhistogram::serialization::interval_log::{IntervalLogWriterBuilder, Tag};
use hdrhistogram::serialization::V2DeflateSerializer;

use super::RunResult;

/// Writes the interval log of every measured interval of every target.
pub fn write(run: &RunResult, out: &mut impl Write) -> std::io::Result<()> {
    let base = run.started_at;
    let mut serializer = V2DeflateSerializer::new();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("ringway-loadgen interval log: corrected latency in microseconds")
        .with_start_time(base)
        .with_base_time(base)
        // Values are µs; the max column is printed in ms, like HdrHistogram's own logs.
        .with_max_value_divisor(1000.0);
    for (i, t) in run.targets.iter().enumerate() {
        builder.add_comment(&format!("tag t{i} = {}", t.url));
    }
    let mut log = builder
        .begin_log_with(out, &mut serializer)
        .map_err(std::io::Error::other)?;
    for (i, t) in run.targets.iter().enumerate() {
        let tag_name = format!("t{i}");
        let tag = Tag::new(&tag_name);
        for (round_start, s) in t.intervals.iter().filter(|(_, s)| !s.warmup) {
            let at = (*round_start + s.start)
                .duration_since(base)
                .unwrap_or_default();
            log.write_histogram(&s.corrected, at, s.length, tag)
                .map_err(std::io::Error::other)?;
        }
    }
    Ok(())
}
