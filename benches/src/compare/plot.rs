//! latency.svg: every system's open-loop latency by percentile on one chart, read back from the
//! .hgrm files (HdrHistogram percentile distribution, values in ms), drawn with plotters on
//! HdrHistogram's `1/(1-p)` axis, latency on a logarithmic axis.

use std::path::Path;

use plotters::prelude::*;

/// Right end of the x axis: the 99.999th percentile.
const X_MAX: f64 = 1e5;

/// `(1/(1-p), ms)` points of a percentile-distribution file (the p = 1 line has no x; skipped).
pub fn parse_hgrm(text: &str) -> Vec<(f64, f64)> {
    text.lines()
        .filter(|l| !l.trim_start().starts_with('#'))
        .filter_map(|l| {
            let f: Vec<f64> = l
                .split_whitespace()
                .map(str::parse)
                .collect::<Result<_, _>>()
                .ok()?;
            (f.len() == 4 && f[3] <= X_MAX).then(|| (f[3].max(1.0), f[0]))
        })
        .collect()
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

/// Draws `curves` (label, hgrm file) into `out`.
pub fn write(curves: &[(String, &Path)], title: &str, out: &Path) -> Result<(), String> {
    let mut data = Vec::new();
    for (label, file) in curves {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("plot: reading {}: {e}", file.display()))?;
        let pts = parse_hgrm(&text);
        if !pts.is_empty() {
            data.push((label.clone(), pts));
        }
    }
    let values = || data.iter().flat_map(|(_, p)| p.iter().map(|x| x.1));
    let y_max = values().fold(0.001f64, f64::max) * 1.3;
    let y_min = values()
        .filter(|v| *v > 0.0)
        .fold(f64::INFINITY, f64::min)
        .clamp(0.001, y_max / 10.0)
        / 1.5;
    let e = |x: &dyn std::fmt::Display| format!("plot {}: {x}", out.display());
    let root = SVGBackend::new(out, (1024, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|x| e(&x))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 20))
        .margin(16)
        .margin_right(48)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d((1f64..X_MAX).log_scale(), (y_min..y_max).log_scale())
        .map_err(|x| e(&x))?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (ms, log scale)")
        .x_label_formatter(&|x| percentile_label(*x))
        .draw()
        .map_err(|x| e(&x))?;
    for (i, (label, pts)) in data.into_iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts, color.stroke_width(2)))
            .map_err(|x| e(&x))?
            .label(label)
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
    fn reads_loadgen_hgrm_lines() {
        let text = "       Value     Percentile TotalCount 1/(1-Percentile)\n\n\
                    0.044 0.000000000000          1           1.00\n\
                    0.120 0.990000000000        990         100.00\n\
                    0.300 1.000000000000       1000\n\
                    #[Mean    =        0.050, StdDeviation   =        0.010]\n";
        assert_eq!(parse_hgrm(text), vec![(1.0, 0.044), (100.0, 0.12)]);
        assert_eq!(percentile_label(1000.0), "99.9%");
    }
}
