//! The SVG timeline, drawn with plotters: backend calls/s (log scale), the failure rate of the
//! calls that ran, and the share of calls turned away, over time for the three runs, with the
//! breaker's state as coloured bands behind them; below the panels, the key and the per-phase
//! figures.

use std::path::Path;
use std::sync::atomic::Ordering;

use hotbreaker::State;
use plotters::prelude::*;

use crate::lab::{INTERVAL, Outcome, Run, sampled_state};
use crate::report::{FullAfter, PhaseSummary, summaries};
use crate::schedule::{Behaviour, Phase};

const UNPROTECTED: RGBColor = RGBColor(200, 60, 40);
const PROTECTED: RGBColor = RGBColor(30, 90, 200);
const THROTTLED: RGBColor = RGBColor(140, 50, 170);
const SCHEDULE: RGBColor = RGBColor(40, 40, 40);
/// The runs' colours, in the order of [`Outcome::runs`].
const COLOURS: [RGBColor; 3] = [UNPROTECTED, PROTECTED, THROTTLED];

fn band(state: State) -> RGBAColor {
    match state {
        State::Closed => RGBColor(120, 200, 120).mix(0.25),
        State::Open => RGBColor(230, 80, 80).mix(0.30),
        State::HalfOpen => RGBColor(240, 200, 60).mix(0.40),
        // Isolated, Disabled.
        _ => RGBColor(150, 150, 150).mix(0.3),
    }
}

/// An interval's counters, as the panels need them.
struct Counts {
    attempted: u64,
    reached: u64,
    failures: u64,
    successes: u64,
    rejected: u64,
}

/// Points per interval, for intervals wholly inside the run and with a value.
fn per_interval(run: &Run, end: f64, f: impl Fn(Counts) -> Option<f64>) -> Vec<(f64, f64)> {
    run.intervals
        .iter()
        .enumerate()
        .take_while(|(i, _)| (*i + 1) as f64 * INTERVAL.as_secs_f64() <= end + 1e-9)
        .filter_map(|(i, slot)| {
            let counts = Counts {
                attempted: slot.attempted.load(Ordering::Relaxed),
                reached: slot.reached.load(Ordering::Relaxed),
                failures: slot.failures.load(Ordering::Relaxed),
                successes: slot.successes.load(Ordering::Relaxed),
                rejected: slot.rejected.load(Ordering::Relaxed),
            };
            f(counts).map(|y| (i as f64 * INTERVAL.as_secs_f64(), y))
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
        for p in &Phase::ALL[1..] {
            let x = $o.lab.phase_start(*p).as_secs_f64();
            $chart.draw_series(LineSeries::new([(x, $y_min), (x, $y_max)], BLACK.mix(0.5)))?;
        }
        for p in Phase::ALL {
            let x = $o.lab.phase_start(p).as_secs_f64() + 0.1;
            $chart.draw_series(std::iter::once(Text::new(
                p.name(),
                (x, $name_at),
                ("sans-serif", 14),
            )))?;
        }
    }};
}

/// Draws runs' series on a panel: a dot per interval, joined by lines across gaps of at most one
/// interval.
macro_rules! runs {
    ($chart:expr, $series:expr, $colours:expr) => {{
        for (points, colour) in $series.into_iter().zip($colours) {
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
    let root = SVGBackend::new(path, (1100, 1120)).into_drawing_area();
    root.fill(&WHITE)?;
    let (charts, key) = root.split_vertically(860);
    let (top, lower) = charts.split_vertically(340);
    let (middle, bottom) = lower.split_vertically(260);
    let seconds = o.lab.total().as_secs_f64();
    let per_sec = 1.0 / INTERVAL.as_secs_f64();
    let summaries = summaries(o);
    let calls = |run: &Run| {
        per_interval(run, seconds, |c| {
            Some((c.reached as f64 * per_sec).max(FLOOR))
        })
    };
    let rate = |run: &Run| {
        per_interval(run, seconds, |c| {
            let ran = c.failures + c.successes;
            (ran > 0).then(|| c.failures as f64 / ran as f64)
        })
    };
    let turned_away = |run: &Run| {
        per_interval(run, seconds, |c| {
            (c.attempted > 0).then(|| c.rejected as f64 / c.attempted as f64)
        })
    };
    let series = o.runs().map(calls);
    // Headroom above the highest rate for the phase names and the full-traffic markers.
    let peak = series.iter().flatten().map(|p| p.1).fold(10.0, f64::max) * 6.0;

    // Backend load on a log scale: a dead backend's few calls per second and a healthy one's
    // thousands are both readable, and the saving is the gap between the lines.
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
    background!(chart, o, seconds, FLOOR, peak, peak / 1.25);
    runs!(chart, series, COLOURS);
    // Where each protected run is back at full traffic after the recovery: one marker per run,
    // at heights of their own (between the phase names and the data), as the two moments can be
    // an interval apart.
    let recovery = o.lab.phase_start(Phase::Recovered).as_secs_f64();
    let recovered = &summaries[Phase::Recovered.index()];
    for ((r, colour), height) in recovered.runs.iter().zip(COLOURS).zip([1.0, 2.6, 3.8]) {
        if let FullAfter::After(d) = r.full_after {
            chart.draw_series(std::iter::once(TriangleMarker::new(
                (recovery + d.as_secs_f64(), peak / height),
                7,
                colour.filled(),
            )))?;
        }
    }

    let mut chart = ChartBuilder::on(&middle)
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
    runs!(chart, o.runs().map(rate), COLOURS);
    // The schedule: the backend's error rate for a call starting in each interval's middle.
    let schedule = (0..o.unprotected.intervals.len())
        .map(|i| INTERVAL * i as u32 + INTERVAL / 2)
        .filter(|t| t.as_secs_f64() <= seconds)
        .map(|t| {
            let y = match o.lab.behaviour_at(t) {
                Behaviour::Serve { error_rate } => error_rate,
                Behaviour::TimeOut => 1.0,
            };
            (t.as_secs_f64(), y)
        });
    chart.draw_series(LineSeries::new(schedule, SCHEDULE.stroke_width(1)))?;

    let mut chart = ChartBuilder::on(&bottom)
        .caption(
            "Share of attempted calls turned away (rejected or throttled)",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..seconds, 0.0..1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds since start")
        .y_desc("share turned away")
        .light_line_style(WHITE.mix(0.0))
        .draw()?;
    background!(chart, o, seconds, 0.0, 1.1, 1.07);
    runs!(
        chart,
        [turned_away(&o.protected), turned_away(&o.throttled)],
        [PROTECTED, THROTTLED]
    );

    draw_key(&key, &summaries)?;
    root.present()?;
    Ok(())
}

/// The key, below the panels so that it covers no data, what a dot means, and the per-phase
/// figures.
fn draw_key<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    summaries: &[PhaseSummary],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let font = ("sans-serif", 14).into_font();
    let mut x = 80;
    for (colour, name, width) in [
        (UNPROTECTED, "no breaker", 140),
        (PROTECTED, "breaker (trip rules)", 200),
        (THROTTLED, "throttle (no trip rule)", 220),
    ] {
        area.draw(&PathElement::new(
            [(x, 18), (x + 24, 18)],
            colour.stroke_width(2),
        ))?;
        area.draw(&Circle::new((x + 12, 18), 2, colour.filled()))?;
        area.draw(&Text::new(name, (x + 30, 11), font.clone()))?;
        x += width;
    }
    area.draw(&PathElement::new(
        [(x, 18), (x + 24, 18)],
        SCHEDULE.stroke_width(1),
    ))?;
    area.draw(&Text::new(
        "backend error rate as scheduled (1 = timeouts)",
        (x + 30, 11),
        font.clone(),
    ))?;
    let mut x = 80;
    for (state, name) in [
        (State::Closed, "breaker closed"),
        (State::Open, "breaker open"),
        (State::HalfOpen, "breaker half-open"),
    ] {
        area.draw(&Rectangle::new(
            [(x, 35), (x + 24, 49)],
            band(state).filled(),
        ))?;
        area.draw(&Text::new(name, (x + 30, 35), font.clone()))?;
        x += 150;
    }
    area.draw(&TriangleMarker::new((x + 12, 42), 7, PROTECTED.filled()))?;
    area.draw(&TriangleMarker::new((x + 28, 42), 7, THROTTLED.filled()))?;
    area.draw(&Text::new(
        "back to full traffic after the recovery (>= 90 % of the no-breaker calls over 500 ms)",
        (x + 42, 35),
        font.clone(),
    ))?;
    area.draw(&Text::new(
        "Each dot is one 100 ms interval; lines join neighbouring intervals. A lone dot is an \
         interval whose neighbours had no call reach the backend (while open, only a probe ran).",
        (80, 62),
        ("sans-serif", 13).into_font(),
    ))?;

    // The per-phase figures, one column per phase.
    let small = ("sans-serif", 13).into_font();
    let (left, first, column, line) = (80, 400, 130, 18);
    let mut y = 92;
    for (i, row) in summaries.iter().take(Phase::ALL.len()).enumerate() {
        area.draw(&Text::new(
            row.phase,
            (first + column * i as i32, y),
            ("sans-serif", 13).into_font().style(FontStyle::Bold),
        ))?;
    }
    type Cell = fn(&crate::report::RunSummary) -> Option<String>;
    let rows: [(&str, Cell); 3] = [
        ("backend calls saved", |r| {
            r.saved.map(|s| format!("{:.1} %", 100.0 * s))
        }),
        ("successful calls", |r| Some(r.totals.successes.to_string())),
        ("full traffic after the phase began", |r| {
            (r.full_after != FullAfter::NotApplicable).then(|| r.full_after.to_string())
        }),
    ];
    for (label, cell) in rows {
        for (k, colour) in COLOURS.iter().enumerate() {
            let cells: Vec<Option<String>> = summaries
                .iter()
                .take(Phase::ALL.len())
                .map(|row| cell(&row.runs[k]))
                .collect();
            if cells.iter().all(Option::is_none) {
                continue;
            }
            y += line;
            let run = summaries[0].runs[k].run;
            area.draw(&Text::new(
                format!("{label}: {run}"),
                (left, y),
                small.clone().color(colour),
            ))?;
            for (i, text) in cells.into_iter().enumerate() {
                area.draw(&Text::new(
                    text.unwrap_or_default(),
                    (first + column * i as i32, y),
                    small.clone().color(colour),
                ))?;
            }
        }
    }
    Ok(())
}
