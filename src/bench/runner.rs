//! Runs `meridian bench`: N client tasks, each with one request in flight,
//! spread over M gRPC channels to the endpoint or to a node of the
//! preferred regions. Closed loop by default: each task starts its next
//! operation when the last one ends. With `--rate` the loop is open: tasks
//! take operation indexes from a shared counter and start each at its slot
//! in the [`Schedule`], so a slow server makes operations late (and their
//! latency counts the wait) instead of slowing the offered load. A `get`
//! run first writes the whole keyspace so every read finds its key. Each
//! task keeps its own latency histogram and error counts, merged once at
//! the end, so the hot loop shares nothing but counters. Meanwhile one task
//! samples the replication lag from the endpoint (see [`crate::bench::lag`]).
//!
//! Invariant: every loop stops by itself once the duration has passed; an
//! operation in flight at that moment is bounded by the request timeout.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::bench::args::{BenchArgs, BenchOp};
use crate::bench::lag;
use crate::bench::report::{OpenLoop, Report, Workload, latency_histogram};
use crate::bench::schedule::{RATE_MAX, Schedule, is_late};
use crate::client::{
    Client, ClientError, ReadOptions, WriteOptions, connect_channel, resolve_endpoint,
};

/// How often the progress bar refreshes its ops/s.
pub const PROGRESS_TICK: Duration = Duration::from_millis(250);
/// A task pauses this long after a failed operation: against a server that
/// is down, errors come back at once and a tight loop would only burn the
/// CPU the server under test needs.
pub const ERROR_BACKOFF: Duration = Duration::from_millis(10);

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("cannot connect: {0}")]
    Connect(#[source] ClientError),
    #[error("prefill of key {key:?} failed: {source}")]
    Prefill { key: String, source: ClientError },
    #[error("a bench task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
    /// The command line refuses these; a caller building `BenchArgs` by
    /// hand gets an error instead of a panic or a run that does nothing.
    #[error("clients, connections and keys must each be at least 1")]
    EmptyWorkload,
    #[error("the rate must be between 1 and {RATE_MAX} operations per second")]
    InvalidRate,
}

/// Runs the workload `args` describes and returns its report.
pub async fn run(args: &BenchArgs) -> Result<Report, BenchError> {
    if args.clients == 0 || args.connections == 0 || args.keys == 0 {
        return Err(BenchError::EmptyWorkload);
    }
    let schedule = match args.rate {
        None => None,
        Some(rate) => Some(Schedule::new(rate).ok_or(BenchError::InvalidRate)?),
    };
    let (target, clients, status_client) = connect_all(args).await?;
    let value = Arc::new(bench_value(args.value_bytes));
    let bar = progress_bar(args);
    if args.op == BenchOp::Get {
        bar.set_message(format!("prefilling {} keys", args.keys));
        prefill(args, &clients, &value).await?;
    }

    let completed = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + args.duration;
    let progress = spawn_progress(bar.clone(), started, deadline, completed.clone());
    let sampler = tokio::spawn(lag::sample_until(status_client, deadline));
    let next_index = Arc::new(AtomicU64::new(0));
    let mut tasks = JoinSet::new();
    for index in 0..args.clients {
        let pace = schedule.map(|schedule| Pace {
            schedule,
            started,
            next_index: next_index.clone(),
        });
        let worker = Worker {
            client: pick(&clients, index).clone(),
            container: args.container.clone(),
            op: args.op,
            consistency: args.consistency,
            keys: args.keys,
            value: value.clone(),
            deadline,
            seed: index,
            completed: completed.clone(),
            pace,
        };
        tasks.spawn(worker.run());
    }
    let mut total = Tally::new();
    while let Some(joined) = tasks.join_next().await {
        total.merge(joined?);
    }
    let elapsed = started.elapsed();
    progress.abort();
    bar.finish_and_clear();
    let lag_samples = sampler.await?;
    let open = schedule.map(|s| open_loop(s, args.duration, &total));
    let mut report = Report::new(
        workload(args, &target),
        &total.latency_us,
        total.errors_by_code,
        elapsed,
    );
    report.open_loop = open;
    report.replication_lag = lag_samples.summary();
    Ok(report)
}

/// How the run kept to its schedule: every due operation either started
/// (on time or late) or was dropped.
fn open_loop(schedule: Schedule, duration: Duration, total: &Tally) -> OpenLoop {
    let scheduled = schedule.scheduled_within(duration);
    OpenLoop {
        rate_ops_per_s: schedule.rate_per_s(),
        scheduled,
        late: total.late,
        dropped: scheduled.saturating_sub(total.started()),
    }
}

/// Resolves the node the workload runs against (the endpoint, or a node of
/// the preferred regions) and opens the workload's channels to it, plus one
/// client on the endpoint itself for the lag samples.
async fn connect_all(args: &BenchArgs) -> Result<(String, Vec<Client>, Client), BenchError> {
    let target = resolve_endpoint(&args.endpoint, &args.regions)
        .await
        .map_err(BenchError::Connect)?;
    let mut clients = Vec::new();
    for _ in 0..args.connections {
        let channel = connect_channel(&target)
            .await
            .map_err(BenchError::Connect)?;
        clients.push(Client::from_channel(channel));
    }
    let status_client = Client::connect_direct(&args.endpoint)
        .await
        .map_err(BenchError::Connect)?;
    Ok((target, clients, status_client))
}

/// Writes every key of the keyspace once, `args.clients` at a time. Writes
/// use the account default level: `--consistency` describes the measured
/// reads, not the set-up.
async fn prefill(
    args: &BenchArgs,
    clients: &[Client],
    value: &Arc<Vec<u8>>,
) -> Result<(), BenchError> {
    let mut tasks = JoinSet::new();
    for first in 0..args.clients.min(args.keys) {
        let client = pick(clients, first).clone();
        let (container, value) = (args.container.clone(), value.clone());
        let (stride, keys) = (args.clients, args.keys);
        tasks.spawn(async move {
            for index in (first..keys).step_by(stride as usize) {
                let key = key_name(index);
                let written = client
                    .put(&container, &key, value.to_vec(), &WriteOptions::default())
                    .await;
                written.map_err(|source| BenchError::Prefill { key, source })?;
            }
            Ok::<(), BenchError>(())
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined??;
    }
    Ok(())
}

/// What an open-loop worker shares with the others: the schedule, the
/// run's start, and the counter handing out operation indexes.
struct Pace {
    schedule: Schedule,
    started: Instant,
    next_index: Arc<AtomicU64>,
}

/// One client: its connection, its share of the workload, its deadline,
/// and in an open-loop run the schedule it follows.
struct Worker {
    client: Client,
    container: String,
    op: BenchOp,
    consistency: Option<crate::consistency::Consistency>,
    keys: u64,
    value: Arc<Vec<u8>>,
    deadline: Instant,
    /// The task index: each task draws its own reproducible key sequence.
    seed: u64,
    completed: Arc<AtomicU64>,
    pace: Option<Pace>,
}

impl Worker {
    async fn run(self) -> Tally {
        match &self.pace {
            None => self.run_closed().await,
            Some(pace) => self.run_open(pace).await,
        }
    }

    /// Takes the next due operation, waits for its slot, runs it, and
    /// charges it from its slot; stops at the first slot at or past the
    /// deadline, or when the deadline passes while operations are still
    /// due (those are counted as dropped by the caller).
    async fn run_open(&self, pace: &Pace) -> Tally {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut tally = Tally::new();
        loop {
            let index = pace.next_index.fetch_add(1, Ordering::Relaxed);
            let intended = pace.started + pace.schedule.intended_start(index);
            if intended >= self.deadline {
                break;
            }
            tokio::time::sleep_until(intended).await;
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            if is_late(intended - pace.started, now - pace.started) {
                tally.late += 1;
            }
            let key = key_name(rng.gen_range(0..self.keys));
            match self.one_op(&key).await {
                Ok(()) => {
                    tally.record(intended.elapsed());
                    self.completed.fetch_add(1, Ordering::Relaxed);
                }
                // No back-off: the schedule, not the outcome, paces the loop.
                Err(e) => tally.error(e.code()),
            }
        }
        tally
    }

    async fn run_closed(&self) -> Tally {
        let mut rng = StdRng::seed_from_u64(self.seed);
        let mut tally = Tally::new();
        while Instant::now() < self.deadline {
            let key = key_name(rng.gen_range(0..self.keys));
            let started = Instant::now();
            match self.one_op(&key).await {
                Ok(()) => {
                    tally.record(started.elapsed());
                    self.completed.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    tally.error(e.code());
                    tokio::time::sleep(ERROR_BACKOFF).await;
                }
            }
        }
        tally
    }

    async fn one_op(&self, key: &str) -> Result<(), ClientError> {
        match self.op {
            BenchOp::Put => {
                let opts = WriteOptions {
                    consistency: self.consistency,
                    session_token: None,
                    no_forward: false,
                };
                let value = self.value.to_vec();
                self.client.put(&self.container, key, value, &opts).await?;
            }
            BenchOp::Get => {
                let opts = ReadOptions {
                    consistency: self.consistency,
                    session_token: None,
                };
                self.client.get(&self.container, key, &opts).await?;
            }
        }
        Ok(())
    }
}

/// One task's results: latencies of successful operations and failures by
/// gRPC code. Failures are kept out of the histogram because a refused
/// request returns at once and would flatter the percentiles.
struct Tally {
    latency_us: Histogram<u64>,
    errors_by_code: BTreeMap<String, u64>,
    /// Open-loop operations that started late (see `schedule::is_late`).
    late: u64,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            latency_us: latency_histogram(),
            errors_by_code: BTreeMap::new(),
            late: 0,
        }
    }

    /// Operations started, whatever their outcome.
    fn started(&self) -> u64 {
        self.latency_us.len() + self.errors_by_code.values().sum::<u64>()
    }

    fn record(&mut self, latency: Duration) {
        let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
        self.latency_us.saturating_record(us);
    }

    fn error(&mut self, code: tonic::Code) {
        *self.errors_by_code.entry(format!("{code:?}")).or_default() += 1;
    }

    fn merge(&mut self, other: Tally) {
        self.latency_us
            .add(&other.latency_us)
            .expect("every task histogram has the same bounds");
        for (code, count) in other.errors_by_code {
            *self.errors_by_code.entry(code).or_default() += count;
        }
        self.late += other.late;
    }
}

/// Hidden when the report goes to a pipe or a file, or is JSON: a bar
/// there is noise in someone's data.
fn progress_bar(args: &BenchArgs) -> ProgressBar {
    if args.json || !std::io::stdout().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(duration_ms(args.duration));
    let style = ProgressStyle::with_template("{bar:30} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    bar.set_style(style);
    bar
}

/// Refreshes the bar every tick with elapsed time and the ops/s of the last
/// tick; stops by itself at the deadline.
fn spawn_progress(
    bar: ProgressBar,
    started: Instant,
    deadline: Instant,
    completed: Arc<AtomicU64>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let total = deadline - started;
        let mut ticker = tokio::time::interval(PROGRESS_TICK);
        let (mut last_at, mut last_done) = (Instant::now(), 0);
        while Instant::now() < deadline {
            ticker.tick().await;
            let (now, done) = (Instant::now(), completed.load(Ordering::Relaxed));
            let rate = ops_per_s(done - last_done, now - last_at);
            let elapsed = (now - started).min(total);
            bar.set_position(duration_ms(elapsed));
            bar.set_message(progress_message(elapsed, total, rate));
            (last_at, last_done) = (now, done);
        }
    })
}

fn progress_message(elapsed: Duration, total: Duration, ops_per_s: f64) -> String {
    format!(
        "{:.1}s / {:.1}s  {:.0} ops/s",
        elapsed.as_secs_f64(),
        total.as_secs_f64(),
        ops_per_s
    )
}

fn ops_per_s(ops: u64, over: Duration) -> f64 {
    if over.is_zero() {
        0.0
    } else {
        ops as f64 / over.as_secs_f64()
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Spreads tasks round-robin over the channels.
fn pick(clients: &[Client], index: u64) -> &Client {
    &clients[(index % clients.len() as u64) as usize]
}

/// Fixed-width names, so keys sort in index order in a scan.
fn key_name(index: u64) -> String {
    format!("key-{index:08}")
}

/// A printable value of the requested size, the same for every write.
fn bench_value(value_bytes: u64) -> Vec<u8> {
    (0..value_bytes).map(|i| b'a' + (i % 26) as u8).collect()
}

fn workload(args: &BenchArgs, target: &str) -> Workload {
    Workload {
        op: args.op,
        consistency: args.consistency.map(|c| c.to_string()),
        clients: args.clients,
        connections: args.connections,
        value_bytes: args.value_bytes,
        keys: args.keys,
        endpoint: args.endpoint.clone(),
        regions: args.regions.clone(),
        target: target.to_string(),
        rate_ops_per_s: args.rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tallies_merge_latencies_and_error_counts() {
        let mut a = Tally::new();
        a.record(Duration::from_millis(2));
        a.error(tonic::Code::Unavailable);
        let mut b = Tally::new();
        b.record(Duration::from_millis(4));
        b.error(tonic::Code::Unavailable);
        b.error(tonic::Code::DeadlineExceeded);
        a.merge(b);
        assert_eq!(a.latency_us.len(), 2);
        assert_eq!(a.errors_by_code["Unavailable"], 2);
        assert_eq!(a.errors_by_code["DeadlineExceeded"], 1);
    }

    #[test]
    fn every_due_operation_is_started_or_dropped() {
        let mut tally = Tally::new();
        for _ in 0..40 {
            tally.record(Duration::from_millis(1));
        }
        for _ in 0..10 {
            tally.error(tonic::Code::Unavailable);
        }
        tally.late = 5;
        assert_eq!(tally.started(), 50);
        let schedule = Schedule::new(100).unwrap();
        let open = open_loop(schedule, Duration::from_secs(1), &tally);
        assert_eq!(
            open,
            OpenLoop {
                rate_ops_per_s: 100,
                scheduled: 100,
                late: 5,
                dropped: 50,
            }
        );
    }

    fn echo_args(endpoint: &str) -> BenchArgs {
        BenchArgs {
            endpoint: endpoint.to_string(),
            clients: 4,
            connections: 2,
            value_bytes: 16,
            duration: Duration::from_millis(400),
            op: BenchOp::Put,
            consistency: None,
            keys: 10,
            container: "bench".to_string(),
            json: true,
            regions: Vec::new(),
            rate: None,
        }
    }

    /// An open-loop run through a preferred region against the stand-in
    /// server, whose status shows a three-region account: every scheduled
    /// operation is accounted for, and the lag of both read regions is
    /// reported.
    #[tokio::test]
    async fn an_open_loop_run_keeps_its_schedule_and_reports_lag() {
        let endpoint = crate::client::testing::start_echo_server().await;
        let args = BenchArgs {
            regions: vec!["north".to_string(), "east".to_string()],
            rate: Some(200),
            ..echo_args(&endpoint)
        };
        let report = run(&args).await.unwrap();
        let open = report.open_loop.unwrap();
        assert_eq!(open.scheduled, 80, "{report:?}");
        assert_eq!(report.ops + report.errors + open.dropped, 80, "{report:?}");
        assert_eq!(report.errors, 0, "{report:?}");
        assert_eq!(report.workload.target, endpoint);
        let regions: Vec<&str> = report
            .replication_lag
            .iter()
            .map(|r| r.region.as_str())
            .collect();
        assert_eq!(regions, ["east", "north"], "{report:?}");
        let east = report.replication_lag[0].lag_ms.unwrap();
        assert_eq!((east.p50, east.max), (5, 5));
    }

    /// The command line refuses these; a caller building `BenchArgs` by
    /// hand gets an error before anything connects.
    #[tokio::test]
    async fn a_rate_out_of_bounds_is_refused_before_connecting() {
        for rate in [0, RATE_MAX + 1] {
            let args = BenchArgs {
                rate: Some(rate),
                ..echo_args("http://127.0.0.1:1")
            };
            let result = run(&args).await;
            assert!(matches!(result, Err(BenchError::InvalidRate)), "{result:?}");
        }
    }

    #[tokio::test]
    async fn an_unknown_region_is_a_connect_error_naming_the_regions() {
        let endpoint = crate::client::testing::start_echo_server().await;
        let args = BenchArgs {
            regions: vec!["mars".to_string()],
            ..echo_args(&endpoint)
        };
        let err = run(&args).await.unwrap_err();
        assert!(err.to_string().contains("east, north, west"), "{err}");
    }

    #[test]
    fn keys_and_values_have_the_requested_shape() {
        assert_eq!(key_name(42), "key-00000042");
        assert!(key_name(3) < key_name(20));
        let value = bench_value(1024);
        assert_eq!(value.len(), 1024);
        assert!(std::str::from_utf8(&value).is_ok());
    }

    #[test]
    fn rates_survive_a_zero_interval() {
        assert_eq!(ops_per_s(10, Duration::ZERO), 0.0);
        assert_eq!(ops_per_s(10, Duration::from_millis(500)), 20.0);
        assert_eq!(
            progress_message(Duration::from_millis(1500), Duration::from_secs(10), 20.0),
            "1.5s / 10.0s  20 ops/s"
        );
    }

    /// Both workloads run against a live (stand-in) server, stop by
    /// themselves at the deadline and count every operation.
    #[tokio::test]
    async fn a_short_run_stops_by_itself_and_counts_operations() {
        let endpoint = crate::client::testing::start_echo_server().await;
        for op in [BenchOp::Put, BenchOp::Get] {
            let args = BenchArgs {
                endpoint: endpoint.clone(),
                clients: 4,
                connections: 2,
                value_bytes: 16,
                duration: Duration::from_millis(300),
                op,
                consistency: Some(crate::consistency::Consistency::Session),
                keys: 10,
                container: "bench".to_string(),
                json: true,
                regions: Vec::new(),
                rate: None,
            };
            let report = run(&args).await.unwrap();
            assert!(report.ops > 0, "{report:?}");
            assert_eq!(report.errors, 0, "{report:?}");
            assert!(report.elapsed_s < 5.0, "{report:?}");
        }
    }

    /// Against an address nothing listens on, the bench fails to connect
    /// quickly instead of hanging.
    #[tokio::test]
    async fn an_unreachable_endpoint_is_a_connect_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let args = BenchArgs {
            duration: Duration::from_secs(1),
            ..echo_args(&format!("http://{addr}"))
        };
        let result = run(&args).await;
        assert!(matches!(result, Err(BenchError::Connect(_))), "{result:?}");
    }
}
