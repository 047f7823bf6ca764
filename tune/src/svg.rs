//! The frontier as an SVG picture: every point tried, the frontier, the recommendation and
//! today's configuration.

use std::fmt::Write;

use crate::replay::Score;

const W: f64 = 760.0;
const H: f64 = 480.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 30.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

/// Points to draw.
#[derive(Debug)]
pub struct Picture<'a> {
    pub title: &'a str,
    pub all: Vec<&'a Score>,
    pub frontier: Vec<&'a Score>,
    pub recommended: &'a Score,
    pub current: Option<&'a Score>,
}

/// Text as SVG character data: markup escaped, characters XML does not allow replaced.
fn escape(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '&' => "&amp;".to_owned(),
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '"' => "&quot;".to_owned(),
            c if (c as u32) < 0x20 || matches!(c as u32, 0xFFFE | 0xFFFF) => "\u{FFFD}".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

/// The picture as SVG text.
pub fn render(p: &Picture<'_>) -> String {
    let points = p.all.iter().chain(p.current.iter());
    let max_x = points
        .clone()
        .map(|s| s.wrongly_rejected)
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let max_y = points.map(|s| s.saved).max().unwrap_or(0).max(1) as f64;
    let x = |s: &Score| LEFT + s.wrongly_rejected as f64 / max_x * (W - LEFT - RIGHT);
    let y = |s: &Score| H - BOTTOM - s.saved as f64 / max_y * (H - TOP - BOTTOM);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(o, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        o,
        r#"<text x="{LEFT}" y="24" font-size="15">{}</text>"#,
        escape(p.title)
    );
    // Axes and ticks.
    let (x0, y0) = (LEFT, H - BOTTOM);
    let _ = writeln!(
        o,
        r#"<line x1="{x0}" y1="{y0}" x2="{}" y2="{y0}" stroke="black"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{TOP}" stroke="black"/>"#,
        W - RIGHT
    );
    for k in 0..=4 {
        let f = f64::from(k) / 4.0;
        let tx = LEFT + f * (W - LEFT - RIGHT);
        let ty = H - BOTTOM - f * (H - TOP - BOTTOM);
        let _ = writeln!(
            o,
            r#"<text x="{tx}" y="{}" text-anchor="middle">{:.0}</text><text x="{}" y="{}" text-anchor="end">{:.0}</text>"#,
            y0 + 18.0,
            f * max_x,
            x0 - 6.0,
            ty + 4.0,
            f * max_y
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">good calls turned away</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 16.0
    );
    let _ = writeln!(
        o,
        r#"<text transform="translate(18 {}) rotate(-90)" text-anchor="middle">backend calls saved during incidents</text>"#,
        (TOP + H - BOTTOM) / 2.0
    );
    for s in &p.all {
        let _ = writeln!(
            o,
            r##"<circle cx="{:.1}" cy="{:.1}" r="3" fill="#bbbbbb"/>"##,
            x(s),
            y(s)
        );
    }
    let path: Vec<String> = p
        .frontier
        .iter()
        .map(|s| format!("{:.1},{:.1}", x(s), y(s)))
        .collect();
    let _ = writeln!(
        o,
        r##"<polyline points="{}" fill="none" stroke="#1f77b4" stroke-width="2"/>"##,
        path.join(" ")
    );
    for s in &p.frontier {
        let _ = writeln!(
            o,
            r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="#1f77b4"/>"##,
            x(s),
            y(s)
        );
    }
    let r = p.recommended;
    let _ = writeln!(
        o,
        r##"<circle cx="{:.1}" cy="{:.1}" r="7" fill="none" stroke="#d62728" stroke-width="3"/>"##,
        x(r),
        y(r)
    );
    let mut legend = vec![
        ("#bbbbbb", "tried"),
        ("#1f77b4", "frontier"),
        ("#d62728", "recommended"),
    ];
    if let Some(c) = p.current {
        let _ = writeln!(
            o,
            r##"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="#2ca02c"/>"##,
            x(c) - 5.0,
            y(c) - 5.0
        );
        legend.push(("#2ca02c", "current"));
    }
    for (i, (colour, label)) in legend.iter().enumerate() {
        // Lower right: the corner a frontier (more saved for more turned away) leaves empty.
        let ly = H - BOTTOM - 16.0 * (legend.len() - i) as f64 - 8.0;
        let _ = writeln!(
            o,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{colour}"/><text x="{}" y="{}">{label}</text>"#,
            W - RIGHT - 110.0,
            ly,
            W - RIGHT - 95.0,
            ly + 9.0
        );
    }
    o.push_str("</svg>\n");
    o
}
