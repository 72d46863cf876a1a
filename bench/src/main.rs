//! `bench`: the runner behind `scripts/bench`. Starts everything the benchmarks need, runs
//! them (see [`bench::suite`] for what each figure measures and how), prints the results table
//! with the machine's core count, tool versions and the date, and writes it to
//! `bench/RESULTS.md`. Build first: `cargo build --release -p control-plane -p data-plane -p bench`
//! (the runner takes the binaries next to itself).

use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context;
use bench::report::{Report, command_line, cpu_model, memory_gib};
use bench::sessions::{self, SessionsOptions};
use bench::suite::{self, Options};
use clap::Parser;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "License-cluster benchmark suite (issue 6); normally run through scripts/bench")]
struct Args {
    /// Rounds of every figure (each figure is the median of its rounds).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Seconds per load round.
    #[arg(long, default_value_t = 5)]
    duration: u64,
    /// wrk connections.
    #[arg(long, default_value_t = 32)]
    connections: u32,
    /// wrk threads.
    #[arg(long, default_value_t = 1)]
    threads: u32,
    /// Licenses the three data planes hold.
    #[arg(long, default_value_t = 100_000)]
    licenses: usize,
    /// Licenses of the large set (0 skips the million-license figures).
    #[arg(long, default_value_t = 1_000_000)]
    million: usize,
    /// Admin writes per propagation round and per resume.
    #[arg(long, default_value_t = 1_000)]
    changes: usize,
    /// New-device activations per round.
    #[arg(long, default_value_t = 300)]
    activations: usize,
    /// Run directory (wiped at start): logs, certificates, caches, PostgreSQL.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Where to write the results table.
    #[arg(long, default_value = "bench/RESULTS.md")]
    out: PathBuf,
    /// Criterion's output directory, to add the micro-benchmarks measured since
    /// `--micro-since` to the table.
    #[arg(long)]
    criterion_dir: Option<PathBuf>,
    /// Unix time (seconds) from which criterion results count as this run's.
    #[arg(long)]
    micro_since: Option<u64>,
    /// The command that started the run, for the report.
    #[arg(long, default_value = "scripts/bench")]
    command: String,
    /// Exit with status 1 when a figure misses its target.
    #[arg(long)]
    strict: bool,
    /// Record perf CPU profiles of the first round of each phase (slows those rounds down;
    /// the summaries go to the details, the reports to the run directory).
    #[arg(long)]
    profile: bool,
    /// Measure only the million-license figures (sync, memory, resume, store apply): the
    /// serving figures are left out of the table.
    #[arg(long)]
    only_million: bool,
    /// Measure only one control plane holding `--sessions` data-plane sessions (propagation
    /// to all of them, memory and CPU per session); written as its own section of `--out`,
    /// leaving the last full run's table there.
    #[arg(long)]
    only_sessions: bool,
    /// Sessions of `--only-sessions`.
    #[arg(long, default_value_t = 1_000)]
    sessions: usize,
    /// Admin writes fanned out to the sessions.
    #[arg(long, default_value_t = 100)]
    session_changes: usize,
}

/// The cargo target directory (the runner lives in `<target>/release`).
fn target_dir() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    Ok(exe
        .parent()
        .and_then(|release| release.parent())
        .context("the runner is not in a target directory")?
        .to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let work_dir = match args.work_dir {
        Some(dir) => dir,
        None => target_dir()?.join("bench-run"),
    };
    let options = Options {
        rounds: args.rounds.max(1),
        duration: Duration::from_secs(args.duration.max(1)),
        connections: args.connections.max(1),
        threads: args.threads.max(1),
        licenses: args.licenses.max(10),
        million: args.million,
        changes: args.changes.max(10),
        activations: args.activations.max(1),
        work_dir,
        profile: args.profile && bench::profile::available(),
        only_million: args.only_million,
    };

    let mut report = Report::default();
    report.fact(
        "date",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
    );
    report.fact(
        "machine",
        format!(
            "{} cores ({}), {:.1} GiB RAM, Linux {}",
            std::thread::available_parallelism().map_or(0, usize::from),
            cpu_model(),
            memory_gib(),
            std::fs::read_to_string("/proc/sys/kernel/osrelease")
                .unwrap_or_default()
                .trim()
        ),
    );
    report.fact(
        "load average at start (1, 5, 15 min)",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(", "),
    );
    report.fact("rustc", command_line("rustc", &["-V"], "unknown"));
    if !args.only_sessions {
        report.fact("load generator", bench::wrk::version());
    }
    let commit = command_line("git", &["rev-parse", "--short", "HEAD"], "unknown");
    let dirty = command_line(
        "git",
        &["status", "--porcelain", "--untracked-files=no"],
        "",
    );
    report.fact(
        "code",
        format!(
            "commit {commit}{}, release build",
            if dirty.is_empty() {
                ""
            } else {
                " with uncommitted changes"
            }
        ),
    );

    let sessions_options = SessionsOptions {
        count: args.sessions.max(1),
        changes: args.session_changes.max(1),
        work_dir: options.work_dir.clone(),
    };
    let run = async {
        if args.only_sessions {
            sessions::run(&sessions_options, &mut report).await
        } else {
            suite::run(&options, &mut report).await
        }
    };
    let outcome = tokio::select! {
        outcome = run => outcome,
        _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
    };
    if let Err(error) = &outcome {
        report.detail(format!("**The run stopped early**: {error:#}"));
    }

    if let (Some(dir), Some(since)) = (&args.criterion_dir, args.micro_since) {
        report.micro = bench::micro::results(dir, UNIX_EPOCH + Duration::from_secs(since));
    }

    let previous = std::fs::read_to_string(&args.out).unwrap_or_default();
    let text = if args.only_sessions {
        let section = report.section(
            "One control plane, many data-plane sessions",
            &args.command,
            "bench/src/sessions/mod.rs",
        );
        println!("\n{section}");
        bench::sections::splice(&previous, "sessions", &section)
    } else {
        let text = report.markdown(&args.command);
        println!("\n{text}");
        bench::sections::carry_over(&previous, &text)
    };
    if let Some(parent) = args.out.parent() {
        std::fs::create_dir_all(parent).ok();
    }
    std::fs::write(&args.out, &text).with_context(|| format!("writing {}", args.out.display()))?;
    eprintln!("written to {}", args.out.display());
    let failures = report.failures();
    if !failures.is_empty() {
        eprintln!("missed targets:");
        for row in &failures {
            eprintln!(
                "  - {}: {} (target {})",
                row.figure, row.measured, row.target
            );
        }
    }
    outcome?;
    if args.strict && !failures.is_empty() {
        std::process::exit(1);
    }
    Ok(())
}
