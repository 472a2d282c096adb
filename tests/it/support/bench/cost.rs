//! What a process costs, from /proc: CPU time (utime + stime of /proc/PID/stat) and resident
//! memory (VmRSS of /proc/PID/status). A sampler task keeps the peak RSS over a window.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

/// CPU seconds (user + system) the process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Some((utime + stime) / ticks.max(1.0))
}

/// Current resident set size in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// CPU share (percent of one core) and peak RSS of one process over a window.
#[derive(Debug, Clone, Copy, Default)]
pub struct Cost {
    pub cpu_percent: f64,
    pub peak_rss_kib: u64,
}

pub struct CostSampler {
    pid: u32,
    started: Instant,
    cpu_before: f64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl CostSampler {
    /// Starts measuring `pid`: RSS every 100 ms, CPU time at both ends.
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss_kib(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let (sink, flag) = (peak.clone(), stop.clone());
        let task = tokio::spawn(async move {
            while !flag.load(Ordering::Relaxed) {
                if let Some(rss) = rss_kib(pid) {
                    sink.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self {
            pid,
            started: Instant::now(),
            cpu_before: cpu_seconds(pid).unwrap_or(0.0),
            peak,
            stop,
            task,
        }
    }

    pub async fn stop(self) -> Cost {
        let wall = self.started.elapsed().as_secs_f64();
        let cpu = cpu_seconds(self.pid).unwrap_or(self.cpu_before) - self.cpu_before;
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        Cost {
            cpu_percent: 100.0 * cpu / wall.max(1e-9),
            peak_rss_kib: self.peak.load(Ordering::Relaxed),
        }
    }
}
