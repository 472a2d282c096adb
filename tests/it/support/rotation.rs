//! What HAProxy and Docker did, recorded while a test runs, to check timelines afterwards:
//! [`RotationLog`] polls `show servers state` at a high rate (every sample timed when sent and
//! when answered); [`EventLog`] records the Docker events of one backend's containers (through
//! `docker events`, replaying from its own start so that nothing before the subscription is lost).
//! [`out_of_rotation_window`] is the check: from a stop signal (plus the daemon's reaction
//! allowance) until the container's next start, no sample shows the server in rotation.
//!
//! Self-contained on purpose: benches include the support directory with `#[path]`.

#![allow(dead_code)] // the matrix and the campaign use different parts

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use haproxy_drain::haproxy::{AdminState, Client, OpState};

/// One server's line of one `show servers state` reply.
#[derive(Debug, Clone)]
pub struct Sample {
    pub sent: SystemTime,
    pub answered: SystemTime,
    pub server: String,
    pub admin: AdminState,
    pub weight: u32,
    pub op: OpState,
    pub addr: String,
}

impl Sample {
    /// HAProxy would send it new requests: neither MAINT nor DRAIN, and a weight above 0.
    pub fn in_rotation(&self) -> bool {
        self.admin == AdminState::Ready && self.weight > 0
    }
}

/// Polls one backend's servers every `every` until dropped.
pub struct RotationLog {
    samples: Arc<Mutex<Vec<Sample>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RotationLog {
    /// Polls on a thread (and runtime) of its own, so that a busy test runtime cannot stall it.
    pub fn start(client: Client, backend: &str, every: Duration) -> Self {
        let samples = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (task_samples, task_stop, backend) =
            (samples.clone(), stop.clone(), backend.to_string());
        let client = client.with_timeout(Duration::from_secs(1));
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("poller runtime");
            runtime.block_on(async move {
                while !task_stop.load(Ordering::Relaxed) {
                    let sent = SystemTime::now();
                    if let Ok(states) = client.show_servers_state(Some(&backend)).await {
                        let answered = SystemTime::now();
                        let mut all = lock(&task_samples);
                        all.extend(states.into_iter().map(|s| Sample {
                            sent,
                            answered,
                            server: s.id.server.clone(),
                            admin: s.admin.as_admin_state(),
                            weight: s.weight,
                            op: s.op_state,
                            addr: s.addr.clone(),
                        }));
                    }
                    tokio::time::sleep(every).await;
                }
            });
        });
        Self {
            samples,
            stop,
            thread: Some(thread),
        }
    }

    /// Samples of `server` answered at or after `from`, in order.
    pub fn since(&self, server: &str, from: SystemTime) -> Vec<Sample> {
        lock(&self.samples)
            .iter()
            .filter(|s| s.server == server && s.answered >= from)
            .cloned()
            .collect()
    }

    /// Forgets samples answered before `before` (keeps memory bounded in long campaigns).
    pub fn forget_before(&self, before: SystemTime) {
        lock(&self.samples).retain(|s| s.answered >= before);
    }
}

impl Drop for RotationLog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poison| poison.into_inner())
}

/// One Docker container event.
#[derive(Debug, Clone)]
pub struct DockerEvent {
    pub at: SystemTime,
    pub action: String,
    pub id: String,
    pub name: String,
}

/// `docker events` for the containers labelled `haproxy-drain.backend=<backend>`, recorded.
pub struct EventLog {
    child: Child,
    events: Arc<Mutex<Vec<DockerEvent>>>,
}

impl EventLog {
    pub fn start(backend: &str) -> Self {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64()
            - 1.0;
        let mut child = Command::new("docker")
            .args([
                "events",
                "--since",
                &format!("{since:.3}"),
                "--filter",
                "type=container",
                "--filter",
                &format!("label=haproxy-drain.backend={backend}"),
                "--format",
                "{{.TimeNano}}|{{.Action}}|{{.Actor.ID}}|{{index .Actor.Attributes \"name\"}}",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("docker events runs");
        let stdout = child.stdout.take().expect("docker events stdout");
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(event) = parse_event(&line) {
                    lock(&sink).push(event);
                }
            }
        });
        Self { child, events }
    }

    /// Events of the container named `name` at or after `from`, in order.
    pub fn named(&self, name: &str, from: SystemTime) -> Vec<DockerEvent> {
        lock(&self.events)
            .iter()
            .filter(|e| e.name == name && e.at >= from)
            .cloned()
            .collect()
    }

    /// The first `action` event (prefix match: `kill` also matches nothing else) of `name` at or
    /// after `from`.
    pub fn first(&self, name: &str, action: &str, from: SystemTime) -> Option<DockerEvent> {
        self.named(name, from)
            .into_iter()
            .find(|e| e.action == action)
    }
}

impl Drop for EventLog {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn parse_event(line: &str) -> Option<DockerEvent> {
    let mut parts = line.splitn(4, '|');
    let nanos: u64 = parts.next()?.trim().parse().ok()?;
    Some(DockerEvent {
        at: UNIX_EPOCH + Duration::from_nanos(nanos),
        action: parts.next()?.to_string(),
        id: parts.next()?.to_string(),
        name: parts.next()?.trim().to_string(),
    })
}

/// What [`out_of_rotation_window`] found for one server.
#[derive(Debug, Clone)]
pub struct Window {
    /// The first sample that showed the server out of rotation.
    pub out_at: Option<SystemTime>,
    /// In-rotation samples sent at or after the window's start but before `out_at` was
    /// answered: the daemon had not reacted yet (how fast it reacts is a benchmark's business).
    pub late: Vec<Sample>,
    /// In-rotation samples sent after `out_at` and answered before the window's end: the server
    /// was put back while its container was stopping (issue 8's bug).
    pub reentries: Vec<Sample>,
    /// The first in-rotation sample after `out_at` (the restore as HAProxy showed it).
    pub back_at: Option<SystemTime>,
    /// Samples inside the window: 0 means the window was not observed at all.
    pub observed: usize,
    /// The longest time between two samples inside the window (a busy machine stalls the poll).
    pub max_gap: Duration,
}

impl Window {
    /// Every sample that showed the server in rotation inside the window.
    pub fn violations(&self) -> usize {
        self.late.len() + self.reentries.len()
    }
}

/// Checks one server's samples (answered after the stop request, in order) against the window
/// `[from, end)`: from the stop signal plus the daemon's reaction allowance (or the signal
/// itself, when the daemon drains before it) until the container's next start.
pub fn out_of_rotation_window(samples: &[Sample], from: SystemTime, end: SystemTime) -> Window {
    let out_at = samples
        .iter()
        .find(|s| !s.in_rotation())
        .map(|s| s.answered);
    let after_out = |s: &Sample| out_at.is_some_and(|out| s.sent > out);
    let back_at = samples
        .iter()
        .find(|s| after_out(s) && s.in_rotation())
        .map(|s| s.answered);
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= from && s.answered < end)
        .collect();
    let max_gap = inside
        .windows(2)
        .map(|pair| {
            pair[1]
                .sent
                .duration_since(pair[0].sent)
                .unwrap_or_default()
        })
        .max()
        .unwrap_or_default();
    let (reentries, late): (Vec<Sample>, Vec<Sample>) = inside
        .iter()
        .filter(|s| s.in_rotation())
        .map(|s| (*s).clone())
        .partition(|s| after_out(s));
    Window {
        out_at,
        late,
        reentries,
        back_at,
        observed: inside.len(),
        max_gap,
    }
}

/// `b - a` in milliseconds, negative when `b` is earlier.
pub fn ms_between(a: SystemTime, b: SystemTime) -> i64 {
    match b.duration_since(a) {
        Ok(d) => d.as_millis() as i64,
        Err(e) => -(e.duration().as_millis() as i64),
    }
}
