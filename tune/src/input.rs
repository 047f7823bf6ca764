//! Reading a trace: the recorder's binary format, or a CSV of timestamp, outcome and latency.

use std::path::Path;
use std::time::Duration;

use hotbreaker::Config;
use hotbreaker::recording::{Event, MAX_SAMPLING, Recorded, Trace};

/// A CSV trace: a header naming the columns `timestamp` (seconds, e.g. since the Unix epoch;
/// fractions allowed), `outcome` (`success`/`ok`, `failure`/`error`, `ignored`, `rejected`;
/// any case) and `latency_ms` (milliseconds, fractions allowed), in any order, other columns
/// ignored; then one row per call, in any order. An optional `weight` column gives how many
/// calls a row stands for.
pub fn from_csv(text: &str, name: &str) -> Result<Trace, String> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let headers = reader
        .headers()
        .map_err(|e| format!("CSV header: {e}"))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let need = |name: &str| {
        column(name).ok_or_else(|| {
            format!("CSV header has no `{name}` column (it needs timestamp, outcome, latency_ms)")
        })
    };
    let (ts, oc, lat) = (need("timestamp")?, need("outcome")?, need("latency_ms")?);
    let weight_col = column("weight");
    let mut rows: Vec<(f64, Recorded, Duration, u32)> = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i + 2;
        let record = record.map_err(|e| format!("CSV line {line}: {e}"))?;
        let field = |c: usize| record.get(c).unwrap_or("");
        let t: f64 = field(ts)
            .parse()
            .ok()
            .filter(|t: &f64| t.is_finite() && *t >= 0.0)
            .ok_or_else(|| {
                format!(
                    "CSV line {line}: timestamp {:?} is not a number of seconds ≥ 0",
                    field(ts)
                )
            })?;
        let outcome = match field(oc).to_ascii_lowercase().as_str() {
            "success" | "ok" => Recorded::Success,
            "failure" | "error" | "fail" => Recorded::Failure,
            "ignored" => Recorded::Ignored,
            "rejected" => Recorded::Rejected,
            other => {
                return Err(format!(
                    "CSV line {line}: outcome {other:?} is not success, failure, ignored or rejected"
                ));
            }
        };
        let latency = field(lat)
            .parse::<f64>()
            .ok()
            .and_then(|ms| Duration::try_from_secs_f64(ms / 1e3).ok())
            .ok_or_else(|| {
                format!(
                    "CSV line {line}: latency_ms {:?} is not a duration in milliseconds ≥ 0",
                    field(lat)
                )
            })?;
        let weight = match weight_col {
            None => 1,
            Some(c) => field(c)
                .parse::<u32>()
                .ok()
                .filter(|w| (1..=MAX_SAMPLING).contains(w))
                .ok_or_else(|| {
                    format!(
                        "CSV line {line}: weight {:?} is not a whole number in 1..={MAX_SAMPLING}",
                        field(c)
                    )
                })?,
        };
        rows.push((t, outcome, latency, weight));
    }
    rows.sort_by(|a, b| a.0.total_cmp(&b.0));
    let first = rows.first().map_or(0.0, |r| r.0);
    // A century from the first call to the last: far past any recording, and far inside
    // every duration the replay adds to it.
    if let Some(last) = rows.last()
        && last.0 - first > 100.0 * 365.25 * 86_400.0
    {
        return Err(format!(
            "CSV timestamps span more than a century ({first:e} to {:e}): not seconds?",
            last.0
        ));
    }
    let events = rows
        .into_iter()
        .map(|(t, outcome, latency, weight)| Event {
            start: Duration::try_from_secs_f64(t - first).unwrap_or(Duration::MAX),
            latency,
            outcome,
            weight,
        })
        .collect();
    Ok(Trace {
        name: name.to_owned(),
        started_unix_ms: (first * 1e3) as u64,
        events,
    })
}

/// Reads `path`: the binary format if it starts with its magic, CSV otherwise.
pub fn read(path: &Path) -> Result<Trace, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    if bytes.starts_with(b"hbtrace") {
        return Trace::decode(&bytes).map_err(|e| format!("{}: {e}", path.display()));
    }
    let text = String::from_utf8(bytes).map_err(|_| {
        format!(
            "{}: neither a hotbreaker trace nor UTF-8 CSV",
            path.display()
        )
    })?;
    let name = path
        .file_stem()
        .map_or_else(String::new, |s| s.to_string_lossy().into_owned());
    from_csv(&text, &name).map_err(|e| format!("{}: {e}", path.display()))
}

/// Today's configuration from a file: a registry file's `[breakers.NAME]` table, else its
/// `[default]` table; or, with neither key, the file as one breaker's settings.
pub fn current_config(path: &Path, name: &str) -> Result<Config, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    config_from_text(&text, name).map_err(|e| format!("{}: {e}", path.display()))
}

/// As [`current_config`], from the file's text.
pub fn config_from_text(text: &str, name: &str) -> Result<Config, String> {
    let doc: toml::Table = text.parse().map_err(|e: toml::de::Error| e.to_string())?;
    let table = match (doc.get("breakers"), doc.get("default")) {
        (Some(toml::Value::Table(b)), _) if b.contains_key(name) => b[name].clone(),
        (_, Some(d)) => d.clone(),
        (Some(_), None) => return Err(format!("no [breakers.{name:?}] table and no [default]")),
        (None, None) => toml::Value::Table(doc),
    };
    let text = toml::to_string(&table).map_err(|e| e.to_string())?;
    Config::from_toml(&text).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csv_becomes_a_sorted_trace() {
        let t = from_csv(
            "outcome,timestamp,latency_ms,host\nOK,1764000000.5,2.5,a\nerror,1764000000.25,200,b\n",
            "api",
        )
        .unwrap();
        assert_eq!(t.events.len(), 2);
        assert_eq!(t.events[0].outcome, Recorded::Failure);
        assert_eq!(t.events[0].start, Duration::ZERO);
        assert_eq!(t.events[1].start, Duration::from_millis(250));
        assert_eq!(t.events[1].latency, Duration::from_micros(2_500));
        assert_eq!(t.started_unix_ms, 1_764_000_000_250);
    }

    #[test]
    fn today_s_configuration_comes_from_the_breaker_s_table_or_the_default() {
        let file = "[default]\nconsecutive_failures = 9\n\n[breakers.api]\nfailure_rate = 0.4\n";
        assert_eq!(
            config_from_text(file, "api").unwrap().failure_rate,
            Some(0.4)
        );
        assert_eq!(
            config_from_text(file, "db").unwrap().consecutive_failures,
            Some(9)
        );
        let bare = "open_timeout = \"3s\"";
        assert!(config_from_text(bare, "x").unwrap().open_timeout.is_some());
        let err = config_from_text("[breakers.api]\nfailure_rate = 2.0\n", "api").unwrap_err();
        assert!(err.contains("failure_rate"), "{err}");
        let err = config_from_text("[breakers.api]\n", "db").unwrap_err();
        assert!(err.contains("no [breakers.\"db\"]"), "{err}");
    }

    #[test]
    fn bad_rows_name_their_line_and_never_panic() {
        let cases = [
            ("timestamp,outcome\n1,ok\n", "no `latency_ms` column"),
            (
                "timestamp,outcome,latency_ms\n1,maybe,2\n",
                "line 2: outcome \"maybe\"",
            ),
            (
                "timestamp,outcome,latency_ms\n1,ok,2\nNaN,ok,2\n",
                "line 3: timestamp",
            ),
            (
                "timestamp,outcome,latency_ms\n1,ok,-2\n",
                "line 2: latency_ms",
            ),
            (
                "timestamp,outcome,latency_ms\n1,ok,1e300\n",
                "line 2: latency_ms",
            ),
            (
                "timestamp,outcome,latency_ms,weight\n1,ok,1,0\n",
                "line 2: weight",
            ),
            ("timestamp,outcome,latency_ms\n1,ok\n", "line 2"),
        ];
        for (text, expected) in cases {
            let err = from_csv(text, "x").unwrap_err();
            assert!(err.contains(expected), "{err:?} lacks {expected:?}");
        }
    }
}
