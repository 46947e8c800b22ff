//! Criterion benchmarks of the hot paths that need no network: the codec
//! round trip of a write command, and the state machine applying batches of
//! puts to sled. They isolate the per-write CPU and storage cost, so a
//! regression there shows up here before it blurs into `meridian bench`.
//!
//! Run: `cargo bench -j1 --bench hot_paths -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tokio::runtime::Runtime;

use meridian::codec;
use meridian::command::{Command, Precondition, WriteCommand, WriteOp};
use meridian::hlc::Hlc;
use meridian::ids::{NodeId, RegionId};
use meridian::raft::state_machine::StateMachine;
use meridian::storage::config::StorageConfig;
use meridian::storage::data_dir::Identity;
use meridian::storage::store::Store;

/// A typical small document; large enough that copying the value dominates
/// the fixed per-command overhead.
const VALUE_BYTES: usize = 1024;

/// Batch sizes the state machine sees: a light load and a full append
/// (`raft.max_payload_entries` defaults to 512).
const APPLY_BATCHES: [usize; 2] = [64, 512];

fn put(key: usize) -> Command {
    Command::Writes(vec![WriteCommand {
        container: "bench".into(),
        key: format!("key-{key:06}"),
        op: WriteOp::Put {
            value: vec![0xab; VALUE_BYTES],
            precondition: Precondition::None,
        },
        ts: 1,
        origin_region: RegionId::new("west"),
        epoch: meridian::glsn::EPOCH_INITIAL,
    }])
}

fn codec_round_trip(c: &mut Criterion) {
    let command = put(1);
    let bytes = codec::encode(&command);
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("encode_write_1KiB", |b| {
        b.iter(|| codec::encode(black_box(&command)))
    });
    group.bench_function("decode_write_1KiB", |b| {
        b.iter(|| {
            codec::decode::<Command>("command", black_box(&bytes)).expect("bench bytes decode")
        })
    });
    group.finish();
}

/// One state machine per batch size, kept across iterations: the log index
/// keeps growing (apply asserts it does) and the same keys are overwritten,
/// so the store stays the size of one batch and the figure is steady-state.
fn state_machine_apply(c: &mut Criterion) {
    let runtime = Runtime::new().expect("tokio runtime");
    let mut group = c.benchmark_group("state_machine_apply");
    for batch in APPLY_BATCHES {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut sm = runtime.block_on(open_state_machine(dir.path()));
        let mut next_index = 1u64;
        group.throughput(Throughput::Elements(batch as u64));
        group.bench_function(format!("put_1KiB_x{batch}"), |b| {
            b.iter_batched(
                || (0..batch).map(put).collect::<Vec<_>>(),
                |commands| {
                    let outcomes = runtime
                        .block_on(sm.apply_commands(next_index, 1, commands))
                        .expect("apply");
                    next_index += batch as u64;
                    outcomes
                },
                BatchSize::SmallInput,
            )
        });
    }
    group.finish();
}

async fn open_state_machine(dir: &std::path::Path) -> StateMachine {
    let identity = Identity::new("bench", RegionId::new("west"), NodeId(1));
    let store = Store::open(dir, &StorageConfig::default(), &identity).expect("open store");
    StateMachine::open(store, Arc::new(Hlc::default()), u64::MAX).expect("open state machine")
}

criterion_group!(benches, codec_round_trip, state_machine_apply);
criterion_main!(benches);
