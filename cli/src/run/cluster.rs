//! The cluster of one `eo run`: its plan (nodes, roles, peers, workload) and the
//! supervisor that runs every node as a child process of this same binary.
//!
//! Every child is `eo node …` (see `cli/src/node.rs`) with its stdout piped (JSON
//! lines: `listening`, `progress`, `done`) and its stderr appended to
//! `DIR/logs/NAME.log`. The supervisor owns every [`std::process::Child`]: a child
//! killed by the fault schedule is reaped before it is restarted, the rest get
//! SIGTERM at the end (SIGKILL after [`STOP_TIMEOUT`]), and on any early exit — an
//! error, Ctrl-C, a panic — [`Supervisor`]'s `Drop` kills and reaps whatever is
//! still running. On Linux each child also gets `PR_SET_PDEATHSIG = SIGKILL`, so
//! even a SIGKILLed `eo run` leaves no node behind.

use super::faults::{Fault, Links, Schedule, WIPES_PER_SENDER_MAX};
use super::report::{self, Latency, Progress, Summary};
use super::verify;
use super::CommonArgs;
use crate::UsageError;
use eo_impl::core::NodeId;
use eo_impl::runtime::store::RoleKind;
use eo_impl::runtime::workload::WORKLOAD_ITEMS_MAX;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader, Read as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long a node has to exit after SIGTERM before it is SIGKILLed.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// How often the supervisor looks at its children and the fault schedule.
const TICK: Duration = Duration::from_millis(20);

/// The longest stdout line read from a node, in bytes; a longer one is cut.
const LINE_LEN_MAX: usize = 64 * 1024;

/// The file in the data directory that describes the run (for `eo run verify`).
pub const MANIFEST: &str = "run.json";

/// Where lost disks are kept, under the data directory.
pub const LOST_DIR: &str = "lost";

/// One node of the plan.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodePlan {
    pub id: NodeId,
    /// The role's name (`runtime::store::RoleKind`).
    pub role: String,
    /// Peers by id.
    pub peers: Vec<NodeId>,
    /// `--participant` ids (coordinator, client).
    pub participants: Vec<NodeId>,
    /// Workload items (sender, client).
    pub workload: Option<u64>,
}

impl NodePlan {
    /// The role ([`Plan::check`] made sure it parses; a sender if not).
    pub fn role(&self) -> RoleKind {
        self.role.parse().unwrap_or(RoleKind::Sender)
    }

    /// The node's directory name: `ROLE-ID`.
    pub fn name(&self) -> String {
        format!("{}-{}", self.role, self.id)
    }
}

/// What runs: the protocol, the nodes and the workload's seed.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Plan {
    /// `ack-retry` or `two-phase-commit`.
    pub protocol: String,
    pub nodes: Vec<NodePlan>,
    /// Items over all workload nodes.
    pub items: u64,
    /// Seeds the workload, the proxies and the fault schedule.
    #[serde(default)]
    pub seed: u64,
}

/// Splits `total` over `n` nodes, the remainder to the first ones.
fn split(total: u64, n: u32, i: u32) -> u64 {
    let n64 = u64::from(n);
    total / n64 + u64::from(u64::from(i) < total % n64)
}

impl Plan {
    /// One receiver (id 1), senders 2..=senders+1.
    pub fn ack_retry(messages: u64, senders: u32) -> Plan {
        let sender_ids: Vec<NodeId> = (0..senders).map(|i| 2 + i).collect();
        let mut nodes = vec![NodePlan {
            id: 1,
            role: "receiver".into(),
            peers: sender_ids.clone(),
            participants: vec![],
            workload: None,
        }];
        for (i, id) in sender_ids.iter().enumerate() {
            nodes.push(NodePlan {
                id: *id,
                role: "sender".into(),
                peers: vec![1],
                participants: vec![],
                workload: Some(split(messages, senders, i as u32)),
            });
        }
        Plan {
            protocol: "ack-retry".into(),
            nodes,
            items: messages,
            seed: 0,
        }
    }

    /// One coordinator (id 1), participants 2..=p+1, clients after them.
    pub fn two_phase_commit(transactions: u64, participants: u32, clients: u32) -> Plan {
        let part_ids: Vec<NodeId> = (0..participants).map(|i| 2 + i).collect();
        let client_ids: Vec<NodeId> = (0..clients).map(|i| 2 + participants + i).collect();
        let mut nodes = vec![NodePlan {
            id: 1,
            role: "coordinator".into(),
            peers: part_ids.iter().chain(&client_ids).copied().collect(),
            participants: part_ids.clone(),
            workload: None,
        }];
        for id in &part_ids {
            nodes.push(NodePlan {
                id: *id,
                role: "participant".into(),
                peers: vec![1],
                participants: vec![],
                workload: None,
            });
        }
        for (i, id) in client_ids.iter().enumerate() {
            nodes.push(NodePlan {
                id: *id,
                role: "client".into(),
                peers: vec![1],
                participants: part_ids.clone(),
                workload: Some(split(transactions, clients, i as u32)),
            });
        }
        Plan {
            protocol: "two-phase-commit".into(),
            nodes,
            items: transactions,
            seed: 0,
        }
    }

    /// Checks a plan read back from a manifest: a known protocol, known roles,
    /// workloads within the generator's bound.
    pub fn check(&self) -> Result<(), String> {
        if !matches!(self.protocol.as_str(), "ack-retry" | "two-phase-commit") {
            return Err(format!("unknown protocol {:?}", self.protocol));
        }
        for node in &self.nodes {
            node.role.parse::<RoleKind>()?;
            if node.workload.is_some_and(|n| n > WORKLOAD_ITEMS_MAX) {
                return Err(format!(
                    "node {} has a workload above {WORKLOAD_ITEMS_MAX} items",
                    node.id
                ));
            }
        }
        Ok(())
    }

    /// The workload seed passed to every node.
    pub fn workload_seed(&self) -> u64 {
        self.seed
    }
}

/// Set by SIGINT, SIGTERM or SIGHUP: stop everything, reap, exit.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    for signal in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
        unsafe {
            libc::signal(signal, on_signal as *const () as libc::sighandler_t);
        }
    }
}

/// A free loopback port, still bound by the returned listener; dropping it
/// releases the port for the node to bind.
fn free_port() -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// A line from a child, or its end.
enum Line {
    Json(Value, Instant),
    Eof,
}

/// One running process of a node.
struct Running {
    child: Child,
    started: Instant,
}

/// A node's slot in the supervisor: its plan, address, directory and process.
struct Slot {
    plan: NodePlan,
    dir: PathBuf,
    args: Vec<String>,
    running: Option<Running>,
    generation: u32,
    /// The node printed `done` (workload nodes) and exited.
    finished: bool,
    done_seen: bool,
    /// The highest `done` count it reported.
    items_done: u64,
    /// Counters of the current process's last `progress`/`done` line.
    counters: BTreeMap<String, f64>,
    /// Sums of the counters of every earlier process of this node.
    past: BTreeMap<String, f64>,
    wipes: u32,
}

/// Adds every number in `value` (nested objects flattened with `.`) to `into`.
fn numbers(prefix: &str, value: &Value, into: &mut BTreeMap<String, f64>) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                into.insert(prefix.to_owned(), x);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                numbers(&key, v, into);
            }
        }
        _ => {}
    }
}

/// Runs every node, the faults and the verifier; the whole of `eo run`.
pub fn execute(mut plan: Plan, common: &CommonArgs) -> Result<ExitCode, UsageError> {
    common
        .faults()
        .check()
        .map_err(|e| UsageError(e.to_string()))?;
    let seed = common.seed.unwrap_or_else(rand::random);
    plan.seed = seed;
    let (dir, temporary) = match &common.data_dir {
        Some(dir) => {
            if dir.join(MANIFEST).exists() {
                return Err(UsageError(format!(
                    "{} already holds a run ({MANIFEST}); give an empty or new --data-dir",
                    dir.display()
                )));
            }
            fs::create_dir_all(dir)
                .map_err(|e| UsageError(format!("cannot create {}: {e}", dir.display())))?;
            (dir.clone(), false)
        }
        None => {
            let dir = tempfile::Builder::new()
                .prefix("eo-run-")
                .tempdir()
                .map_err(|e| UsageError(format!("cannot create a temporary directory: {e}")))?
                .keep();
            (dir, true)
        }
    };
    let manifest = serde_json::to_vec_pretty(&plan).expect("a plan serialises");
    fs::write(dir.join(MANIFEST), manifest).map_err(|e| {
        UsageError(format!(
            "cannot write {}: {e}",
            dir.join(MANIFEST).display()
        ))
    })?;
    fs::create_dir_all(dir.join("logs"))
        .map_err(|e| UsageError(format!("cannot create {}/logs: {e}", dir.display())))?;
    if !common.json {
        eprintln!(
            "eo run {}: {} nodes, {} items, seed={seed}, data in {}",
            plan.protocol,
            plan.nodes.len(),
            plan.items,
            dir.display()
        );
    }
    install_signal_handlers();
    let mut supervisor = match Supervisor::new(&plan, &dir, common) {
        Ok(supervisor) => supervisor,
        Err(error) => {
            if temporary {
                let _ = fs::remove_dir_all(&dir);
            }
            return Err(error);
        }
    };
    let outcome = supervisor.run(common);
    let stop_forced = supervisor.stop_all();
    let (links, mut summary) = supervisor.finish();
    let proxy = links.stop();
    summary.proxy = proxy;
    summary.stop_forced = stop_forced;
    let outcome = outcome
        .map_err(|UsageError(m)| UsageError(format!("{m}; data kept in {}", dir.display())))?;
    summary.timed_out = outcome == Outcome::TimedOut;
    if outcome == Outcome::Interrupted {
        eprintln!(
            "eo: interrupted; every node stopped; data kept in {}",
            dir.display()
        );
        return Ok(ExitCode::from(130));
    }
    let verdict = verify::verify(&dir, &plan).map_err(UsageError)?;
    summary.verdict = verdict;
    let failed = summary.timed_out || !summary.verdict.ok();
    summary.data_dir = dir.display().to_string();
    summary.data_kept = failed || !temporary;
    report::print(&summary, common.json);
    if failed {
        if summary.timed_out {
            eprintln!(
                "eo: timed out after {} s waiting for the workload; data kept in {}",
                common.timeout,
                dir.display()
            );
        }
        for v in &summary.verdict.violations {
            eprintln!("eo: violation: {v}");
        }
        if !summary.verdict.ok() {
            eprintln!("eo: data kept in {}", dir.display());
        }
        return Ok(ExitCode::from(1));
    }
    if temporary {
        let _ = fs::remove_dir_all(&dir);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outcome {
    Finished,
    TimedOut,
    Interrupted,
}

/// Every node's process, the proxies and the fault schedule.
struct Supervisor {
    exe: PathBuf,
    dir: PathBuf,
    slots: Vec<Slot>,
    links: Links,
    lines: mpsc::Receiver<(usize, u32, Line)>,
    line_tx: mpsc::Sender<(usize, u32, Line)>,
    schedule: Schedule,
    kills: u64,
    wipes: u64,
    started: Instant,
    finished_at: Option<Instant>,
    progress: Progress,
    latency: Latency,
    items: u64,
    protocol: String,
}

impl Supervisor {
    fn new(plan: &Plan, dir: &Path, common: &CommonArgs) -> Result<Supervisor, UsageError> {
        let exe = std::env::current_exe()
            .map_err(|e| UsageError(format!("cannot find this program's path: {e}")))?;
        if let Some(trace) = &common.trace {
            fs::create_dir_all(trace)
                .map_err(|e| UsageError(format!("cannot create {}: {e}", trace.display())))?;
        }
        // Every node's port stays bound here until the proxies have theirs, so
        // that no proxy takes a node's port; the nodes bind them only later.
        let mut listens = BTreeMap::new();
        let mut held = Vec::new();
        for node in &plan.nodes {
            let (listener, addr) =
                free_port().map_err(|e| UsageError(format!("cannot pick a port: {e}")))?;
            listens.insert(node.id, addr);
            held.push(listener);
        }
        let links = Links::start(plan, &listens, common.faults(), plan.seed)
            .map_err(|e| UsageError(e.to_string()))?;
        drop(held);
        let (line_tx, lines) = mpsc::channel();
        let slots = plan
            .nodes
            .iter()
            .map(|node| {
                let listen = listens[&node.id];
                let node_dir = dir.join(node.name());
                let mut args: Vec<String> = vec![
                    "node".into(),
                    "--protocol".into(),
                    plan.protocol.clone(),
                    "--role".into(),
                    node.role.clone(),
                    "--id".into(),
                    node.id.to_string(),
                    "--listen".into(),
                    listen.to_string(),
                    "--data-dir".into(),
                    node_dir.display().to_string(),
                    "--seed".into(),
                    (plan.seed ^ u64::from(node.id)).to_string(),
                ];
                if let Some(trace) = &common.trace {
                    args.push("--trace".into());
                    args.push(
                        trace
                            .join(format!("node-{}.jsonl", node.id))
                            .display()
                            .to_string(),
                    );
                }
                for peer in &node.peers {
                    args.push("--peer".into());
                    args.push(format!("{peer}={}", links.addr(node.id, *peer)));
                }
                for p in &node.participants {
                    args.push("--participant".into());
                    args.push(p.to_string());
                }
                if let Some(n) = node.workload {
                    args.extend([
                        "--workload".into(),
                        n.to_string(),
                        "--workload-seed".into(),
                        plan.workload_seed().to_string(),
                    ]);
                }
                Slot {
                    plan: node.clone(),
                    dir: node_dir,
                    args,
                    running: None,
                    generation: 0,
                    finished: false,
                    done_seen: false,
                    items_done: 0,
                    counters: BTreeMap::new(),
                    past: BTreeMap::new(),
                    wipes: 0,
                }
            })
            .collect();
        let schedule = Schedule::new(common.kill_every, common.wipe_disk_every, plan.seed);
        Ok(Supervisor {
            exe,
            dir: dir.to_path_buf(),
            slots,
            links,
            lines,
            line_tx,
            schedule,
            kills: 0,
            wipes: 0,
            started: Instant::now(),
            finished_at: None,
            progress: Progress::new(plan.items, common.quiet),
            latency: Latency::default(),
            items: plan.items,
            protocol: plan.protocol.clone(),
        })
    }

    /// Starts the next process of node `i` (its data directory as it is).
    fn spawn(&mut self, i: usize) -> Result<(), UsageError> {
        let slot = &mut self.slots[i];
        slot.generation += 1;
        let name = slot.plan.name();
        let log_path = self.dir.join("logs").join(format!("{name}.log"));
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|e| UsageError(format!("cannot open {}: {e}", log_path.display())))?;
        let mut command = Command::new(&self.exe);
        command
            .args(&slot.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log);
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl is async-signal-safe; nothing else runs between fork
            // and exec.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                    Ok(())
                });
            }
        }
        let mut child = command
            .spawn()
            .map_err(|e| UsageError(format!("cannot start node {name}: {e}")))?;
        let stdout = child.stdout.take().expect("piped above");
        let tx = self.line_tx.clone();
        let generation = slot.generation;
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut line = String::new();
            loop {
                line.clear();
                match (&mut reader).take(LINE_LEN_MAX as u64).read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        if let Ok(v) = serde_json::from_str::<Value>(line.trim()) {
                            if tx
                                .send((i, generation, Line::Json(v, Instant::now())))
                                .is_err()
                            {
                                return;
                            }
                        }
                    }
                }
            }
            let _ = tx.send((i, generation, Line::Eof));
        });
        slot.running = Some(Running {
            child,
            started: Instant::now(),
        });
        Ok(())
    }

    /// SIGKILLs node `i` and reaps it; its counters become past.
    fn kill(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if let Some(mut running) = slot.running.take() {
            let _ = running.child.kill();
            let _ = running.child.wait();
            for (k, v) in std::mem::take(&mut slot.counters) {
                *slot.past.entry(k).or_default() += v;
            }
        }
    }

    fn run(&mut self, common: &CommonArgs) -> Result<Outcome, UsageError> {
        for i in 0..self.slots.len() {
            self.spawn(i)?;
        }
        self.started = Instant::now();
        self.schedule.start(self.started);
        let deadline = self.started + Duration::from_secs(common.timeout);
        loop {
            while let Ok((i, generation, line)) = self.lines.try_recv() {
                self.on_line(i, generation, line);
            }
            if INTERRUPTED.load(Ordering::SeqCst) {
                return Ok(Outcome::Interrupted);
            }
            self.reap_exits()?;
            if self
                .slots
                .iter()
                .all(|s| s.plan.workload.is_none() || s.finished)
            {
                self.finished_at = Some(Instant::now());
                self.progress.finish();
                return Ok(Outcome::Finished);
            }
            let now = Instant::now();
            if now >= deadline {
                self.progress.finish();
                return Ok(Outcome::TimedOut);
            }
            while let Some(fault) = self.schedule.due(now) {
                self.inject(fault)?;
            }
            let done: u64 = self.slots.iter().map(|s| s.items_done).sum();
            self.progress
                .update(done, self.kills, self.wipes, &self.links.stats());
            match self.lines.recv_timeout(TICK) {
                Ok((i, generation, line)) => self.on_line(i, generation, line),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => thread::sleep(TICK),
            }
        }
    }

    fn on_line(&mut self, i: usize, generation: u32, line: Line) {
        let slot = &mut self.slots[i];
        if generation != slot.generation {
            return; // a killed process's last words
        }
        let Line::Json(value, at) = line else { return };
        let event = value.get("event").and_then(Value::as_str).unwrap_or("");
        if matches!(event, "progress" | "done") && slot.plan.workload.is_some() {
            let get = |key| value.get(key).and_then(Value::as_u64);
            if let (Some(done), Some(submitted)) = (get("done"), get("submitted")) {
                slot.items_done = slot.items_done.max(done);
                self.latency.sample(i, slot.wipes, at, submitted, done);
            }
        }
        if matches!(event, "progress" | "done") {
            let mut counters = BTreeMap::new();
            numbers("", &value, &mut counters);
            slot.counters = counters;
        }
        if event == "done" {
            slot.done_seen = true;
            if let Some(n) = slot.plan.workload {
                slot.items_done = slot.items_done.max(n);
            }
        }
    }

    /// Looks for processes that exited on their own: a workload node after
    /// `done` has finished; any other exit is an error.
    fn reap_exits(&mut self) -> Result<(), UsageError> {
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            let Some(running) = slot.running.as_mut() else {
                continue;
            };
            let Ok(Some(status)) = running.child.try_wait() else {
                continue;
            };
            // Take its last lines (the `done`) before judging the exit.
            while let Ok((j, generation, line)) = self.lines.try_recv() {
                self.on_line(j, generation, line);
            }
            let slot = &mut self.slots[i];
            let uptime = slot
                .running
                .as_ref()
                .map_or(Duration::ZERO, |r| r.started.elapsed());
            slot.running = None;
            if status.success() && slot.done_seen && slot.plan.workload.is_some() {
                slot.finished = true;
                continue;
            }
            return Err(UsageError(format!(
                "node {} exited on its own ({status}) after {:.1} s; its log: {}",
                slot.plan.name(),
                uptime.as_secs_f64(),
                self.dir
                    .join("logs")
                    .join(format!("{}.log", slot.plan.name()))
                    .display()
            )));
        }
        Ok(())
    }

    fn inject(&mut self, fault: Fault) -> Result<(), UsageError> {
        let running: Vec<usize> = (0..self.slots.len())
            .filter(|&i| self.slots[i].running.is_some() && !self.slots[i].done_seen)
            .filter(|&i| match fault {
                Fault::Kill => true,
                Fault::Wipe => {
                    self.slots[i].plan.role() == RoleKind::Sender
                        && self.slots[i].wipes < WIPES_PER_SENDER_MAX
                }
            })
            .collect();
        let Some(i) = self.schedule.pick(&running) else {
            return Ok(());
        };
        self.kill(i);
        if fault == Fault::Wipe {
            let slot = &mut self.slots[i];
            slot.wipes += 1;
            let lost = self
                .dir
                .join(LOST_DIR)
                .join(format!("{}-{}", slot.plan.id, slot.wipes));
            fs::create_dir_all(self.dir.join(LOST_DIR))
                .map_err(|e| UsageError(format!("cannot create {LOST_DIR}/: {e}")))?;
            if slot.dir.exists() {
                fs::rename(&slot.dir, &lost).map_err(|e| {
                    UsageError(format!(
                        "cannot move {} to {}: {e}",
                        slot.dir.display(),
                        lost.display()
                    ))
                })?;
            }
            // A new life counts its workload from the start.
            slot.items_done = 0;
            self.wipes += 1;
        } else {
            self.kills += 1;
        }
        self.spawn(i)
    }

    /// SIGTERMs every running node, waits up to [`STOP_TIMEOUT`], SIGKILLs the
    /// rest; returns how many had to be SIGKILLed.
    fn stop_all(&mut self) -> u64 {
        for slot in &mut self.slots {
            if let Some(running) = &slot.running {
                // SAFETY: plain kill(2) on our own child's pid, not yet reaped.
                unsafe {
                    libc::kill(running.child.id() as libc::pid_t, libc::SIGTERM);
                }
            }
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        let mut forced = 0;
        for slot in &mut self.slots {
            let Some(mut running) = slot.running.take() else {
                continue;
            };
            loop {
                match running.child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = running.child.kill();
                        let _ = running.child.wait();
                        forced += 1;
                        break;
                    }
                    Ok(None) => thread::sleep(TICK),
                }
            }
        }
        // The last progress lines of the stopped processes.
        while let Ok((i, generation, line)) = self.lines.recv_timeout(TICK) {
            self.on_line(i, generation, line);
        }
        forced
    }

    /// The summary of the run so far (without verdict) and the proxies.
    fn finish(mut self) -> (Links, Summary) {
        let elapsed = self
            .finished_at
            .unwrap_or_else(Instant::now)
            .duration_since(self.started);
        let mut per_role: BTreeMap<String, BTreeMap<String, f64>> = BTreeMap::new();
        for slot in &mut self.slots {
            let role = per_role.entry(slot.plan.role.clone()).or_default();
            for (k, v) in slot.past.iter().chain(slot.counters.iter()) {
                *role.entry(k.clone()).or_default() += v;
            }
        }
        let summary = report::summarise(
            &self.protocol,
            self.items,
            elapsed,
            self.kills,
            self.wipes,
            per_role,
            &self.latency,
        );
        let links = std::mem::replace(&mut self.links, Links::none());
        (links, summary)
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        for slot in &mut self.slots {
            if let Some(mut running) = slot.running.take() {
                let _ = running.child.kill();
                let _ = running.child.wait();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_workload_is_split_evenly_remainder_first() {
        let plan = Plan::ack_retry(10, 3);
        let w: Vec<_> = plan.nodes.iter().map(|n| n.workload).collect();
        assert_eq!(w, [None, Some(4), Some(3), Some(3)]);
        let plan = Plan::two_phase_commit(7, 3, 2);
        let roles: Vec<_> = plan.nodes.iter().map(NodePlan::name).collect();
        assert_eq!(
            roles,
            [
                "coordinator-1",
                "participant-2",
                "participant-3",
                "participant-4",
                "client-5",
                "client-6"
            ]
        );
        assert_eq!(plan.nodes[0].participants, [2, 3, 4]);
        assert_eq!(plan.nodes[0].peers, [2, 3, 4, 5, 6]);
        assert_eq!(plan.nodes[4].workload, Some(4));
    }
}
