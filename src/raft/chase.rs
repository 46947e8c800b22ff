//! Chasing a group's leader: ONE loop for every call that must reach a
//! leader (a region's, the meta group's, this replica set's), with one
//! back-off policy and the caller's overall deadline. The callers differ
//! only in whom they ask (`candidates`) and in what an answer means
//! (`Attempt`): the retry, back-off and deadline logic lives here once.
//!
//! Used by `node::regions` (calls to a region's leader, renewals to the
//! meta leader), `raft::meta_replica` (meta proposals), `node::proposer`
//! (write batches) and `node::read_index` (read indexes).

use std::future::Future;
use std::time::Duration;

use crate::clock::Instant;
use crate::ids::NodeId;

/// The first pause when no leader answers.
pub const LEADER_BACKOFF_MIN: Duration = Duration::from_millis(20);
/// Pauses double up to this.
pub const LEADER_BACKOFF_MAX: Duration = Duration::from_millis(100);

/// What one attempt at a node came to.
#[derive(Debug)]
pub enum Attempt<T, E> {
    /// An answer, or an error no other attempt would change: the chase
    /// ends with it.
    Done(Result<T, E>),
    /// The node is not the leader; it may name the one it knows of. `E`,
    /// if given, is what the chase ends with should the deadline pass.
    NotLeader(Option<NodeId>, Option<E>),
    /// The node could not be reached and nothing happened: the next
    /// candidate is asked at once.
    Unreachable(E),
    /// The attempt failed and nothing happened (an election, most
    /// likely): a pause, then the candidates are asked again.
    Failed(E),
}

/// Pauses that double from `LEADER_BACKOFF_MIN` to `LEADER_BACKOFF_MAX`.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            next: LEADER_BACKOFF_MIN,
        }
    }
}

impl Backoff {
    /// The next pause.
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(LEADER_BACKOFF_MAX);
        pause
    }

    /// Sleeps the next pause, never past `deadline`.
    async fn pause(&mut self, deadline: Instant) {
        let until = (Instant::now() + self.next_pause()).min(deadline);
        tokio::time::sleep_until(until).await;
    }
}

/// Asks nodes until one answers or `deadline` passes. `candidates` names
/// the node to ask next (`None`: none known now, so pause and ask it
/// again); `attempt` asks one node. A node that is not the leader is
/// followed to the leader it names, else to the next candidate other than
/// itself, else after a pause. At the deadline the chase ends with the
/// last error an attempt gave (`None` if none gave one).
pub async fn chase_leader<T, E, C, A, F>(
    deadline: Instant,
    mut candidates: C,
    mut attempt: A,
) -> Result<T, Option<E>>
where
    C: FnMut() -> Option<NodeId>,
    A: FnMut(NodeId) -> F,
    F: Future<Output = Attempt<T, E>>,
{
    let mut backoff = Backoff::default();
    let mut last = None;
    let mut target = candidates();
    while Instant::now() < deadline {
        let Some(node) = target else {
            backoff.pause(deadline).await;
            target = candidates();
            continue;
        };
        match attempt(node).await {
            Attempt::Done(result) => return result.map_err(Some),
            Attempt::NotLeader(leader, error) => {
                if error.is_some() {
                    last = error;
                }
                target = leader
                    .filter(|l| *l != node)
                    .or_else(|| candidates().filter(|c| *c != node));
                if target.is_none() {
                    backoff.pause(deadline).await;
                    target = candidates();
                }
            }
            Attempt::Unreachable(e) => {
                last = Some(e);
                target = candidates();
            }
            Attempt::Failed(e) => {
                last = Some(e);
                backoff.pause(deadline).await;
                target = candidates();
            }
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use super::*;

    #[test]
    fn pauses_double_up_to_the_cap() {
        let mut b = Backoff::default();
        let pauses: Vec<u64> = (0..6).map(|_| b.next_pause().as_millis() as u64).collect();
        assert_eq!(pauses, [20, 40, 80, 100, 100, 100]);
    }

    #[tokio::test]
    async fn a_hint_is_followed_before_the_other_candidates() {
        let asked = RefCell::new(Vec::new());
        let deadline = Instant::now() + Duration::from_secs(5);
        let mut order = [1u64, 2, 3].into_iter().cycle();
        let result: Result<&str, Option<()>> = chase_leader(
            deadline,
            || order.next().map(NodeId),
            |node| {
                asked.borrow_mut().push(node.0);
                async move {
                    match node.0 {
                        1 => Attempt::NotLeader(Some(NodeId(3)), None),
                        3 => Attempt::Done(Ok("leader")),
                        _ => Attempt::Unreachable(()),
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok("leader"));
        assert_eq!(*asked.borrow(), [1, 3], "the hint, not node 2");
    }

    #[tokio::test]
    async fn an_unreachable_node_passes_to_the_next_at_once() {
        let asked = RefCell::new(Vec::new());
        let started = Instant::now();
        let mut order = [1u64, 2, 3].into_iter();
        let result: Result<u64, Option<String>> = chase_leader(
            started + Duration::from_secs(5),
            || order.next().map(NodeId),
            |node| {
                asked.borrow_mut().push(node.0);
                async move {
                    if node.0 == 3 {
                        Attempt::Done(Ok(3))
                    } else {
                        Attempt::Unreachable(format!("{node} down"))
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(3));
        assert_eq!(*asked.borrow(), [1, 2, 3]);
        assert!(
            started.elapsed() < LEADER_BACKOFF_MIN,
            "no pause between nodes"
        );
    }

    #[tokio::test]
    async fn a_final_error_ends_the_chase_at_once() {
        let calls = RefCell::new(0);
        let result: Result<(), Option<&str>> = chase_leader(
            Instant::now() + Duration::from_secs(5),
            || Some(NodeId(1)),
            |_| {
                *calls.borrow_mut() += 1;
                async { Attempt::Done(Err("refused")) }
            },
        )
        .await;
        assert_eq!(result, Err(Some("refused")));
        assert_eq!(*calls.borrow(), 1);
    }

    #[tokio::test]
    async fn failures_pause_and_the_deadline_ends_with_the_last_error() {
        let calls = RefCell::new(0u32);
        let timeout = Duration::from_millis(300);
        let started = Instant::now();
        let result: Result<(), Option<u32>> = chase_leader(
            started + timeout,
            || Some(NodeId(1)),
            |_| {
                *calls.borrow_mut() += 1;
                let n = *calls.borrow();
                async move { Attempt::Failed(n) }
            },
        )
        .await;
        let calls = *calls.borrow();
        assert_eq!(result, Err(Some(calls)), "the last error");
        assert!(
            started.elapsed() >= timeout,
            "kept trying until the deadline"
        );
        // 20 + 40 + 80 + 100 + 100 ms of pauses fill 300 ms: at most 5
        // attempts fit before the deadline.
        assert!((1..=5).contains(&calls), "{calls} attempts");
    }

    #[tokio::test]
    async fn no_leader_known_pauses_and_looks_again() {
        let looks = RefCell::new(0u32);
        let result: Result<u64, Option<()>> = chase_leader(
            Instant::now() + Duration::from_secs(5),
            || {
                *looks.borrow_mut() += 1;
                (*looks.borrow() >= 3).then_some(NodeId(7))
            },
            |node| async move { Attempt::Done(Ok(node.0)) },
        )
        .await;
        assert_eq!(result, Ok(7));
        assert_eq!(*looks.borrow(), 3);
    }

    #[tokio::test]
    async fn a_non_leader_naming_itself_is_not_asked_again_at_once() {
        let asked = RefCell::new(Vec::new());
        let mut order = [4u64, 4, 5].into_iter();
        let result: Result<u64, Option<&str>> = chase_leader(
            Instant::now() + Duration::from_secs(5),
            || order.next().map(NodeId),
            |node| {
                asked.borrow_mut().push(node.0);
                async move {
                    if node.0 == 4 {
                        Attempt::NotLeader(Some(NodeId(4)), Some("not leader"))
                    } else {
                        Attempt::Done(Ok(node.0))
                    }
                }
            },
        )
        .await;
        assert_eq!(result, Ok(5));
        assert_eq!(*asked.borrow(), [4, 5]);
    }

    #[tokio::test]
    async fn a_chase_with_no_deadline_left_asks_nobody() {
        let result: Result<(), Option<()>> = chase_leader(
            Instant::now(),
            || Some(NodeId(1)),
            |_| async { panic!("asked after the deadline") },
        )
        .await;
        assert_eq!(result, Err(None));
    }
}
