//! A load generator: a few tasks sending GETs through HAProxy in a loop, counting every failed
//! request (connection error, timeout or non-200) with the reason. Bounded: it stops on `stop()`
//! or after `MAX_DURATION`, whichever comes first.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

const MAX_DURATION: Duration = Duration::from_secs(120);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, Default)]
struct Counters {
    ok: AtomicU64,
    failed: AtomicU64,
    failures: Mutex<Vec<String>>,
}

pub struct Load {
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Debug, Clone)]
pub struct LoadReport {
    pub ok: u64,
    pub failed: u64,
    pub failures: Vec<String>,
}

impl Load {
    /// `concurrency` clients, each GETting `path` (e.g. `/?delay_ms=20`) back to back.
    pub fn start(addr: SocketAddr, concurrency: usize, path: &str) -> Self {
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks = (0..concurrency)
            .map(|_| {
                let (counters, stop, path) = (counters.clone(), stop.clone(), path.to_string());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) && started.elapsed() < MAX_DURATION {
                        match tokio::time::timeout(REQUEST_TIMEOUT, get(addr, &path)).await {
                            Ok(Ok(_)) => {
                                counters.ok.fetch_add(1, Ordering::Relaxed);
                            }
                            Ok(Err(reason)) => fail(&counters, reason),
                            Err(_) => fail(&counters, "timeout".into()),
                        }
                    }
                })
            })
            .collect();
        Self {
            counters,
            stop,
            tasks,
        }
    }

    pub fn ok(&self) -> u64 {
        self.counters.ok.load(Ordering::Relaxed)
    }

    /// Stops every client after its current request and reports.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            let _ = task.await;
        }
        LoadReport {
            ok: self.counters.ok.load(Ordering::Relaxed),
            failed: self.counters.failed.load(Ordering::Relaxed),
            failures: self
                .counters
                .failures
                .lock()
                .map(|f| f.clone())
                .unwrap_or_default(),
        }
    }
}

fn fail(counters: &Counters, reason: String) {
    counters.failed.fetch_add(1, Ordering::Relaxed);
    if let Ok(mut failures) = counters.failures.lock() {
        if failures.len() < 20 {
            failures.push(reason);
        }
    }
}

/// One GET with `Connection: close`; the body on a 200, else what went wrong.
pub async fn get(addr: SocketAddr, path: &str) -> Result<String, String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    stream
        .read_to_end(&mut reply)
        .await
        .map_err(|e| format!("read: {e}"))?;
    let reply = String::from_utf8_lossy(&reply).into_owned();
    let status = reply.lines().next().unwrap_or("<empty reply>");
    if status.starts_with("HTTP/1.1 200") || status.starts_with("HTTP/1.0 200") {
        Ok(reply.split("\r\n\r\n").nth(1).unwrap_or("").to_string())
    } else {
        Err(format!("status: {status}"))
    }
}
