//! Runtime API client against a real HAProxy 2.6 with 1,000 servers.
//!
//! `cargo bench --bench haproxy_client` prints a table: one `get weight` round trip, 1,000 commands
//! one connection each vs pipelined on one connection, and `show stat` for 1,000 servers (the
//! round trip and the parse alone).

#[path = "../tests/it/support/haproxy.rs"]
mod fixture;

use std::time::{Duration, Instant};

use haproxy_drain::haproxy::stat::parse_stat;
use haproxy_drain::haproxy::{Command, Reply, RowKind, ServerId, WeightSpec};

const SERVERS: usize = 1000;

fn main() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    // Servers point at one closed loopback port and have no checks: only the API is measured.
    let mut sections = String::from("backend be\n    balance roundrobin\n");
    for n in 0..SERVERS {
        sections.push_str(&format!("    server s{n} 127.0.0.1:9 weight 100\n"));
    }
    let haproxy = fixture::HaproxyFixture::start(&sections).await;
    let client = haproxy.admin_client().with_timeout(Duration::from_secs(30));
    let server = |n: usize| ServerId::new("be", format!("s{n}"));
    let mut table = Vec::new();

    // One `get weight` round trip (connect, prompt, command, reply, close).
    for _ in 0..200 {
        client.get_weight(&server(0)).await.expect("warm-up");
    }
    let mut samples = Vec::new();
    for i in 0..5000 {
        let started = Instant::now();
        client
            .get_weight(&server(i % SERVERS))
            .await
            .expect("get weight");
        samples.push(started.elapsed());
    }
    table.push(row_from_samples(
        "get weight, one round trip (5,000 samples)",
        &mut samples,
    ));

    // 1,000 `set weight`, one connection each vs one pipelined batch.
    let commands: Vec<Command> = (0..SERVERS)
        .map(|n| Command::SetWeight(server(n), WeightSpec::Absolute((n % 256) as u32)))
        .collect();
    let mut sequential = Vec::new();
    let mut pipelined = Vec::new();
    for run in 0..20 {
        if run < 5 {
            let started = Instant::now();
            for command in &commands {
                client.call(command.clone()).await.expect("set weight");
            }
            sequential.push(started.elapsed());
        }
        let started = Instant::now();
        let results = client.batch(&commands).await.expect("batch");
        pipelined.push(started.elapsed());
        assert!(results.iter().all(|r| *r == Ok(Reply::Done)));
    }
    table.push(total_row(
        "1,000 set weight, one connection each (5 runs)",
        &mut sequential,
    ));
    table.push(total_row(
        "1,000 set weight, pipelined on one connection (20 runs)",
        &mut pipelined,
    ));
    let reads: Vec<Command> = (0..SERVERS)
        .map(|n| Command::GetWeight(server(n)))
        .collect();
    let mut pipelined_reads = Vec::new();
    for _ in 0..20 {
        let started = Instant::now();
        client.batch(&reads).await.expect("batch of reads");
        pipelined_reads.push(started.elapsed());
    }
    table.push(total_row(
        "1,000 get weight, pipelined on one connection (20 runs)",
        &mut pipelined_reads,
    ));

    // `show stat` with 1,000 servers: round trip + parse, then the parse alone on that text.
    let mut round_trips = Vec::new();
    for _ in 0..50 {
        let started = Instant::now();
        let rows = client.show_stat().await.expect("show stat");
        round_trips.push(started.elapsed());
        assert_eq!(
            rows.iter().filter(|r| r.kind == RowKind::Server).count(),
            SERVERS
        );
    }
    table.push(row_from_samples(
        "show stat, 1,000 servers: round trip + parse (50)",
        &mut round_trips,
    ));
    let text = client.raw("show stat").await.expect("raw show stat");
    let mut parses = Vec::new();
    for _ in 0..200 {
        let started = Instant::now();
        let rows = parse_stat(&text).expect("parse");
        parses.push(started.elapsed());
        assert!(rows.len() > SERVERS);
    }
    let label = format!(
        "parse_stat alone, 1,000 servers ({} KiB) (200)",
        text.len() / 1024
    );
    table.push(row_from_samples(&label, &mut parses));

    print_table(&table);
}

struct Row {
    what: String,
    p50: Duration,
    p99: Duration,
    per_command: Option<Duration>,
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples.get(index).copied().unwrap_or_default()
}

fn row_from_samples(what: &str, samples: &mut [Duration]) -> Row {
    Row {
        what: what.to_string(),
        p50: percentile(samples, 0.50),
        p99: percentile(samples, 0.99),
        per_command: None,
    }
}

fn total_row(what: &str, samples: &mut [Duration]) -> Row {
    let p50 = percentile(samples, 0.50);
    Row {
        what: what.to_string(),
        p50,
        p99: percentile(samples, 1.0),
        per_command: Some(p50 / SERVERS as u32),
    }
}

fn print_table(rows: &[Row]) {
    println!("| measurement | p50 | p99 (max for runs) | per command (p50) |");
    println!("|---|---|---|---|");
    for row in rows {
        let per = row
            .per_command
            .map(|d| format!("{d:.1?}"))
            .unwrap_or_else(|| "-".into());
        println!(
            "| {} | {:.2?} | {:.2?} | {per} |",
            row.what, row.p50, row.p99
        );
    }
}
