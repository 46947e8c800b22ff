//! The bench report: from the merged latency histogram, the error counts
//! and the elapsed time to throughput and percentiles, then to a table or
//! JSON. Pure, so the arithmetic is tested without a server.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::bench::args::BenchOp;

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
            w.endpoint,
        );
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
        out
    }
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
    }
}
