//! The bench report: from the merged latency histogram, the error counts
//! and the elapsed time to throughput and percentiles, then to a table or
//! JSON; with an open-loop run, how many operations started late or never;
//! on a multi-region account, the replication lag per read region. Pure, so
//! the arithmetic is tested without a server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::args::BenchOp;
use crate::bench::lag::{LagQuantiles, RegionLag};
use crate::bench::schedule::LATE_AFTER;

/// Latencies are recorded in microseconds between these bounds; a slower
/// operation is recorded as the maximum (a request times out well before).
pub const LATENCY_US_MIN: u64 = 1;
pub const LATENCY_US_MAX: u64 = 60_000_000;
/// Three significant figures: 0.1 % error, as most latency tools report.
pub const LATENCY_SIGNIFICANT_FIGURES: u8 = 3;

/// An empty histogram with the bounds every bench task uses, so they merge.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(LATENCY_US_MIN, LATENCY_US_MAX, LATENCY_SIGNIFICANT_FIGURES)
        .expect("the latency bounds are valid constants")
}

/// What was run, echoed in the report so two numbers can be compared.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    pub op: BenchOp,
    /// `None` is the account default.
    pub consistency: Option<String>,
    pub clients: u64,
    pub connections: u64,
    pub value_bytes: u64,
    pub keys: u64,
    pub endpoint: String,
    /// The preferred regions asked for, first choice first.
    pub regions: Vec<String>,
    /// The node the workload ran against: `endpoint`, or the node chosen
    /// in the preferred regions.
    pub target: String,
    /// Operations per second of an open-loop run; `None` is closed-loop.
    pub rate_ops_per_s: Option<u64>,
}

/// How well an open-loop run kept to its schedule. Latencies are measured
/// from each operation's intended start, so late starts are in them too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct OpenLoop {
    pub rate_ops_per_s: u64,
    /// Operations due before the end of the run.
    pub scheduled: u64,
    /// Started more than `LATE_AFTER` after they were due: every client
    /// was busy.
    pub late: u64,
    /// Due, but not started before the run ended.
    pub dropped: u64,
}

/// Latency percentiles of successful operations.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyMs {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub workload: Workload,
    pub elapsed_s: f64,
    /// Successful operations.
    pub ops: u64,
    pub errors: u64,
    /// Failed operations by gRPC code name (`Unavailable`, ...).
    pub errors_by_code: BTreeMap<String, u64>,
    /// Successful operations per second of elapsed time.
    pub throughput_ops_per_s: f64,
    pub latency_ms: LatencyMs,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_loop: Option<OpenLoop>,
    /// Per read region; empty (and left out) on a single-region account.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replication_lag: Vec<RegionLag>,
}

impl Report {
    /// `latency_us` holds one value per successful operation, in
    /// microseconds.
    pub fn new(
        workload: Workload,
        latency_us: &Histogram<u64>,
        errors_by_code: BTreeMap<String, u64>,
        elapsed: Duration,
    ) -> Report {
        let ops = latency_us.len();
        let elapsed_s = elapsed.as_secs_f64();
        // An empty run has no rate rather than an infinite or NaN one.
        let throughput_ops_per_s = if elapsed_s > 0.0 {
            ops as f64 / elapsed_s
        } else {
            0.0
        };
        Report {
            workload,
            elapsed_s,
            ops,
            errors: errors_by_code.values().sum(),
            errors_by_code,
            throughput_ops_per_s,
            latency_ms: latency_percentiles(latency_us),
            open_loop: None,
            replication_lag: Vec::new(),
        }
    }

    /// A small human-readable table.
    pub fn to_table(&self) -> String {
        let w = &self.workload;
        let l = &self.latency_ms;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{} x{} clients over {} connections, {}-byte values, {} keys, consistency {}, {}",
            w.op.as_str(),
            w.clients,
            w.connections,
            w.value_bytes,
            w.keys,
            w.consistency.as_deref().unwrap_or("default"),
            target_text(w),
        );
        if let Some(open) = &self.open_loop {
            let _ = writeln!(
                out,
                "open loop at {} ops/s, latency from each operation's intended start",
                open.rate_ops_per_s
            );
        }
        let _ = writeln!(
            out,
            "{:>10} {:>8} {:>12} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "OPS", "ERRORS", "OPS/S", "P50_MS", "P90_MS", "P99_MS", "P999_MS", "MAX_MS"
        );
        let _ = writeln!(
            out,
            "{:>10} {:>8} {:>12.1} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3}",
            self.ops, self.errors, self.throughput_ops_per_s, l.p50, l.p90, l.p99, l.p999, l.max
        );
        let _ = writeln!(out, "elapsed {:.2} s", self.elapsed_s);
        for (code, count) in &self.errors_by_code {
            let _ = writeln!(out, "errors {code}: {count}");
        }
        if let Some(open) = &self.open_loop {
            out.push_str(&open_loop_text(open));
        }
        if !self.replication_lag.is_empty() {
            out.push_str(&lag_table(&self.replication_lag));
        }
        out
    }
}

/// The endpoint, and the node chosen when a region was asked for.
fn target_text(w: &Workload) -> String {
    if w.regions.is_empty() {
        return w.endpoint.clone();
    }
    format!(
        "{} (region {} through {})",
        w.target,
        w.regions.join(" or "),
        w.endpoint
    )
}

fn open_loop_text(open: &OpenLoop) -> String {
    let mut out = format!(
        "scheduled {}, late {} (started over {} ms after due), dropped {} (never started)\n",
        open.scheduled,
        open.late,
        LATE_AFTER.as_millis(),
        open.dropped
    );
    if open.late > 0 || open.dropped > 0 {
        out.push_str("the clients could not keep up: raise --clients or lower --rate\n");
    }
    out
}

const LAG_COLUMNS: [&str; 8] = [
    "REGION",
    "SAMPLES",
    "LAG_MS_P50",
    "LAG_MS_P99",
    "LAG_MS_MAX",
    "LAG_OPS_P50",
    "LAG_OPS_P99",
    "LAG_OPS_MAX",
];

/// Replication lag per read region; `-` for a figure never reported.
fn lag_table(lags: &[RegionLag]) -> String {
    let mut out = String::from("replication lag behind the write region, sampled every 100 ms:\n");
    let _ = writeln!(
        out,
        "{:<10} {:>8} {:>11} {:>11} {:>11} {:>12} {:>12} {:>12}",
        LAG_COLUMNS[0],
        LAG_COLUMNS[1],
        LAG_COLUMNS[2],
        LAG_COLUMNS[3],
        LAG_COLUMNS[4],
        LAG_COLUMNS[5],
        LAG_COLUMNS[6],
        LAG_COLUMNS[7]
    );
    let figures = |q: Option<LagQuantiles>| match q {
        Some(q) => [q.p50.to_string(), q.p99.to_string(), q.max.to_string()],
        None => ["-".to_string(), "-".to_string(), "-".to_string()],
    };
    for lag in lags {
        let samples = lag.lag_ms.or(lag.lag_ops).map_or(0, |q| q.samples);
        let [ms50, ms99, ms_max] = figures(lag.lag_ms);
        let [ops50, ops99, ops_max] = figures(lag.lag_ops);
        let _ = writeln!(
            out,
            "{:<10} {:>8} {:>11} {:>11} {:>11} {:>12} {:>12} {:>12}",
            lag.region, samples, ms50, ms99, ms_max, ops50, ops99, ops_max
        );
    }
    out
}

fn latency_percentiles(latency_us: &Histogram<u64>) -> LatencyMs {
    // hdrhistogram answers 0 for every quantile of an empty histogram,
    // which is what an empty run should show.
    let ms = |us: u64| us as f64 / 1000.0;
    LatencyMs {
        p50: ms(latency_us.value_at_quantile(0.50)),
        p90: ms(latency_us.value_at_quantile(0.90)),
        p99: ms(latency_us.value_at_quantile(0.99)),
        p999: ms(latency_us.value_at_quantile(0.999)),
        max: ms(latency_us.max()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload {
            op: BenchOp::Put,
            consistency: None,
            clients: 2,
            connections: 1,
            value_bytes: 8,
            keys: 10,
            endpoint: "http://127.0.0.1:7070".to_string(),
            regions: Vec::new(),
            target: "http://127.0.0.1:7070".to_string(),
            rate_ops_per_s: None,
        }
    }

    /// 1000 operations: 1 ms to 1000 ms, one each, so quantile q is about
    /// q * 1000 ms (within hdrhistogram's 3 significant figures).
    fn one_to_a_thousand_ms() -> Histogram<u64> {
        let mut h = latency_histogram();
        for ms in 1..=1000u64 {
            h.record(ms * 1000).unwrap();
        }
        h
    }

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() <= expected * 0.001 + 1e-9
    }

    #[test]
    fn percentiles_and_throughput_come_from_the_histogram() {
        let errors = BTreeMap::from([("Unavailable".to_string(), 3), ("Internal".to_string(), 1)]);
        let r = Report::new(
            workload(),
            &one_to_a_thousand_ms(),
            errors,
            Duration::from_secs(4),
        );
        assert_eq!(r.ops, 1000);
        assert_eq!(r.errors, 4);
        assert!(close(r.throughput_ops_per_s, 250.0));
        assert!(close(r.latency_ms.p50, 500.0), "{:?}", r.latency_ms);
        assert!(close(r.latency_ms.p90, 900.0), "{:?}", r.latency_ms);
        assert!(close(r.latency_ms.p99, 990.0), "{:?}", r.latency_ms);
        assert!(close(r.latency_ms.p999, 999.0), "{:?}", r.latency_ms);
        assert!(close(r.latency_ms.max, 1000.0), "{:?}", r.latency_ms);
    }

    #[test]
    fn an_empty_run_reports_zeros_not_nan() {
        let empty = latency_histogram();
        let r = Report::new(workload(), &empty, BTreeMap::new(), Duration::ZERO);
        assert_eq!((r.ops, r.errors), (0, 0));
        assert_eq!(r.throughput_ops_per_s, 0.0);
        assert_eq!(r.latency_ms.max, 0.0);
    }

    #[test]
    fn table_and_json_carry_the_numbers() {
        let errors = BTreeMap::from([("Unavailable".to_string(), 3)]);
        let r = Report::new(
            workload(),
            &one_to_a_thousand_ms(),
            errors,
            Duration::from_secs(4),
        );
        let table = r.to_table();
        assert!(table.contains("P999_MS"), "{table}");
        assert!(table.contains("250.0"), "{table}");
        assert!(table.contains("errors Unavailable: 3"), "{table}");
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["ops"], 1000);
        assert_eq!(json["errors_by_code"]["Unavailable"], 3);
        assert_eq!(json["workload"]["op"], "put");
        assert!(json["latency_ms"]["p99"].as_f64().unwrap() > 980.0);
        // A closed-loop, single-region run prints nothing about either.
        assert!(json.get("open_loop").is_none(), "{json}");
        assert!(json.get("replication_lag").is_none(), "{json}");
        assert!(!table.contains("open loop"), "{table}");
        assert!(!table.contains("replication lag"), "{table}");
    }

    #[test]
    fn open_loop_and_replication_lag_are_reported_when_present() {
        let mut r = Report::new(
            workload(),
            &one_to_a_thousand_ms(),
            BTreeMap::new(),
            Duration::from_secs(4),
        );
        r.workload.regions = vec!["east".to_string()];
        r.workload.target = "http://10.0.0.5:7070".to_string();
        r.open_loop = Some(OpenLoop {
            rate_ops_per_s: 300,
            scheduled: 1200,
            late: 150,
            dropped: 50,
        });
        let quantiles = |p50, p99, max| LagQuantiles {
            samples: 40,
            p50,
            p99,
            max,
        };
        r.replication_lag = vec![
            RegionLag {
                region: "east".to_string(),
                lag_ms: Some(quantiles(3, 20, 31)),
                lag_ops: Some(quantiles(1, 6, 9)),
            },
            RegionLag {
                region: "north".to_string(),
                lag_ms: Some(quantiles(80, 95, 120)),
                lag_ops: None,
            },
        ];
        let table = r.to_table();
        assert!(
            table.contains("http://10.0.0.5:7070 (region east through http://127.0.0.1:7070)"),
            "{table}"
        );
        assert!(table.contains("open loop at 300 ops/s"), "{table}");
        assert!(table.contains("scheduled 1200, late 150"), "{table}");
        assert!(table.contains("dropped 50"), "{table}");
        assert!(table.contains("could not keep up"), "{table}");
        let east = table.lines().find(|l| l.starts_with("east")).unwrap();
        let cells: Vec<&str> = east.split_whitespace().collect();
        assert_eq!(cells, ["east", "40", "3", "20", "31", "1", "6", "9"]);
        let north = table.lines().find(|l| l.starts_with("north")).unwrap();
        assert!(
            north.trim_end().ends_with("-            -            -"),
            "{table}"
        );

        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["open_loop"]["dropped"], 50);
        assert_eq!(json["replication_lag"][0]["region"], "east");
        assert_eq!(json["replication_lag"][0]["lag_ms"]["p99"], 20);
        assert!(json["replication_lag"][1]["lag_ops"].is_null());
        assert_eq!(json["workload"]["target"], "http://10.0.0.5:7070");
    }

    #[test]
    fn an_open_loop_that_kept_up_says_so_quietly() {
        let open = OpenLoop {
            rate_ops_per_s: 10,
            scheduled: 100,
            late: 0,
            dropped: 0,
        };
        let text = open_loop_text(&open);
        assert_eq!(
            text,
            "scheduled 100, late 0 (started over 10 ms after due), dropped 0 (never started)\n"
        );
    }
}
