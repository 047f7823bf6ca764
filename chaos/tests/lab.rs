//! The chaos lab on a shortened schedule (about 7 s of real time): the relations the lab exists
//! to show must hold. The brownout has no errors here, so a probe cannot fail just before the
//! recovery and make the closing time depend on luck.

use clap::Parser;
use hotbreaker_chaos::{Options, report, run};

#[test]
fn the_breaker_saves_the_backend_and_recovers() {
    let options = Options::try_parse_from([
        "chaos",
        "--healthy-secs",
        "0.5",
        "--outage-secs",
        "4",
        "--brownout-secs",
        "0.5",
        "--brownout-error-rate",
        "0",
        "--recovered-secs",
        "2",
    ])
    .unwrap();
    let outcome = run(options.validate().unwrap());
    let v = report::verdict(&outcome);
    for (text, ok) in v.holds() {
        println!("[{}] {text}", if ok { "ok" } else { "MISSED" });
    }
    assert!(v.outage_saving >= 0.9, "{v:?}");
    assert!(v.outage_p99_ratio >= 10.0, "{v:?}");
    assert!(
        v.time_to_trip.is_some_and(|d| d.as_secs_f64() <= 1.0),
        "{v:?}"
    );
    assert!(v.time_to_close.is_some_and(|d| d <= v.close_bound), "{v:?}");

    // The outputs: the SVG and the JSON are written and hold what they should.
    let dir = std::env::temp_dir().join(format!("hotbreaker-chaos-{}", std::process::id()));
    let (svg, json) = (dir.join("timeline.svg"), dir.join("intervals.json"));
    hotbreaker_chaos::plot::write(&outcome, &svg).unwrap();
    hotbreaker_chaos::json::write(&outcome, &json).unwrap();
    let svg = std::fs::read_to_string(svg).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("with hotbreaker"));
    let json = std::fs::read_to_string(json).unwrap();
    assert!(json.contains("\"intervals\":[") && json.contains("\"cause\":\"ConsecutiveFailures\""));
    assert_eq!(
        json.matches("\"t_ms\":").count() - outcome.transitions.len(),
        outcome.protected.intervals.len()
    );
    let _ = std::fs::remove_dir_all(dir);
}
