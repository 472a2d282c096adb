//! What a roll reports while it runs: an append-only list of steps with their timings.
//!
//! The runner writes through [`RollRecorder`]; `GET /v1/rolls/{id}` reads a [`RollProgress`]
//! snapshot. A plain mutex is enough: every critical section is a few field writes.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::duration::millis;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RollState {
    Running,
    Succeeded,
    Failed,
}

/// One step of a roll, in the order the runner takes them for each container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    /// Pull the new image (`--pull`).
    Pull,
    /// Every container exists and is mapped; the image is present. Nothing is touched before.
    Preflight,
    /// Drain and wait until sessions reach 0.
    Drain,
    Stop,
    /// Remove the container and create it again from its own configuration, with the new image.
    Recreate,
    Start,
    /// Wait until the server is back in rotation (health-gated by the controller).
    Ready,
    /// `--surge`: create and start the copy beside the running container.
    Copy,
    /// `--surge`: the copy's temporary server, health-gated, in rotation.
    Admit,
    /// `--surge`: the old container set aside, the copy under the name, its server pointed at it.
    Swap,
    /// `--surge`: the temporary server deleted, the old container stopped and removed.
    Retire,
    /// `--watch`: the post-restore watch's window passed without a failed verdict.
    Watch,
    /// `--rollback-on-failure`: the container recreated on its previous image, in rotation.
    Rollback,
}

impl StepKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Pull => "pull",
            StepKind::Preflight => "preflight",
            StepKind::Drain => "drain",
            StepKind::Stop => "stop",
            StepKind::Recreate => "recreate",
            StepKind::Start => "start",
            StepKind::Ready => "ready",
            StepKind::Copy => "copy",
            StepKind::Admit => "admit",
            StepKind::Swap => "swap",
            StepKind::Retire => "retire",
            StepKind::Watch => "watch",
            StepKind::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollStep {
    /// `None` for steps that concern the whole roll (pull, preflight).
    pub container: Option<String>,
    pub kind: StepKind,
    pub state: StepState,
    /// When the step started, from the start of the roll.
    pub started_ms: u64,
    /// How long it took (so far, while running).
    pub elapsed_ms: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// `GET /v1/rolls/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RollProgress {
    pub id: String,
    pub state: RollState,
    pub containers: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    pub steps: Vec<RollStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    pub elapsed_ms: u64,
}

#[derive(Debug)]
struct Record {
    progress: RollProgress,
    started: Instant,
    /// Start instant of each step; `None` once it finished.
    running_since: Vec<Option<Instant>>,
    finished: Option<Instant>,
}

/// Shared, cheap to clone: the runner writes, the API reads.
#[derive(Debug, Clone)]
pub struct RollRecorder {
    record: Arc<Mutex<Record>>,
}

impl RollRecorder {
    pub fn new(id: String, containers: Vec<String>, image: Option<String>) -> Self {
        let progress = RollProgress {
            id,
            state: RollState::Running,
            containers,
            image,
            steps: Vec::new(),
            error: None,
            elapsed_ms: 0,
        };
        let record = Record {
            progress,
            started: Instant::now(),
            running_since: Vec::new(),
            finished: None,
        };
        Self {
            record: Arc::new(Mutex::new(record)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Record> {
        // A panic while holding this lock leaves plain data behind; reading it is still fine.
        self.record
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records a running step; pass the returned index to [`Self::finish`].
    pub fn begin(&self, container: Option<&str>, kind: StepKind) -> usize {
        let mut record = self.lock();
        let now = Instant::now();
        let started_ms = millis(now.duration_since(record.started));
        record.progress.steps.push(RollStep {
            container: container.map(str::to_string),
            kind,
            state: StepState::Running,
            started_ms,
            elapsed_ms: 0,
            detail: None,
        });
        record.running_since.push(Some(now));
        record.progress.steps.len() - 1
    }

    pub fn finish(&self, step: usize, ok: bool, detail: Option<String>) {
        let mut record = self.lock();
        let since = record.running_since.get_mut(step).and_then(Option::take);
        if let (Some(since), Some(entry)) = (since, record.progress.steps.get_mut(step)) {
            entry.elapsed_ms = millis(since.elapsed());
            entry.state = if ok {
                StepState::Done
            } else {
                StepState::Failed
            };
            entry.detail = detail;
        }
    }

    pub fn succeed(&self) {
        let mut record = self.lock();
        record.progress.state = RollState::Succeeded;
        record.finished = Some(Instant::now());
    }

    pub fn fail(&self, error: String) {
        let mut record = self.lock();
        record.progress.state = RollState::Failed;
        record.progress.error = Some(error);
        record.finished = Some(Instant::now());
    }

    pub fn is_running(&self) -> bool {
        self.lock().progress.state == RollState::Running
    }

    pub fn containers(&self) -> Vec<String> {
        self.lock().progress.containers.clone()
    }

    /// A snapshot with elapsed times filled in up to now.
    pub fn snapshot(&self) -> RollProgress {
        let record = self.lock();
        let mut progress = record.progress.clone();
        let end = record.finished.unwrap_or_else(Instant::now);
        progress.elapsed_ms = millis(end.duration_since(record.started));
        for (step, since) in progress.steps.iter_mut().zip(&record.running_since) {
            if let Some(since) = since {
                step.elapsed_ms = millis(since.elapsed());
            }
        }
        progress
    }
}
