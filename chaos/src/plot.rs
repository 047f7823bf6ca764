//! The SVG timeline, drawn with plotters: backend calls/s (log scale) and backend failure rate
//! over time for both runs, with the breaker's state as coloured bands behind them and the key
//! below both panels.

use std::path::Path;
use std::sync::atomic::Ordering;

use hotbreaker::State;
use plotters::prelude::*;

use crate::lab::{INTERVAL, Outcome, Run, sampled_state};
use crate::report::PHASES;

const UNPROTECTED: RGBColor = RGBColor(200, 60, 40);
const PROTECTED: RGBColor = RGBColor(30, 90, 200);

fn band(state: State) -> RGBAColor {
    match state {
        State::Closed => RGBColor(120, 200, 120).mix(0.25),
        State::Open => RGBColor(230, 80, 80).mix(0.30),
        State::HalfOpen => RGBColor(240, 200, 60).mix(0.40),
        // Isolated, Disabled.
        _ => RGBColor(150, 150, 150).mix(0.3),
    }
}

/// Points per interval, for intervals wholly inside the run and with a value.
fn per_interval(run: &Run, end: f64, f: impl Fn(u64, u64, u64) -> Option<f64>) -> Vec<(f64, f64)> {
    run.intervals
        .iter()
        .enumerate()
        .take_while(|(i, _)| (*i + 1) as f64 * INTERVAL.as_secs_f64() <= end + 1e-9)
        .filter_map(|(i, slot)| {
            let reached = slot.reached.load(Ordering::Relaxed);
            let failures = slot.failures.load(Ordering::Relaxed);
            let successes = slot.successes.load(Ordering::Relaxed);
            f(reached, failures, successes).map(|y| (i as f64 * INTERVAL.as_secs_f64(), y))
        })
        .collect()
}

/// Splits a series where two or more intervals in a row are missing (no call ran), so no line is
/// drawn across a real gap; a single empty interval (calls slower than an interval) is bridged.
fn segments(points: Vec<(f64, f64)>) -> Vec<Vec<(f64, f64)>> {
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    for p in points {
        match out.last_mut() {
            Some(seg) if p.0 - seg.last().unwrap().0 < 2.5 * INTERVAL.as_secs_f64() => seg.push(p),
            _ => out.push(vec![p]),
        }
    }
    out
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The lowest value the log-scale panel shows: an interval with no call reaching the backend is
/// drawn on this floor (labelled "0").
const FLOOR: f64 = 1.0;

/// Draws the shared background of a panel: the breaker's state as bands, the phase boundaries
/// and names. A macro, as the two panels have different coordinate types (log and linear).
macro_rules! background {
    ($chart:expr, $o:expr, $seconds:expr, $y_min:expr, $y_max:expr, $name_at:expr) => {{
        $chart.draw_series(
            $o.protected
                .intervals
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| {
                    let state = sampled_state(slot.state.load(Ordering::Relaxed))?;
                    let x0 = i as f64 * INTERVAL.as_secs_f64();
                    Some(Rectangle::new(
                        [
                            (x0, $y_min),
                            ((x0 + INTERVAL.as_secs_f64()).min($seconds), $y_max),
                        ],
                        band(state).filled(),
                    ))
                }),
        )?;
        for p in 1..4 {
            let x = $o.lab.phase_start(p).as_secs_f64();
            $chart.draw_series(LineSeries::new([(x, $y_min), (x, $y_max)], BLACK.mix(0.5)))?;
        }
        for (p, name) in PHASES.iter().enumerate() {
            let x = $o.lab.phase_start(p).as_secs_f64() + 0.1;
            $chart.draw_series(std::iter::once(Text::new(
                *name,
                (x, $name_at),
                ("sans-serif", 14),
            )))?;
        }
    }};
}

/// Draws both runs' series on a panel: a dot per interval, joined by lines across gaps of at
/// most one interval.
macro_rules! runs {
    ($chart:expr, $series:expr) => {{
        for (points, colour) in $series.into_iter().zip([UNPROTECTED, PROTECTED]) {
            $chart.draw_series(points.iter().map(|p| Circle::new(*p, 2, colour.filled())))?;
            for segment in segments(points) {
                $chart.draw_series(LineSeries::new(segment, colour.stroke_width(2)))?;
            }
        }
    }};
}

pub fn write(o: &Outcome, path: &Path) -> DrawResult {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1100, 800)).into_drawing_area();
    root.fill(&WHITE)?;
    let (charts, legend) = root.split_vertically(720);
    let (top, bottom) = charts.split_vertically(380);
    let seconds = o.lab.total().as_secs_f64();
    let per_sec = 1.0 / INTERVAL.as_secs_f64();
    let calls = |run: &Run| {
        per_interval(run, seconds, |reached, _, _| {
            Some((reached as f64 * per_sec).max(FLOOR))
        })
    };
    let rate = |run: &Run| {
        per_interval(run, seconds, |_, failures, successes| {
            (failures + successes > 0).then(|| failures as f64 / (failures + successes) as f64)
        })
    };
    let series = [calls(&o.unprotected), calls(&o.protected)];
    let peak = series.iter().flatten().map(|p| p.1).fold(10.0, f64::max) * 2.0;

    // Backend load on a log scale: a dead backend's few calls per second and a healthy one's
    // thousands are both readable, and the outage's saving is the gap between the lines.
    let mut chart = ChartBuilder::on(&top)
        .caption(
            "Calls reaching the backend per second (log scale)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, (FLOOR..peak).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("calls/s")
        .y_label_formatter(&|v| {
            if *v <= FLOOR {
                "0".to_string()
            } else {
                format!("{v:.0}")
            }
        })
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    background!(chart, o, seconds, FLOOR, peak, peak / 1.6);
    runs!(chart, series);

    let mut chart = ChartBuilder::on(&bottom)
        .caption("Failure rate of the calls that ran", ("sans-serif", 20))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, 0.0..1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("failure rate")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    background!(chart, o, seconds, 0.0, 1.1, 1.07);
    runs!(chart, [rate(&o.unprotected), rate(&o.protected)]);

    draw_legend(&legend)?;
    root.present()?;
    Ok(())
}

/// The key, below both panels so that it covers no data, and what a dot means.
fn draw_legend<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let font = ("sans-serif", 14).into_font();
    let mut x = 80;
    for (colour, name) in [(UNPROTECTED, "no breaker"), (PROTECTED, "with hotbreaker")] {
        area.draw(&PathElement::new(
            [(x, 18), (x + 24, 18)],
            colour.stroke_width(2),
        ))?;
        area.draw(&Circle::new((x + 12, 18), 2, colour.filled()))?;
        area.draw(&Text::new(name, (x + 30, 11), font.clone()))?;
        x += 170;
    }
    for (state, name) in [
        (State::Closed, "breaker closed"),
        (State::Open, "breaker open"),
        (State::HalfOpen, "breaker half-open"),
    ] {
        area.draw(&Rectangle::new(
            [(x, 11), (x + 24, 25)],
            band(state).filled(),
        ))?;
        area.draw(&Text::new(name, (x + 30, 11), font.clone()))?;
        x += 150;
    }
    area.draw(&Text::new(
        "Each dot is one 100 ms interval; lines join neighbouring intervals. A lone dot is an \
         interval whose neighbours had no call reach the backend (while open, only a probe ran).",
        (80, 44),
        ("sans-serif", 13).into_font(),
    ))?;
    Ok(())
}
