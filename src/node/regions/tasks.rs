//! Which of the runtime's background tasks run on a node: the meta
//! leader's lease supervision everywhere (it idles unless the node leads
//! the meta group), and on a region node the lease renewal, the strong
//! set, the geo log's receipt and acknowledgement, taking over writes, and
//! in failsafe mode the failsafe lease. Each task checks its role every
//! tick and idles when it does not hold it.

use crate::node::regions::handle::Geo;
use crate::shutdown::Shutdown;

/// Spawns `task` in the current tracing span (the node's).
fn spawn_here<F>(task: F) -> tokio::task::JoinHandle<()>
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    tokio::spawn(tracing::Instrument::in_current_span(task))
}

impl Geo {
    /// Starts the background tasks; they stop with `shutdown`, and the
    /// node waits for them before it stops raft.
    pub fn spawn_tasks(&self, shutdown: &Shutdown) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = vec![spawn_here(self.clone().supervise_leases(shutdown.clone()))];
        if self.replica().is_some() {
            tasks.push(spawn_here(self.clone().renew_leases(shutdown.clone())));
            tasks.push(spawn_here(self.clone().keep_strong_set(shutdown.clone())));
            tasks.push(spawn_here(self.clone().receive(shutdown.clone())));
            tasks.push(spawn_here(self.clone().acknowledge(shutdown.clone())));
            tasks.push(spawn_here(self.clone().take_over(shutdown.clone())));
            if self.failsafe_enabled() {
                tasks.push(spawn_here(self.clone().keep_failsafe(shutdown.clone())));
            }
        }
        tasks
    }
}
