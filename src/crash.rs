//! Named crash points: places in the storage and state-machine code where a
//! test can make the process abort, to check that what was acknowledged
//! survives a crash at exactly that moment.
//!
//! A test arms points through the environment of a `meridian` process:
//!
//! - `MERIDIAN_CRASH_AT=after_log_append` (or a comma-separated list) names
//!   the points;
//! - `MERIDIAN_CRASH_AFTER=N` aborts on the N-th hit of a point (default 1),
//!   so a crash can land in the middle of a load rather than on its first
//!   write.
//!
//! Invariants:
//! - the environment is read once per process; after that a disarmed hit
//!   costs one atomic load (the `OnceLock`) and a bit test;
//! - an armed point aborts with `std::process::abort` (no unwinding, no
//!   destructors, no flush), after exactly one `eprintln!` naming it, so the
//!   test can tell this crash from any other;
//! - a name that is not a crash point, or a count that is not a positive
//!   integer, is reported once as a warning: a typo must not silently turn a
//!   crash test into a test that never crashes.
//!
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the points to arm.
pub const CRASH_AT_ENV: &str = "MERIDIAN_CRASH_AT";
/// The variable giving the hit on which an armed point aborts.
pub const CRASH_AFTER_ENV: &str = "MERIDIAN_CRASH_AFTER";
/// The hit that aborts when `MERIDIAN_CRASH_AFTER` is absent.
const CRASH_AFTER_DEFAULT: u64 = 1;
/// What the abort message starts with; tests look for it in the log.
pub const ABORT_MESSAGE_PREFIX: &str = "meridian: crash point";

/// A place where the process can be made to abort.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CrashPoint {
    /// Log writer: entries written and flushed, before the callback tells
    /// openraft they are durable.
    AfterLogAppend,
    /// Log writer: one purge chunk deleted, before the next one.
    MidLogPurge,
    /// State store import: the fresh generation is written and flushed,
    /// before the pointer switches to it.
    MidSnapshotInstall,
    /// Snapshot builder: the snapshot file is saved, before it is returned
    /// to openraft.
    AfterSnapshotBuild,
    /// State machine: a batch is applied to sled, before the replies go
    /// back to openraft (and so to the clients).
    AfterApplyBatch,
    /// Read region leader: shipped entries are applied, before the write
    /// region hears of them (the acknowledgement is about to go out).
    AfterShipBeforeAck,
    /// Region taking over the writes: the meta group committed the new
    /// epoch, before this region's replica set begins it (so before it
    /// takes any write).
    AfterEpochChange,
}

impl CrashPoint {
    pub const ALL: [CrashPoint; 7] = [
        CrashPoint::AfterLogAppend,
        CrashPoint::MidLogPurge,
        CrashPoint::MidSnapshotInstall,
        CrashPoint::AfterSnapshotBuild,
        CrashPoint::AfterApplyBatch,
        CrashPoint::AfterShipBeforeAck,
        CrashPoint::AfterEpochChange,
    ];

    /// The name `MERIDIAN_CRASH_AT` uses.
    pub fn name(self) -> &'static str {
        match self {
            CrashPoint::AfterLogAppend => "after_log_append",
            CrashPoint::MidLogPurge => "mid_log_purge",
            CrashPoint::MidSnapshotInstall => "mid_snapshot_install",
            CrashPoint::AfterSnapshotBuild => "after_snapshot_build",
            CrashPoint::AfterApplyBatch => "after_apply_batch",
            CrashPoint::AfterShipBeforeAck => "after_ship_before_ack",
            CrashPoint::AfterEpochChange => "after_epoch_change",
        }
    }

    pub fn from_name(name: &str) -> Option<CrashPoint> {
        CrashPoint::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The point's position in `ALL`, for the hit counters and the bit set.
    fn slot(self) -> usize {
        self as usize
    }
}

impl std::fmt::Display for CrashPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What the environment asks for: the armed points and the hit that
/// aborts, plus a warning for every part that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashPlan {
    pub armed: Vec<CrashPoint>,
    pub after: u64,
    pub warnings: Vec<String>,
}

impl CrashPlan {
    pub fn is_armed(&self, point: CrashPoint) -> bool {
        self.armed.contains(&point)
    }
}

/// The plan for the two variables' values (`None` when unset). Pure, so the
/// parsing is tested without touching the process environment.
pub fn parse_plan(crash_at: Option<&str>, crash_after: Option<&str>) -> CrashPlan {
    let mut armed = Vec::new();
    let mut warnings = Vec::new();
    for name in crash_at.unwrap_or("").split(',').map(str::trim) {
        if name.is_empty() {
            continue;
        }
        match CrashPoint::from_name(name) {
            Some(point) if !armed.contains(&point) => armed.push(point),
            Some(_) => {}
            None => warnings.push(format!(
                "{CRASH_AT_ENV} names `{name}`, which is no crash point (known: {}); it is ignored",
                known_names()
            )),
        }
    }
    let after = match crash_after.map(str::trim) {
        None | Some("") => CRASH_AFTER_DEFAULT,
        Some(text) => match text.parse::<u64>() {
            Ok(n) if n > 0 => n,
            _ => {
                warnings.push(format!(
                    "{CRASH_AFTER_ENV}=`{text}` is not a positive integer; using {CRASH_AFTER_DEFAULT}"
                ));
                CRASH_AFTER_DEFAULT
            }
        },
    };
    if crash_at.is_none() && crash_after.is_some() {
        warnings.push(format!(
            "{CRASH_AFTER_ENV} is set but {CRASH_AT_ENV} is not; no crash point is armed"
        ));
    }
    CrashPlan {
        armed,
        after,
        warnings,
    }
}

fn known_names() -> String {
    CrashPoint::ALL.map(CrashPoint::name).join(", ")
}

/// The process-wide plan with a hit counter per point.
struct Armed {
    /// Bit `slot` set when that point is armed; a plain field, so a
    /// disarmed hit reads no atomic beyond the `OnceLock`.
    mask: u32,
    after: u64,
    hits: [AtomicU64; CrashPoint::ALL.len()],
}

static ARMED: OnceLock<Armed> = OnceLock::new();

fn armed() -> &'static Armed {
    ARMED.get_or_init(|| {
        let at = std::env::var(CRASH_AT_ENV).ok();
        let after = std::env::var(CRASH_AFTER_ENV).ok();
        let plan = parse_plan(at.as_deref(), after.as_deref());
        // Reported here, inside the one-time initialisation, so each
        // warning appears once per process however many nodes it runs.
        for warning in &plan.warnings {
            tracing::warn!("{warning}");
        }
        for point in &plan.armed {
            tracing::warn!(
                "crash point {point} is armed: the process aborts on hit {}",
                plan.after
            );
        }
        Armed {
            mask: plan.armed.iter().fold(0, |m, p| m | (1 << p.slot())),
            after: plan.after,
            hits: Default::default(),
        }
    })
}

/// Reads the environment now and reports what it arms and what it could not
/// understand. Called at node start-up so a typo shows before any load;
/// later calls do nothing.
pub fn arm_from_env() {
    armed();
}

/// Aborts the process if `point` is armed and this is the hit it waits for.
pub fn crash_point(point: CrashPoint) {
    let armed = armed();
    if armed.mask & (1 << point.slot()) == 0 {
        return;
    }
    let hit = armed.hits[point.slot()].fetch_add(1, Ordering::Relaxed) + 1;
    if hit == armed.after {
        eprintln!(
            "{ABORT_MESSAGE_PREFIX} {point} reached (hit {hit} of {CRASH_AFTER_ENV}={}), aborting",
            armed.after
        );
        std::process::abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_slots_match_all() {
        for (i, point) in CrashPoint::ALL.into_iter().enumerate() {
            assert_eq!(CrashPoint::from_name(point.name()), Some(point));
            assert_eq!(point.slot(), i);
        }
        assert_eq!(CrashPoint::from_name("after_log_appends"), None);
    }

    #[test]
    fn unset_arms_nothing_and_warns_nothing() {
        let plan = parse_plan(None, None);
        assert!(plan.armed.is_empty());
        assert_eq!(plan.after, CRASH_AFTER_DEFAULT);
        assert!(plan.warnings.is_empty());
        assert_eq!(parse_plan(Some(""), None), plan);
    }

    #[test]
    fn one_point_defaults_to_the_first_hit() {
        let plan = parse_plan(Some("mid_log_purge"), None);
        assert_eq!(plan.armed, [CrashPoint::MidLogPurge]);
        assert_eq!(plan.after, 1);
        assert!(plan.warnings.is_empty());
        assert!(plan.is_armed(CrashPoint::MidLogPurge));
        assert!(!plan.is_armed(CrashPoint::AfterLogAppend));
    }

    #[test]
    fn lists_are_trimmed_and_deduplicated_with_a_count() {
        let plan = parse_plan(
            Some(" after_apply_batch , after_snapshot_build,after_apply_batch,"),
            Some(" 25 "),
        );
        assert_eq!(
            plan.armed,
            [CrashPoint::AfterApplyBatch, CrashPoint::AfterSnapshotBuild]
        );
        assert_eq!(plan.after, 25);
        assert!(plan.warnings.is_empty());
    }

    #[test]
    fn an_unknown_name_is_ignored_with_a_warning_naming_it() {
        let plan = parse_plan(Some("after_log_apend,mid_snapshot_install"), None);
        assert_eq!(plan.armed, [CrashPoint::MidSnapshotInstall]);
        assert_eq!(plan.warnings.len(), 1);
        assert!(plan.warnings[0].contains("`after_log_apend`"));
        assert!(plan.warnings[0].contains("after_log_append"));
    }

    #[test]
    fn a_bad_count_falls_back_to_the_first_hit_with_a_warning() {
        for bad in ["0", "-3", "ten", "1.5"] {
            let plan = parse_plan(Some("after_log_append"), Some(bad));
            assert_eq!(plan.after, CRASH_AFTER_DEFAULT, "{bad}");
            assert_eq!(plan.warnings.len(), 1, "{bad}");
            assert!(plan.warnings[0].contains(bad));
        }
    }

    #[test]
    fn a_count_without_points_warns() {
        let plan = parse_plan(None, Some("3"));
        assert!(plan.armed.is_empty());
        assert_eq!(plan.warnings.len(), 1);
    }

    #[test]
    fn a_disarmed_point_does_not_abort() {
        // The test process has no MERIDIAN_CRASH_AT (the suite never sets
        // it), so every point must return.
        if std::env::var_os(CRASH_AT_ENV).is_none() {
            for point in CrashPoint::ALL {
                crash_point(point);
            }
        }
    }
}
