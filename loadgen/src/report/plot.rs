//! `--plot FILE.svg`: corrected latency by percentile, one curve per target, on HdrHistogram's
//! logarithmic `1/(1-p)` axis (so 90 %, 99 %, 99.9 % … are evenly spaced), drawn with plotters.
//! The latency axis is linear, or logarithmic with `--plot-log-latency`; `--find-max` adds its
//! SLO as a dashed line.

use std::path::Path;

use hdrhistogram::Histogram;
use plotters::coord::combinators::LogCoord;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;

use super::RunResult;

/// Right end of the x axis: the 99.9999th percentile.
const X_MAX: f64 = 1e6;

/// Points `(1/(1-p), latency ms)` of a µs histogram, up to (not including) p = 1.
fn curve(h: &Histogram<u64>) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let mut pts: Vec<(f64, f64)> = h
        .iter_quantiles(5)
        .filter(|v| v.quantile_iterated_to() < 1.0)
        .map(|v| {
            (
                1.0 / (1.0 - v.quantile_iterated_to()),
                v.value_iterated_to() as f64 / 1000.0,
            )
        })
        .filter(|(x, _)| *x <= X_MAX)
        .collect();
    // The maximum stands at the far end of what was observed.
    let n = h.len() as f64;
    pts.push(((n).clamp(1.0, X_MAX), h.max() as f64 / 1000.0));
    pts
}

/// The tick label of an x position: the percentile it stands for.
fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 1.0 / x);
    if p < 99.0 {
        format!("{p:.0}%")
    } else {
        let digits = (-(100.0 - p).log10()).round().max(0.0) as usize;
        format!("{p:.digits$}%")
    }
}

/// How the latency (y) axis is scaled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LatencyAxis {
    /// Linear from 0 (the default).
    Linear,
    /// Logarithmic (`--plot-log-latency`): µs medians and second-long tails on one chart.
    Log,
}

/// Draws the chart into `path`. With `--find-max` the SLO is drawn as a dashed line at its
/// limit with a mark at its percentile.
pub fn write(run: &RunResult, path: &Path, axis: LatencyAxis) -> Result<(), String> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = run
        .targets
        .iter()
        .map(|t| (t.url.clone(), curve(&t.rec.latencies.corrected)))
        .collect();
    // The SLO: (x of its percentile, limit in ms).
    let slo = run.find_max.as_ref().map(|fm| {
        let p = fm.slo.percentile.min(99.9999);
        (
            (1.0 / (1.0 - p / 100.0)).clamp(1.0, X_MAX),
            fm.slo.limit.as_secs_f64() * 1e3,
            format!(
                "SLO p{} <= {}",
                fm.slo.percentile,
                super::human_us(fm.slo.limit.as_secs_f64() * 1e6)
            ),
        )
    });
    let values = || {
        curves
            .iter()
            .flat_map(|(_, c)| c.iter().map(|p| p.1))
            .chain(slo.as_ref().map(|s| s.1))
    };
    let y_max = values().fold(0.0f64, f64::max).max(0.001) * 1.1;
    let root = SVGBackend::new(path, (1024, 640)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(
            "Latency by percentile (corrected for coordinated omission)",
            ("sans-serif", 22),
        )
        .margin(16)
        .margin_right(48)
        .x_label_area_size(44)
        .y_label_area_size(64);
    let x = (1f64..X_MAX).log_scale();
    match axis {
        LatencyAxis::Linear => {
            let chart = builder
                .build_cartesian_2d(x, 0f64..y_max)
                .map_err(|x| e(&x))?;
            draw(chart, curves, slo, "latency (ms)").map_err(|x| e(&x))?;
        }
        LatencyAxis::Log => {
            // Histograms hold whole µs: 1 µs is the floor of the axis.
            let y_min = values()
                .filter(|v| *v > 0.0)
                .fold(f64::INFINITY, f64::min)
                .clamp(0.001, y_max / 10.0)
                / 1.5;
            let chart = builder
                .build_cartesian_2d(x, (y_min..y_max).log_scale())
                .map_err(|x| e(&x))?;
            draw(chart, curves, slo, "latency (ms, log scale)").map_err(|x| e(&x))?;
        }
    }
    root.present().map_err(|x| e(&x))?;
    Ok(())
}

/// The mesh, one curve per target and the SLO line, on either latency axis.
fn draw<'a, Y>(
    mut chart: ChartContext<'a, SVGBackend<'a>, Cartesian2d<LogCoord<f64>, Y>>,
    curves: Vec<(String, Vec<(f64, f64)>)>,
    slo: Option<(f64, f64, String)>,
    y_desc: &str,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>>
where
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc(y_desc)
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()?;
    for (i, (url, pts)) in curves.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(url)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    if let Some((x, limit, label)) = slo {
        let red = RGBColor(200, 30, 30);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(1.0, limit), (X_MAX, limit)],
                8,
                5,
                red.stroke_width(2),
            ))?
            .label(label)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], red.stroke_width(2)));
        chart.draw_series(std::iter::once(Circle::new((x, limit), 5, red.filled())))?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_name_percentiles() {
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1000.0), "99.9%");
        assert_eq!(percentile_label(1e5), "99.999%");
    }
}
