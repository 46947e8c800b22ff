//! Real `meridian server` processes for tests that need a real crash
//! (kill -9). Each process gets its own TOML file and log file in a temp
//! dir; dropping a `Proc` kills it, so a failing test leaves nothing behind.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};

use meridian::crash::{CRASH_AFTER_ENV, CRASH_AT_ENV};
use meridian::wire::pb::v1 as pb;
use meridian::wire::pb::v1::admin_client::AdminClient;

use crate::support::wait_for;

/// Free loopback ports: bound to port 0, then released. Another process
/// could take one in between; the test would then fail to start, loudly.
pub fn free_ports(count: usize) -> Vec<u16> {
    let listeners: Vec<std::net::TcpListener> = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind port 0"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

pub struct ProcRegion {
    pub dir: PathBuf,
    pub nodes: Vec<(u64, SocketAddr, SocketAddr)>,
    /// Lines of a `[raft]` section every node's TOML gets, when set.
    pub raft_toml: Option<String>,
}

impl ProcRegion {
    pub fn new(dir: &Path, replicas: usize) -> ProcRegion {
        let ports = free_ports(replicas * 2);
        let nodes = (0..replicas)
            .map(|i| {
                let client = SocketAddr::from(([127, 0, 0, 1], ports[2 * i]));
                let peer = SocketAddr::from(([127, 0, 0, 1], ports[2 * i + 1]));
                (i as u64 + 1, client, peer)
            })
            .collect();
        ProcRegion {
            dir: dir.to_path_buf(),
            nodes,
            raft_toml: None,
        }
    }

    /// Gives every node's TOML a `[raft]` section with these lines, for
    /// tests that need, say, snapshots every few entries.
    pub fn with_raft(mut self, lines: &str) -> ProcRegion {
        self.raft_toml = Some(lines.to_string());
        self
    }

    pub fn config_text(&self, id: u64) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|(n, c, p)| {
                format!("  {{ id = {n}, client_addr = \"{c}\", peer_addr = \"{p}\" }},")
            })
            .collect();
        let raft = match &self.raft_toml {
            Some(lines) => format!("\n[raft]\n{lines}\n"),
            None => String::new(),
        };
        format!(
            "[node]\nid = {id}\ndata_dir = \"{}\"\n\n[account]\nname = \"crash\"\ndefault_consistency = \"strong\"\n[[account.regions]]\nname = \"west\"\nnodes = [\n{}\n]\n{raft}",
            self.dir.join(format!("n{id}")).display(),
            nodes.join("\n")
        )
    }

    pub fn config_path(&self, id: u64) -> PathBuf {
        let path = self.dir.join(format!("n{id}.toml"));
        std::fs::write(&path, self.config_text(id)).expect("write config");
        path
    }

    pub fn endpoint(&self, id: u64) -> String {
        let (_, client, _) = self.nodes.iter().find(|(n, _, _)| *n == id).expect("node");
        format!("http://{client}")
    }

    /// Where node `id`'s stderr goes, across restarts (appended).
    pub fn log_path(&self, id: u64) -> PathBuf {
        self.dir.join(format!("n{id}.log"))
    }

    pub fn spawn(&self, id: u64) -> Proc {
        self.spawn_with_env(id, &[])
    }

    /// Spawns node `id` with extra environment variables. The crash-point
    /// variables are removed first, so a node is armed only when a test
    /// says so, never by what the test runner inherited.
    pub fn spawn_with_env(&self, id: u64, env: &[(&str, &str)]) -> Proc {
        let config = self.config_path(id);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(id))
            .expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(["server", "--config"])
            .arg(&config)
            .env_remove(CRASH_AT_ENV)
            .env_remove(CRASH_AFTER_ENV)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn meridian server");
        Proc { child }
    }
}

pub struct Proc {
    child: Child,
}

impl Proc {
    /// SIGKILL: no flush, no goodbye.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends `signal` (a name `kill` knows, e.g. `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(sent.success(), "kill -{signal} failed");
    }

    /// The exit status if the process has ended on its own, without waiting.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Waits until some process reports a leader and every node running, and
/// returns the leader's id.
pub async fn wait_for_leader(region: &ProcRegion) -> u64 {
    wait_for("a leader among the processes", || async {
        for (id, _, _) in &region.nodes {
            let channel = tonic::transport::Endpoint::from_shared(region.endpoint(*id))
                .ok()?
                .connect_lazy();
            let Ok(status) = AdminClient::new(channel)
                .status(pb::StatusRequest::default())
                .await
            else {
                continue;
            };
            let nodes = status.into_inner().nodes;
            let Some(leader) = nodes.iter().find(|n| n.role == "leader") else {
                continue;
            };
            if nodes.iter().all(|n| n.state == "running") {
                return Some(leader.node_id);
            }
        }
        None
    })
    .await
}

/// Runs `meridian ARGS` to completion, returning exit code and stderr.
pub fn run_meridian(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run meridian");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What a finished `meridian` command printed.
#[derive(Debug)]
pub struct Ran {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    /// Panics with everything printed unless the command exited 0.
    pub fn ok(self) -> Ran {
        assert_eq!(self.code, 0, "meridian failed: {self:?}");
        self
    }
}

/// Runs `meridian ARGS` to completion without blocking the runtime, for
/// at most `crate::support::DEADLINE` (the process is killed after it).
pub async fn meridian(args: &[&str]) -> Ran {
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(crate::support::DEADLINE, run)
        .await
        .unwrap_or_else(|_| panic!("meridian {args:?} did not finish"))
        .expect("run meridian");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// [`meridian`] as (exited 0, stdout, stderr).
pub async fn cli(args: &[&str]) -> (bool, String, String) {
    let ran = meridian(args).await;
    (ran.code == 0, ran.stdout, ran.stderr)
}

/// Runs `meridian ARGS` with its stdout closed from the start, as behind
/// `| head -c0`: its reader is gone before it prints anything, so its
/// first write finds the pipe closed. At most `DEADLINE`.
pub async fn meridian_reader_gone(args: &[&str]) -> Ran {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_meridian"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn meridian");
    drop(child.stdout.take().expect("stdout is piped"));
    let out = tokio::time::timeout(crate::support::DEADLINE, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("meridian {args:?} did not finish with its reader gone"))
        .expect("run meridian");
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::new(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `meridian dev` as a user starts it, on free ports and a data directory
/// the test owns; its log goes to `dev.log` there. Dropping it kills it.
pub struct DevProc {
    child: Child,
    /// Client endpoint per node, by the banner's name (`west/n1`).
    endpoints: Vec<(String, String)>,
    pub log: PathBuf,
}

impl DevProc {
    /// Starts `meridian dev --port 0 --data-dir DIR EXTRA...` and reads its
    /// banner up to the `ready` line.
    pub fn spawn(dir: &Path, extra: &[&str]) -> DevProc {
        Self::spawn_at(dir, 0, extra)
    }

    /// `spawn` with base port `port`.
    pub fn spawn_at(dir: &Path, port: u16, extra: &[&str]) -> DevProc {
        use std::io::{BufRead, BufReader};
        let log = dir.join("dev.log");
        let mut child = Command::new(env!("CARGO_BIN_EXE_meridian"))
            .args(["dev", "--port", &port.to_string(), "--data-dir"])
            .arg(dir.join("data"))
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).expect("dev log file"))
            .spawn()
            .expect("spawn meridian dev");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let mut endpoints = Vec::new();
        // Bounded: the banner is a line per node and a few more.
        for _ in 0..100 {
            let Some(Ok(line)) = lines.next() else { break };
            let words: Vec<&str> = line.split_whitespace().collect();
            if let [name, "client", endpoint, ..] = words[..] {
                endpoints.push((name.to_string(), endpoint.to_string()));
            }
            if line.starts_with("ready") {
                break;
            }
        }
        // Keep draining, so the process never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        assert!(
            !endpoints.is_empty(),
            "meridian dev printed no endpoints; see {}",
            log.display()
        );
        DevProc {
            child,
            endpoints,
            log,
        }
    }

    /// The client endpoint of `node`, e.g. `west/n1`.
    pub fn endpoint(&self, node: &str) -> String {
        self.endpoints
            .iter()
            .find(|(name, _)| name == node)
            .map(|(_, e)| e.clone())
            .unwrap_or_else(|| panic!("no node {node} in {:?}", self.endpoints))
    }
}

impl Drop for DevProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
