//! The report: text for a person, a registry table to paste.

use std::fmt::Write;

use hotbreaker::Config;

use crate::Tuned;
use crate::replay::Score;

/// The recommended configuration as a registry file table `[breakers.NAME]`.
pub fn registry_table(name: &str, config: &Config) -> String {
    let mut breakers = toml::Table::new();
    let value = toml::Value::try_from(config).expect("a Config always serializes");
    breakers.insert(name.to_owned(), value);
    let mut doc = toml::Table::new();
    doc.insert("breakers".to_owned(), toml::Value::Table(breakers));
    toml::to_string(&doc).expect("a table always serializes")
}

fn times(ts: &[Option<std::time::Duration>]) -> String {
    if ts.is_empty() {
        return "–".to_owned();
    }
    ts.iter()
        .map(|t| t.map_or_else(|| "never".to_owned(), human_ms))
        .collect::<Vec<_>>()
        .join(", ")
}

fn human_ms(d: std::time::Duration) -> String {
    if d.as_millis() >= 10_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// One row of the comparison table.
fn row(o: &mut String, label: &str, s: &Score) {
    let _ = writeln!(
        o,
        "  {label:<24} {:>9} of {:<9} ({:>5.1}%)  {:>7} of {:<9} ({:>6.3}%)  {:>5} {:>5}  detect {} · recover {}",
        s.saved,
        s.incident_calls,
        s.saved_share() * 100.0,
        s.wrongly_rejected,
        s.good,
        s.wrong_share() * 100.0,
        s.opens,
        s.transitions,
        times(&s.detect),
        times(&s.recover),
    );
}

fn header(o: &mut String) {
    let _ = writeln!(
        o,
        "  {:<24} {:>31}  {:>32}  {:>5} {:>5}",
        "", "saved (incident calls)", "good calls turned away", "opens", "trans"
    );
}

/// The whole text report.
pub fn text(t: &Tuned) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "trace {:?}: {} calls over {:.1}s; training {:.1}s ({} incidents), held out {:.1}s ({} incidents)",
        t.name,
        t.calls,
        t.span.as_secs_f64(),
        t.train_span.as_secs_f64(),
        t.train_incidents.len(),
        t.holdout_span.as_secs_f64(),
        t.holdout_incidents.len()
    );
    for (label, incidents, from) in [
        ("training", &t.train_incidents, std::time::Duration::ZERO),
        ("held out", &t.holdout_incidents, t.split),
    ] {
        for i in incidents.iter() {
            let _ = writeln!(
                o,
                "  incident ({label}): {:.1}s–{:.1}s",
                (from + i.start).as_secs_f64(),
                (from + i.end).as_secs_f64()
            );
        }
    }
    let _ = writeln!(
        o,
        "searched {} configurations ({} replayed calls at {:.1} M calls/s on one core); preference: a good call turned away costs {} saved backend calls",
        t.search.evaluated.len(),
        t.replayed,
        t.one_core_rate / 1e6,
        t.preference.wrong_cost
    );
    let _ = writeln!(o, "\nPareto frontier (training part):");
    let _ = writeln!(
        o,
        "  {:>9} {:>9} {:>5}  configuration",
        "saved", "wrong", "opens"
    );
    for &i in &t.frontier {
        let e = &t.search.evaluated[i];
        let _ = writeln!(
            o,
            "  {:>9} {:>9} {:>5}  {}",
            e.score.saved, e.score.wrongly_rejected, e.score.opens, e.candidate
        );
    }
    let _ = writeln!(o, "\nrecommended: {}", t.search.best.candidate);
    header(&mut o);
    row(&mut o, "training", &t.search.best.score);
    row(&mut o, "held out", &t.best_holdout);
    if let Some(c) = &t.current {
        let _ = writeln!(o, "\ncurrent configuration:");
        header(&mut o);
        row(&mut o, "training", &c.train);
        row(&mut o, "held out", &c.holdout);
    }
    if t.holdout_incidents.is_empty() {
        let _ = writeln!(
            o,
            "\nnote: the held-out part has no incident, so it checks only that the recommendation does not turn healthy traffic away"
        );
    }
    let _ = writeln!(o, "\n# paste into the registry file:\n{}", t.toml);
    o
}
