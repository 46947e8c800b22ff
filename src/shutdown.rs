//! The one shutdown mechanism: a watch channel flipped once. Every task of
//! a node holds a `Shutdown` and stops when `signalled()` completes.

use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Shutdown {
    tx: std::sync::Arc<watch::Sender<bool>>,
}

impl Default for Shutdown {
    fn default() -> Self {
        Self::new()
    }
}

impl Shutdown {
    pub fn new() -> Self {
        Self {
            tx: std::sync::Arc::new(watch::channel(false).0),
        }
    }

    pub fn signal(&self) {
        self.tx.send_replace(true);
    }

    pub fn is_signalled(&self) -> bool {
        *self.tx.borrow()
    }

    /// Completes once `signal` has been called (at once if it was already).
    pub async fn signalled(&self) {
        let mut rx = self.tx.subscribe();
        // An error means the sender is gone, which also means "stop".
        let _ = rx.wait_for(|s| *s).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn signalled_completes_for_late_and_early_waiters() {
        let s = Shutdown::new();
        let early = tokio::spawn({
            let s = s.clone();
            async move { s.signalled().await }
        });
        s.signal();
        early.await.unwrap();
        s.signalled().await;
        assert!(s.is_signalled());
    }
}
