//! `--plot FILE.svg`: throughput and p99 over time, and the latency percentile curve, as one SVG.
//!
//! Drawn with plotters' SVG backend without its `ttf` feature: text is written as SVG `<text>` elements
//! that the viewer renders, so neither fontconfig nor a font file is needed to build or run.

use std::path::Path;

use plotters::prelude::*;

use crate::report::Report;

/// Errors writing the plot.
#[derive(Debug, thiserror::Error)]
#[error("cannot draw {path}: {message}")]
pub struct PlotError {
    pub path: String,
    pub message: String,
}

/// The x position of a percentile on the curve: its number of nines (90 → 1, 99 → 2, 99.9 → 3).
fn nines(percentile: f64) -> f64 {
    -(1.0 - percentile / 100.0).max(1e-9).log10()
}

fn nines_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let text = format!("{p:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("p{text}")
}

/// Writes the plot of `report` to `path`.
pub fn write_svg(report: &Report, path: &Path) -> Result<(), PlotError> {
    draw(report, path).map_err(|message| PlotError { path: path.display().to_string(), message })
}

fn draw(report: &Report, path: &Path) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let root = SVGBackend::new(path, (1000, 1000)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let title = format!(
        "{} — {} loop, {}x{} clients, pipeline {}, {}",
        report.settings.target,
        report.settings.mode,
        report.settings.threads,
        report.settings.clients_per_thread,
        report.settings.pipeline,
        report.settings.workload
    );
    let root = root.titled(&title, ("sans-serif", 18)).map_err(|e| err(&e))?;
    let areas = root.split_evenly((3, 1));

    let points: Vec<_> = report.timeline.iter().collect();
    let t_max = points.iter().map(|p| p.t_s).fold(1.0, f64::max);
    let ops_max = points.iter().map(|p| p.ops_per_sec).fold(1.0, f64::max) * 1.1;
    let p99_max = points.iter().map(|p| p.p99_ms).fold(0.001, f64::max) * 1.1;

    let mut ops = ChartBuilder::on(&areas[0])
        .caption("throughput (ops/s, non-error replies)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..t_max, 0f64..ops_max)
        .map_err(|e| err(&e))?;
    ops.configure_mesh()
        .x_desc("time (s)")
        .y_desc("ops/s")
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()
        .map_err(|e| err(&e))?;
    ops.draw_series(LineSeries::new(points.iter().map(|p| (p.t_s, p.ops_per_sec)), &BLUE)).map_err(|e| err(&e))?;

    let mut lat = ChartBuilder::on(&areas[1])
        .caption("latency per second (ms): p99 red, p50 green", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..t_max, 0f64..p99_max)
        .map_err(|e| err(&e))?;
    lat.configure_mesh().x_desc("time (s)").y_desc("ms").draw().map_err(|e| err(&e))?;
    lat.draw_series(LineSeries::new(points.iter().map(|p| (p.t_s, p.p99_ms)), &RED)).map_err(|e| err(&e))?;
    lat.draw_series(LineSeries::new(points.iter().map(|p| (p.t_s, p.p50_ms)), &GREEN)).map_err(|e| err(&e))?;

    // The curve's last point is the maximum (percentile 100): place it half a nine past the last finite one.
    let finite: Vec<(f64, f64)> = report.percentile_curve.iter().filter(|(p, _)| *p < 100.0).copied().collect();
    let last_x = finite.last().map_or(1.0, |(p, _)| nines(*p));
    let mut curve: Vec<(f64, f64)> = finite.iter().map(|(p, ms)| (nines(*p), *ms)).collect();
    if let Some((_, max_ms)) = report.percentile_curve.iter().find(|(p, _)| *p >= 100.0) {
        curve.push((last_x + 0.5, *max_ms));
    }
    let curve_max_ms = curve.iter().map(|c| c.1).fold(0.001, f64::max) * 1.1;
    let mut pc = ChartBuilder::on(&areas[2])
        .caption("latency by percentile, whole run (ms; last point: max)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(80)
        .build_cartesian_2d(0f64..(last_x + 0.5).max(1.0), 0f64..curve_max_ms)
        .map_err(|e| err(&e))?;
    pc.configure_mesh()
        .x_desc("percentile")
        .y_desc("ms")
        .x_labels(((last_x + 0.5).ceil() as usize + 1).max(2))
        .x_label_formatter(&|x| nines_label(*x))
        .draw()
        .map_err(|e| err(&e))?;
    pc.draw_series(LineSeries::new(curve.iter().copied(), &BLACK)).map_err(|e| err(&e))?;
    pc.draw_series(curve.iter().map(|&(x, y)| Circle::new((x, y), 3, BLACK.filled()))).map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nines_axis() {
        assert!((nines(90.0) - 1.0).abs() < 1e-9);
        assert!((nines(99.9) - 3.0).abs() < 1e-9);
        assert_eq!(nines_label(2.0), "p99");
        assert_eq!(nines_label(0.0), "p0");
        assert_eq!(nines_label(3.0), "p99.9");
    }
}
