//! The results table: every figure with its target and verdict, the machine and tool versions,
//! and the details behind the figures (each round, where the time went), as markdown for the
//! terminal and for `bench/RESULTS.md`.

use std::fmt::Write as _;
use std::process::Command;

/// Whether a figure meets its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    /// Reported without a target.
    Info,
    /// Not measured (the reason is in the row).
    Skipped,
}

impl Verdict {
    pub fn from_bool(pass: bool) -> Self {
        if pass { Verdict::Pass } else { Verdict::Fail }
    }

    fn label(self) -> &'static str {
        match self {
            Verdict::Pass => "**pass**",
            Verdict::Fail => "**FAIL**",
            Verdict::Info => "info",
            Verdict::Skipped => "skipped",
        }
    }
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub figure: String,
    pub measured: String,
    pub target: String,
    pub verdict: Verdict,
}

/// Everything a run reports.
#[derive(Debug, Default)]
pub struct Report {
    /// `name: value` facts about the run (date, machine, versions, settings).
    pub header: Vec<(String, String)>,
    pub rows: Vec<Row>,
    /// Details: one markdown bullet each.
    pub details: Vec<String>,
    /// Micro-benchmark medians: (benchmark, time).
    pub micro: Vec<(String, String)>,
}

impl Report {
    pub fn fact(&mut self, name: &str, value: impl Into<String>) {
        self.header.push((name.to_owned(), value.into()));
    }

    pub fn row(
        &mut self,
        figure: impl Into<String>,
        measured: impl Into<String>,
        target: impl Into<String>,
        verdict: Verdict,
    ) {
        self.rows.push(Row {
            figure: figure.into(),
            measured: measured.into(),
            target: target.into(),
            verdict,
        });
    }

    pub fn detail(&mut self, text: impl Into<String>) {
        self.details.push(text.into());
    }

    /// The figures that missed their target.
    pub fn failures(&self) -> Vec<&Row> {
        self.rows
            .iter()
            .filter(|row| row.verdict == Verdict::Fail)
            .collect()
    }

    /// The whole report as markdown.
    pub fn markdown(&self, command: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmark results\n");
        let _ = writeln!(
            out,
            "Written by `{command}` (`bench/src/suite.rs` says what each figure measures and how). \
             Each figure is the median of its rounds; each comparison is a ratio measured in \
             the same run.\n"
        );
        self.facts_and_table(&mut out);
        if !self.micro.is_empty() {
            let _ = writeln!(out, "\n## Micro-benchmarks (criterion, median)\n");
            let _ = writeln!(out, "| benchmark | time |");
            let _ = writeln!(out, "| --- | --- |");
            for (name, time) in &self.micro {
                let _ = writeln!(out, "| `{}` | {} |", cell(name), time);
            }
        }
        self.details_under(&mut out, "## Details");
        out
    }

    /// The report as one section of a results file, headed `## title`, saying that `command`
    /// wrote it and that `source` tells what each figure measures.
    pub fn section(&self, title: &str, command: &str, source: &str) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "## {title}\n");
        let _ = writeln!(
            out,
            "Written by `{command}` (`{source}` says what each figure measures and how).\n"
        );
        self.facts_and_table(&mut out);
        self.details_under(&mut out, "### Details");
        out
    }

    fn facts_and_table(&self, out: &mut String) {
        for (name, value) in &self.header {
            let _ = writeln!(out, "- **{name}**: {value}");
        }
        let _ = writeln!(out, "\n| figure | measured | target | result |");
        let _ = writeln!(out, "| --- | --- | --- | --- |");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                cell(&row.figure),
                cell(&row.measured),
                cell(&row.target),
                row.verdict.label()
            );
        }
    }

    fn details_under(&self, out: &mut String, heading: &str) {
        if !self.details.is_empty() {
            let _ = writeln!(out, "\n{heading}\n");
            for detail in &self.details {
                let _ = writeln!(out, "- {detail}");
            }
        }
    }
}

/// Text safe inside a table cell.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// The first line a command prints, or `fallback`.
pub fn command_line(program: &str, args: &[&str], fallback: &str) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|out| out.status.success())
        .and_then(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .next()
                .map(|line| line.trim().to_owned())
        })
        .filter(|line| !line.is_empty())
        .unwrap_or_else(|| fallback.to_owned())
}

/// The CPU model, from `/proc/cpuinfo`.
pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned())
}

/// Total memory, from `/proc/meminfo`, in GiB.
pub fn memory_gib() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("MemTotal:"))
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|kib| kib.parse::<f64>().ok())
        })
        .map_or(0.0, |kib| kib / (1024.0 * 1024.0))
}

/// Formats a count with thousands separators.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_readable() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(mib(3 * 1024 * 1024), "3.0 MiB");
    }

    #[test]
    fn a_table_row_per_figure() {
        let mut report = Report::default();
        report.fact("cores", "2");
        report.row("a | b", "1", "≥ 1", Verdict::Pass);
        report.row("c", "0", "≥ 1", Verdict::Fail);
        let text = report.markdown("scripts/bench");
        assert!(text.contains("| a \\| b | 1 | ≥ 1 | **pass** |"));
        assert_eq!(report.failures().len(), 1);
    }
}
