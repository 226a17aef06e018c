//! `--plot FILE.svg`: corrected latency by percentile, one curve per target, on HdrHistogram's
//! logarithmic `1/(1-p)` axis (so 90 %, 99 %, 99.9 % … are evenly spaced), drawn with plotters.

use std::path::Path;

use hdrhistogram::Histogram;
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

/// Draws the chart into `path`.
pub fn write(run: &RunResult, path: &Path) -> Result<(), String> {
    let curves: Vec<(String, Vec<(f64, f64)>)> = run
        .targets
        .iter()
        .map(|t| (t.url.clone(), curve(&t.rec.latencies.corrected)))
        .collect();
    let y_max = curves
        .iter()
        .flat_map(|(_, c)| c.iter().map(|p| p.1))
        .fold(0.0f64, f64::max)
        .max(0.001)
        * 1.1;
    let root = SVGBackend::new(path, (1024, 640)).into_drawing_area();
    let e = |e: &dyn std::fmt::Display| format!("plot {}: {e}", path.display());
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Latency by percentile (corrected for coordinated omission)",
            ("sans-serif", 22),
        )
        .margin(16)
        .margin_right(48)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((1f64..X_MAX).log_scale(), 0f64..y_max)
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms)")
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (url, pts)) in curves.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(url)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|x| e(&x))?;
    root.present().map_err(|x| e(&x))?;
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
