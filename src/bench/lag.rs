//! The replication lag a bench run observed: while the workload runs, the
//! bench samples `Admin.Status` every [`LAG_SAMPLE_INTERVAL`] and keeps,
//! per read region, the distribution of its lag behind the write region in
//! milliseconds and in operations. Regions without lag figures (the write
//! region, or any the write region could not ask) are left out, so a
//! single-region account reports nothing. The summary is pure.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::time::Instant;

use crate::client::{Client, ReadRegionLag};

/// How often the bench asks for the account's status.
pub const LAG_SAMPLE_INTERVAL: Duration = Duration::from_millis(100);
/// How long one status sample may take; a slower answer is a failed sample
/// rather than a hole that delays the end of the run.
pub const LAG_SAMPLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Three significant figures, as for the latencies.
const LAG_SIGNIFICANT_FIGURES: u8 = 3;

/// p50, p99 and max of one lag figure over a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LagQuantiles {
    pub samples: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
}

/// One read region's lag over the run; a figure never reported is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RegionLag {
    pub region: String,
    pub lag_ms: Option<LagQuantiles>,
    pub lag_ops: Option<LagQuantiles>,
}

/// The samples of one run, by region.
#[derive(Debug, Default)]
pub struct LagSamples {
    by_region: BTreeMap<String, RegionSamples>,
    /// Status calls that failed or timed out.
    pub failed: u64,
}

#[derive(Debug)]
struct RegionSamples {
    lag_ms: Histogram<u64>,
    lag_ops: Histogram<u64>,
}

impl RegionSamples {
    fn new() -> RegionSamples {
        // Auto-resizing: a lag has no useful upper bound, and the size
        // grows with the logarithm of the largest value only.
        let histogram = || {
            Histogram::new(LAG_SIGNIFICANT_FIGURES).expect("three significant figures are valid")
        };
        RegionSamples {
            lag_ms: histogram(),
            lag_ops: histogram(),
        }
    }
}

impl LagSamples {
    /// Records one status sample's figures.
    pub fn observe(&mut self, lags: &[ReadRegionLag]) {
        for lag in lags {
            if lag.lag_ms.is_none() && lag.lag_ops.is_none() {
                continue;
            }
            let region = self
                .by_region
                .entry(lag.region.clone())
                .or_insert_with(RegionSamples::new);
            if let Some(ms) = lag.lag_ms {
                region.lag_ms.saturating_record(ms);
            }
            if let Some(ops) = lag.lag_ops {
                region.lag_ops.saturating_record(ops);
            }
        }
    }

    /// One line per region that reported any figure, by name.
    pub fn summary(&self) -> Vec<RegionLag> {
        self.by_region
            .iter()
            .map(|(region, samples)| RegionLag {
                region: region.clone(),
                lag_ms: quantiles(&samples.lag_ms),
                lag_ops: quantiles(&samples.lag_ops),
            })
            .collect()
    }
}

fn quantiles(h: &Histogram<u64>) -> Option<LagQuantiles> {
    if h.is_empty() {
        return None;
    }
    Some(LagQuantiles {
        samples: h.len(),
        p50: h.value_at_quantile(0.50),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    })
}

/// Samples the account's status from `client` until `deadline`. Stops at
/// the first answer that shows a single region: there is no lag to watch.
pub async fn sample_until(client: Client, deadline: Instant) -> LagSamples {
    let mut samples = LagSamples::default();
    let mut ticker = tokio::time::interval(LAG_SAMPLE_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    while Instant::now() < deadline {
        ticker.tick().await;
        match tokio::time::timeout(LAG_SAMPLE_TIMEOUT, client.replication_lag()).await {
            Ok(Ok(lag)) if lag.regions <= 1 => break,
            Ok(Ok(lag)) => samples.observe(&lag.read_regions),
            Ok(Err(_)) | Err(_) => samples.failed += 1,
        }
    }
    samples
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lag(region: &str, ops: Option<u64>, ms: Option<u64>) -> ReadRegionLag {
        ReadRegionLag {
            region: region.to_string(),
            lag_ops: ops,
            lag_ms: ms,
        }
    }

    #[test]
    fn quantiles_per_region_come_from_every_sample() {
        let mut samples = LagSamples::default();
        for i in 1..=100 {
            samples.observe(&[
                lag("east", Some(i * 10), Some(i)),
                lag("north", None, Some(7)),
            ]);
        }
        let summary = samples.summary();
        assert_eq!(summary.len(), 2);
        assert_eq!(summary[0].region, "east");
        let ms = summary[0].lag_ms.unwrap();
        assert_eq!((ms.samples, ms.p50, ms.p99, ms.max), (100, 50, 99, 100));
        let ops = summary[0].lag_ops.unwrap();
        assert_eq!((ops.p50, ops.max), (500, 1000));
        // 990 within three significant figures.
        assert!((989..=991).contains(&ops.p99), "{ops:?}");
        assert_eq!(summary[1].region, "north");
        assert_eq!(summary[1].lag_ops, None);
        assert_eq!(summary[1].lag_ms.unwrap().max, 7);
    }

    #[test]
    fn regions_without_figures_are_left_out() {
        let mut samples = LagSamples::default();
        samples.observe(&[lag("west", None, None)]);
        assert!(samples.summary().is_empty());
        // A lag of zero is a figure: the region kept up.
        samples.observe(&[lag("east", Some(0), Some(0))]);
        let summary = samples.summary();
        assert_eq!(summary.len(), 1);
        assert_eq!(summary[0].lag_ms.unwrap().max, 0);
    }
}
