//! The SVG timeline, drawn with plotters: backend calls/s and backend failure rate over time for
//! both runs, with the breaker's state as coloured bands behind the protected run.

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

pub fn write(o: &Outcome, path: &Path) -> DrawResult {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let root = SVGBackend::new(path, (1100, 720)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(380);
    let seconds = o.lab.total().as_secs_f64();
    let per_sec = 1.0 / INTERVAL.as_secs_f64();
    let calls =
        |run: &Run| per_interval(run, seconds, |reached, _, _| Some(reached as f64 * per_sec));
    let rate = |run: &Run| {
        per_interval(run, seconds, |_, failures, successes| {
            (failures + successes > 0).then(|| failures as f64 / (failures + successes) as f64)
        })
    };
    let (free, guarded) = (calls(&o.unprotected), calls(&o.protected));
    let peak = free.iter().chain(&guarded).map(|p| p.1).fold(1.0, f64::max) * 1.1;

    for (area, title, y_max, y_label, series) in [
        (
            &top,
            "Calls reaching the backend (per second)",
            peak,
            "calls/s",
            [free, guarded],
        ),
        (
            &bottom,
            "Failure rate of the calls that ran",
            1.05,
            "failure rate",
            [rate(&o.unprotected), rate(&o.protected)],
        ),
    ] {
        let mut chart = ChartBuilder::on(area)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..seconds, 0.0..y_max)?;
        chart
            .configure_mesh()
            .x_desc("seconds since start")
            .y_desc(y_label)
            .light_line_style(WHITE.mix(0.0))
            .draw()?;
        // The breaker's state, one band per sampled interval.
        chart.draw_series(
            o.protected
                .intervals
                .iter()
                .enumerate()
                .filter_map(|(i, slot)| {
                    let state = sampled_state(slot.state.load(Ordering::Relaxed))?;
                    let x0 = i as f64 * INTERVAL.as_secs_f64();
                    Some(Rectangle::new(
                        [
                            (x0, 0.0),
                            ((x0 + INTERVAL.as_secs_f64()).min(seconds), y_max),
                        ],
                        band(state).filled(),
                    ))
                }),
        )?;
        // Phase boundaries and names.
        for p in 1..4 {
            let x = o.lab.phase_start(p).as_secs_f64();
            chart.draw_series(LineSeries::new([(x, 0.0), (x, y_max)], BLACK.mix(0.5)))?;
        }
        for (p, name) in PHASES.iter().enumerate() {
            let x = o.lab.phase_start(p).as_secs_f64() + 0.1;
            chart.draw_series(std::iter::once(Text::new(
                *name,
                (x, y_max * 0.97),
                ("sans-serif", 14),
            )))?;
        }
        for (points, colour, name) in series
            .into_iter()
            .zip([(UNPROTECTED, "no breaker"), (PROTECTED, "with hotbreaker")])
            .map(|(p, (c, n))| (p, c, n))
        {
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 2, colour.filled())))?;
            for segment in segments(points) {
                chart.draw_series(LineSeries::new(segment, colour.stroke_width(2)))?;
            }
            chart
                .draw_series(std::iter::empty::<PathElement<(f64, f64)>>())?
                .label(name)
                .legend(move |(x, y)| {
                    PathElement::new([(x, y), (x + 18, y)], colour.stroke_width(2))
                });
        }
        for (state, name) in [
            (State::Closed, "closed"),
            (State::Open, "open"),
            (State::HalfOpen, "half-open"),
        ] {
            chart
                .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())?
                .label(format!("breaker {name}"))
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 18, y + 6)], band(state).filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.4))
            .draw()?;
    }
    root.present()?;
    Ok(())
}
