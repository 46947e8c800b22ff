//! An account of real `meridian server` processes on loopback, what
//! `meridian verify` runs by default: the nemesis kills nodes with SIGKILL,
//! pauses them with SIGSTOP, restarts them on their data, and steers each
//! process's fault layer through `Faults.Apply` with every rule it keeps
//! here. Each node has its TOML file and log file in the data directory;
//! dropping the account kills every process it started.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::process::{Child, Command};

use crate::config::AccountConfig;
use crate::fault::{FAULT_INJECTION_ENV, Faults};
use crate::ids::NodeId;
use crate::local::{LocalOptions, endpoint_of};
use crate::verify::calls::with_node;

/// How long pushing the rules to one node may take.
const FAULT_PUSH_TIMEOUT: Duration = Duration::from_secs(2);

pub struct ProcAccount {
    options: LocalOptions,
    account: AccountConfig,
    exe: PathBuf,
    /// The rules every process gets; see [`ProcAccount::publish_faults`].
    faults: Faults,
    children: BTreeMap<NodeId, Child>,
    paused: BTreeSet<NodeId>,
    /// Extra environment of a node's process (crash points), until
    /// [`ProcAccount::disarm`].
    env: BTreeMap<NodeId, Vec<(String, String)>>,
}

impl ProcAccount {
    /// Writes every node's configuration and starts its process with
    /// `exe server`. The ports are free when picked and released just
    /// before the processes bind them; another process taking one in
    /// between makes that node fail to start, loudly.
    pub async fn start(options: LocalOptions, exe: PathBuf) -> Result<ProcAccount, String> {
        ProcAccount::start_with_env(options, exe, BTreeMap::new()).await
    }

    /// [`ProcAccount::start`], giving the nodes in `env` those variables
    /// (e.g. armed crash points) in addition to the usual ones.
    pub async fn start_with_env(
        options: LocalOptions,
        exe: PathBuf,
        env: BTreeMap<NodeId, Vec<(String, String)>>,
    ) -> Result<ProcAccount, String> {
        std::fs::create_dir_all(&options.data_dir)
            .map_err(|e| format!("creating {}: {e}", options.data_dir.display()))?;
        let addresses = free_addresses(options.node_count() * 2)?;
        let pairs: Vec<(SocketAddr, SocketAddr)> =
            addresses.chunks(2).map(|p| (p[0], p[1])).collect();
        let account = options.account_config(&pairs);
        let mut procs = ProcAccount {
            faults: Faults::new(options.seed),
            options,
            account,
            exe,
            children: BTreeMap::new(),
            paused: BTreeSet::new(),
            env,
        };
        for id in procs.node_ids() {
            let config = procs.options.node_config(&procs.account, id);
            let text = toml::to_string(&config).map_err(|e| format!("{id}'s TOML: {e}"))?;
            std::fs::write(procs.config_path(id), text)
                .map_err(|e| format!("writing {id}'s TOML: {e}"))?;
            procs.spawn(id)?;
        }
        Ok(procs)
    }

    fn config_path(&self, id: NodeId) -> PathBuf {
        self.options.data_dir.join(format!("{id}.toml"))
    }

    /// Where node `id`'s process writes its log.
    pub fn log_path(&self, id: NodeId) -> PathBuf {
        self.options.data_dir.join(format!("{id}.log"))
    }

    fn spawn(&mut self, id: NodeId) -> Result<(), String> {
        let log_path = self.log_path(id);
        let log = File::options()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let err = log
            .try_clone()
            .map_err(|e| format!("opening {}: {e}", log_path.display()))?;
        let child = Command::new(&self.exe)
            .arg("server")
            .arg("--config")
            .arg(self.config_path(id))
            .env(FAULT_INJECTION_ENV, "1")
            .env("RUST_LOG", "warn,openraft=off")
            .envs(self.env.get(&id).into_iter().flatten().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("starting {} for {id}: {e}", self.exe.display()))?;
        self.children.insert(id, child);
        Ok(())
    }

    pub fn account(&self) -> &AccountConfig {
        &self.account
    }

    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    pub fn node_ids(&self) -> Vec<NodeId> {
        self.account.all_nodes().map(|n| n.id).collect()
    }

    pub fn endpoint(&self, id: NodeId) -> String {
        endpoint_of(&self.account, id)
    }

    /// Running, and not paused.
    pub fn is_up(&self, id: NodeId) -> bool {
        self.children.contains_key(&id) && !self.paused.contains(&id)
    }

    /// Sends every process that is up the rules of [`ProcAccount::faults`];
    /// a process that cannot be reached is logged and skipped (a
    /// restarted one gets them when it starts).
    pub async fn publish_faults(&self) {
        let links = self.faults.links();
        let clocks = self.faults.clock_offsets();
        let pushes = self
            .node_ids()
            .into_iter()
            .filter(|id| self.is_up(*id))
            .map(|id| {
                let endpoint = self.endpoint(id);
                let (links, clocks) = (&links, &clocks);
                async move {
                    let pushed = with_node(&endpoint, FAULT_PUSH_TIMEOUT, |client| async move {
                        client.replace_faults(links, clocks).await
                    })
                    .await;
                    if let Err(e) = pushed {
                        tracing::warn!(node = %id, "pushing the fault rules: {e}");
                    }
                }
            });
        futures::future::join_all(pushes).await;
    }

    /// SIGKILL, as a power loss: no flush, no goodbye to peers.
    pub async fn kill_node(&mut self, id: NodeId) {
        self.paused.remove(&id);
        if let Some(mut child) = self.children.remove(&id)
            && let Err(e) = child.kill().await
        {
            tracing::warn!(node = %id, "killing the process: {e}");
        }
    }

    /// Starts a killed node again on its addresses and data, then gives it
    /// the current rules.
    pub async fn restart_node(&mut self, id: NodeId) -> Result<(), String> {
        self.kill_node(id).await;
        self.spawn(id)?;
        self.publish_faults().await;
        Ok(())
    }

    /// Node `id`'s next start gets only the usual environment.
    pub fn disarm(&mut self, id: NodeId) {
        self.env.remove(&id);
    }

    /// How node `id`'s process ended, if it has (without waiting); the
    /// account forgets an exited process, so a restart starts it afresh.
    pub fn exited(&mut self, id: NodeId) -> Option<std::process::ExitStatus> {
        let status = self.children.get_mut(&id)?.try_wait().ok()??;
        self.children.remove(&id);
        self.paused.remove(&id);
        Some(status)
    }

    /// SIGSTOP: the process keeps its sockets but answers nothing.
    pub fn pause_node(&mut self, id: NodeId) {
        if self.signal(id, "-STOP") {
            self.paused.insert(id);
        }
    }

    /// SIGCONT after [`ProcAccount::pause_node`].
    pub fn resume_node(&mut self, id: NodeId) {
        if self.paused.remove(&id) {
            self.signal(id, "-CONT");
        }
    }

    fn signal(&self, id: NodeId, signal: &str) -> bool {
        let Some(pid) = self.children.get(&id).and_then(Child::id) else {
            return false;
        };
        match std::process::Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
        {
            Ok(status) if status.success() => true,
            other => {
                tracing::warn!(node = %id, ?other, "kill {signal} {pid} failed");
                false
            }
        }
    }

    /// Kills every process (resuming paused ones first, so none is left
    /// stopped) and waits for them to exit.
    pub async fn stop(mut self) {
        for id in self.paused.clone() {
            self.resume_node(id);
        }
        for id in self.node_ids() {
            self.kill_node(id).await;
        }
    }
}

/// `count` loopback addresses on ports free right now.
fn free_addresses(count: usize) -> Result<Vec<SocketAddr>, String> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("picking free ports: {e}"))?;
    listeners
        .iter()
        .map(|l| {
            l.local_addr()
                .map_err(|e| format!("picking free ports: {e}"))
        })
        .collect()
}
