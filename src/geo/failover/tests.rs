use super::*;
use crate::geo::testing::{formed, r, set_state};
use crate::meta::{MetaReply, RegionState, ScheduledSwitchover, Transition};

const NOW_MS: u64 = 1_000_000;
const TIMEOUT_MS: u64 = TRANSITION_TIMEOUT.as_millis() as u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Under {
    Nothing,
    /// A transition started exactly the timeout ago: not given up yet.
    TransitionAtTimeout,
    TransitionPastTimeout,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Schedule {
    None,
    DueNow,
    Later,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Blocked {
    None,
    /// The reason this tick would give.
    Same,
    Other,
}

/// What `failover_step` must answer, written out longhand.
fn expected(
    under: Under,
    schedule: Schedule,
    expired: bool,
    failover_on: bool,
    paused: bool,
    target: bool,
    blocked: Blocked,
) -> &'static str {
    match (under, schedule) {
        (Under::TransitionAtTimeout, _) => return "nothing",
        (Under::TransitionPastTimeout, _) => return "abort",
        (Under::Nothing, Schedule::DueNow) => return "switchover",
        _ => {}
    }
    if expired {
        let blocked_now = !failover_on || paused || !target;
        return match (blocked_now, blocked) {
            (false, _) => "failover",
            (true, Blocked::Same) => "nothing",
            (true, _) => "block",
        };
    }
    match blocked {
        Blocked::None => "nothing",
        _ => "unblock",
    }
}

fn state(
    under: Under,
    schedule: Schedule,
    failover_on: bool,
    paused: bool,
    target: bool,
) -> MetaState {
    let mut meta = formed();
    meta.settings.as_mut().expect("formed").failover = failover_on;
    meta.paused = paused;
    if !target {
        set_state(&mut meta, "east", RegionState::Offline);
        set_state(&mut meta, "north", RegionState::Joining);
    }
    let started_ms = match under {
        Under::Nothing => None,
        Under::TransitionAtTimeout => Some(NOW_MS - TIMEOUT_MS),
        Under::TransitionPastTimeout => Some(NOW_MS - TIMEOUT_MS - 1),
    };
    meta.transition = started_ms.map(|started_ms| Transition {
        from: r("west"),
        to: r("east"),
        reason: ChangeReason::Switchover,
        started_ms,
    });
    meta.scheduled = match schedule {
        Schedule::None => None,
        Schedule::DueNow => Some(ScheduledSwitchover {
            to: r("north"),
            at_ms: NOW_MS,
        }),
        Schedule::Later => Some(ScheduledSwitchover {
            to: r("north"),
            at_ms: NOW_MS + 1,
        }),
    };
    meta
}

/// The reason a blocked failover gives in `meta`, as the step words it.
fn block_reason(meta: &MetaState) -> String {
    match failover_step(
        &MetaState {
            failover_blocked: None,
            transition: None,
            scheduled: None,
            ..meta.clone()
        },
        true,
        NOW_MS,
    ) {
        Some(MetaCommand::SetFailoverBlocked(Some(why))) => why,
        other => panic!("not blocked: {other:?}"),
    }
}

/// Every combination of transition age, schedule, lease expiry, failover
/// setting, pause, target availability and recorded reason.
#[test]
fn the_meta_leader_takes_exactly_one_failover_step_per_case() {
    let bools = [false, true];
    for under in [
        Under::Nothing,
        Under::TransitionAtTimeout,
        Under::TransitionPastTimeout,
    ] {
        for schedule in [Schedule::None, Schedule::DueNow, Schedule::Later] {
            for expired in bools {
                for failover_on in bools {
                    for paused in bools {
                        for target in bools {
                            for blocked in [Blocked::None, Blocked::Same, Blocked::Other] {
                                let mut meta = state(under, schedule, failover_on, paused, target);
                                let blocked_now = !failover_on || paused || !target;
                                meta.failover_blocked = match blocked {
                                    Blocked::None => None,
                                    Blocked::Same if blocked_now => Some(block_reason(&meta)),
                                    Blocked::Same => Some("an older reason".into()),
                                    Blocked::Other => Some("an older reason".into()),
                                };
                                // "Same" only means something when a block
                                // is due; otherwise it is another reason.
                                let blocked = match blocked {
                                    Blocked::Same if !blocked_now => Blocked::Other,
                                    b => b,
                                };
                                let case = format!(
                                    "{under:?} {schedule:?} expired={expired} on={failover_on} paused={paused} target={target} {blocked:?}"
                                );
                                let step = failover_step(&meta, expired, NOW_MS);
                                let want = expected(
                                    under,
                                    schedule,
                                    expired,
                                    failover_on,
                                    paused,
                                    target,
                                    blocked,
                                );
                                check(step, want, &case);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn check(step: Option<MetaCommand>, want: &str, case: &str) {
    match (want, step) {
        ("nothing", None) => {}
        ("abort", Some(MetaCommand::AbortTransition { to, why })) => {
            assert_eq!(to, r("east"), "{case}");
            assert!(why.contains("did not complete within"), "{case}: {why}");
        }
        ("switchover", Some(MetaCommand::BeginTransition { to, reason, at_ms })) => {
            assert_eq!(
                (to, reason, at_ms),
                (r("north"), ChangeReason::Switchover, NOW_MS),
                "{case}"
            );
        }
        ("failover", Some(MetaCommand::BeginTransition { to, reason, at_ms })) => {
            assert_eq!(
                (to, reason, at_ms),
                (r("east"), ChangeReason::Failover, NOW_MS),
                "{case}"
            );
        }
        ("block", Some(MetaCommand::SetFailoverBlocked(Some(why)))) => {
            assert!(
                why.starts_with("the write region's lease expired, but")
                    || why.starts_with("no region can take over"),
                "{case}: {why}"
            );
        }
        ("unblock", Some(MetaCommand::SetFailoverBlocked(None))) => {}
        (want, got) => panic!("{case}: wanted {want}, got {got:?}"),
    }
}

#[test]
fn an_unformed_account_takes_no_step() {
    assert_eq!(failover_step(&MetaState::default(), true, NOW_MS), None);
}

#[test]
fn a_blocked_failover_says_why() {
    let mut meta = formed();
    meta.paused = true;
    assert!(block_reason(&meta).contains("failover is paused"));
    meta.paused = false;
    meta.settings.as_mut().expect("formed").failover = false;
    assert!(block_reason(&meta).contains("service-managed failover is off"));
    meta.settings.as_mut().expect("formed").failover = true;
    set_state(&mut meta, "east", RegionState::Offline);
    set_state(&mut meta, "north", RegionState::Offline);
    assert!(block_reason(&meta).starts_with("no region can take over"));
}

/// Every combination of a fenced lease, a transition (none, away from
/// this region, to it) and whether this region writes.
#[test]
fn the_write_path_is_fenced_by_its_lease_or_a_transition_away() {
    for lease_fenced in [false, true] {
        for transition in [None, Some(("west", "east")), Some(("east", "west"))] {
            for writes in [false, true] {
                let mut meta = formed();
                if !writes {
                    meta.write_region = Some(r("north"));
                }
                meta.transition = transition.map(|(from, to)| Transition {
                    from: r(from),
                    to: r(to),
                    reason: ChangeReason::Switchover,
                    started_ms: 1,
                });
                let case = format!("fenced={lease_fenced} {transition:?} writes={writes}");
                let away = transition.is_some_and(|(from, _)| from == "west");
                match check_write_fence(&meta, &r("west"), lease_fenced) {
                    Ok(()) => assert!(!lease_fenced && !away && writes, "{case}"),
                    Err(Error::Unavailable { region, reason }) => {
                        assert!(lease_fenced || away, "{case}");
                        assert_eq!(region, Some(r("west")));
                        let to = if away {
                            "east"
                        } else if transition.is_some() {
                            "west"
                        } else {
                            "another region"
                        };
                        assert_eq!(
                            reason,
                            format!("writes are moving to {to}; retry there shortly"),
                            "{case}"
                        );
                    }
                    Err(Error::NotWriteRegion {
                        region,
                        write_region,
                        epoch,
                    }) => {
                        assert!(!lease_fenced && !away && !writes, "{case}");
                        assert_eq!((region, write_region), (r("west"), Some(r("north"))));
                        assert_eq!(epoch, meta.epoch, "{case}: the epoch that named it");
                    }
                    Err(other) => panic!("{case}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn a_region_takes_over_only_when_named_and_led_here() {
    let mut meta = formed();
    assert!(!takes_over(&meta, &r("east"), true), "no transition");
    meta.transition = Some(Transition {
        from: r("west"),
        to: r("east"),
        reason: ChangeReason::Failover,
        started_ms: 1,
    });
    assert!(takes_over(&meta, &r("east"), true));
    assert!(!takes_over(&meta, &r("east"), false), "not its leader");
    assert!(!takes_over(&meta, &r("north"), true), "not named");
    assert!(!takes_over(&meta, &r("west"), true), "the region fenced");
}

/// A meta state whose history forked at west's 2:100 into epoch 3.
fn forked() -> MetaState {
    let mut meta = formed();
    meta.epoch = 2;
    assert_eq!(
        meta.apply(MetaCommand::BeginTransition {
            to: r("east"),
            reason: ChangeReason::Failover,
            at_ms: 1,
        }),
        MetaReply::Done
    );
    assert_eq!(
        meta.apply(MetaCommand::CompleteTransition {
            to: r("east"),
            fork: Glsn::new(2, 100),
            at_ms: 2,
        }),
        MetaReply::NewEpoch(3)
    );
    meta
}

#[test]
fn the_fetch_source_is_the_most_advanced_region_the_history_kept() {
    let meta = forked();
    let (n1, n2, n3) = (NodeId(1), NodeId(2), NodeId(3));
    assert_eq!(most_advanced(&meta, []), None);
    // North holds writes past the fork: never a source, however far.
    let reports = [
        (r("west"), n1, Glsn::new(2, 90)),
        (r("north"), n3, Glsn::new(2, 150)),
    ];
    assert_eq!(
        most_advanced(&meta, reports.clone()),
        Some((r("west"), n1, Glsn::new(2, 90)))
    );
    let mut more = reports.to_vec();
    more.push((r("east"), n2, Glsn::new(3, 5)));
    assert_eq!(
        most_advanced(&meta, more),
        Some((r("east"), n2, Glsn::new(3, 5)))
    );
    // At the fork exactly it is kept; on a tie the last answer wins.
    let tie = [
        (r("west"), n1, Glsn::new(2, 100)),
        (r("north"), n3, Glsn::new(2, 100)),
    ];
    assert_eq!(
        most_advanced(&meta, tie),
        Some((r("north"), n3, Glsn::new(2, 100)))
    );
}

#[test]
fn a_read_region_streams_from_the_leader_every_other_try_else_each_node() {
    let nodes = [NodeId(4), NodeId(5), NodeId(6)];
    let picks: Vec<Option<NodeId>> = (0..6)
        .map(|a| pick_source(Some(NodeId(5)), &nodes, a))
        .collect();
    assert_eq!(
        picks,
        [5, 5, 5, 4, 5, 6].map(|n| Some(NodeId(n))).to_vec(),
        "leader on even tries, node attempt % 3 on odd ones"
    );
    let picks: Vec<Option<NodeId>> = (0..4).map(|a| pick_source(None, &nodes, a)).collect();
    assert_eq!(picks, [4, 5, 6, 4].map(|n| Some(NodeId(n))).to_vec());
    assert_eq!(pick_source(None, &[], 3), None);
    assert_eq!(pick_source(Some(NodeId(9)), &[], 2), Some(NodeId(9)));
}

#[test]
fn lost_writes_are_reported_in_the_epoch_that_forked_them_off() {
    let mut meta = forked();
    // Applied in epoch 2: the change after it began epoch 3.
    assert_eq!(lost_in_epoch(&meta, Glsn::new(2, 150)), 3);
    assert_eq!(lost_in_epoch(&meta, Glsn::new(1, 7)), 3);
    // A second change: a region of epoch 3 lost its writes to epoch 4,
    // one of epoch 2 still to epoch 3.
    set_state(&mut meta, "west", RegionState::Online);
    assert_eq!(
        meta.apply(MetaCommand::BeginTransition {
            to: r("west"),
            reason: ChangeReason::Switchover,
            at_ms: 3,
        }),
        MetaReply::Done
    );
    assert_eq!(
        meta.apply(MetaCommand::CompleteTransition {
            to: r("west"),
            fork: Glsn::new(3, 40),
            at_ms: 4,
        }),
        MetaReply::NewEpoch(4)
    );
    assert_eq!(lost_in_epoch(&meta, Glsn::new(3, 41)), 4);
    assert_eq!(lost_in_epoch(&meta, Glsn::new(2, 150)), 3);
    // No change after its epoch: the current one.
    assert_eq!(lost_in_epoch(&meta, Glsn::new(4, 2)), 4);
    assert_eq!(
        meta.fork_after(2),
        Some(Glsn::new(2, 100)),
        "the same change fork_after reads"
    );
}
