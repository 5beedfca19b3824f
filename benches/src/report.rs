//! `report --results FILE`: reads the result lines of a run (both proxies, any order) and prints
//! the comparison as a Markdown table: figure | nginx | mailproxy | ratio | target | met?.
//! Rows are derived from what the file holds (the concurrencies and idle sizes that were run);
//! repeated measurements of the same figure are summarised by their median.

use std::fs;

use crate::{Args, Record};

const BASELINE: &str = "nginx";
const CANDIDATE: &str = "mailproxy";
/// mailproxy with `auth_http_keepalive` (a directive nginx does not have): its own rows,
/// still compared with plain nginx.
const KEEPALIVE: &str = "mailproxy-keepalive";

/// What a row promises, checked on mailproxy's figure.
#[derive(Clone, Copy)]
enum Target {
    None,
    /// mailproxy / nginx must not exceed this.
    RatioAtMost(f64),
    /// mailproxy's own value must not exceed this.
    AtMost(f64),
}

impl Target {
    fn describe(self) -> String {
        match self {
            Target::None => String::new(),
            Target::RatioAtMost(r) => format!("≤ {r}× nginx"),
            Target::AtMost(v) => format!("≤ {}", number(v)),
        }
    }

    fn met(self, baseline: Option<f64>, candidate: Option<f64>) -> &'static str {
        let verdict = match (self, baseline, candidate) {
            (Target::None, _, _) => return "",
            (Target::RatioAtMost(r), Some(b), Some(c)) if b > 0.0 => c / b <= r,
            (Target::AtMost(v), _, Some(c)) => c <= v,
            _ => return "n/a",
        };
        if verdict {
            "yes"
        } else {
            "**no**"
        }
    }
}

/// One table row: which records (bench + a selecting key/value), which figure, which target.
struct Row {
    figure: String,
    /// Whose records fill the mailproxy column.
    candidate: &'static str,
    bench: &'static str,
    select: Option<(&'static str, String)>,
    key: &'static str,
    target: Target,
}

pub fn print(args: &Args) -> Result<(), String> {
    let path = args.required("results")?;
    let text = fs::read_to_string(&path).map_err(|e| format!("{path}: {e}"))?;
    let records: Vec<Record> = text
        .lines()
        .filter(|l| l.starts_with("bench="))
        .map(Record::parse)
        .collect();
    print!("{}", table(&records));
    Ok(())
}

fn table(records: &[Record]) -> String {
    let mut out = String::from(
        "| figure | nginx | mailproxy | ratio (mailproxy/nginx) | target | met? |\n\
         |---|---:|---:|---:|---|---|\n",
    );
    for row in rows(records) {
        let baseline = median(records, &row, BASELINE);
        let candidate = median(records, &row, row.candidate);
        let ratio = match (baseline, candidate) {
            (Some(b), Some(c)) if b != 0.0 => format!("{:.2}", c / b),
            _ => "—".into(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            row.figure,
            baseline.map_or("—".into(), number),
            candidate.map_or("—".into(), number),
            ratio,
            row.target.describe(),
            row.target.met(baseline, candidate),
        ));
    }
    for bench in ["logins", "relay", "idle"] {
        let versions = variants(records, bench, "tls");
        if versions.len() > 1 {
            out.push_str(&format!(
                "\n**{bench}: the proxies negotiated different TLS versions ({}): \
                 the ratios compare different handshakes.**\n",
                versions.join(", ")
            ));
        }
    }
    out.push_str(&steal_note(records));
    for failing in records
        .iter()
        .filter(|r| r.get("errors").is_some_and(|e| e != "0"))
    {
        out.push_str(&format!("\nerrors: {failing}\n"));
    }
    out
}

/// How much CPU time the hypervisor gave to other guests during the measured windows:
/// the CPU figures of a window with much steal are noisy.
fn steal_note(records: &[Record]) -> String {
    let mut steal: Vec<f64> = records
        .iter()
        .filter_map(|r| r.get("steal_pct")?.parse().ok())
        .collect();
    if steal.is_empty() {
        return String::new();
    }
    steal.sort_by(f64::total_cmp);
    let median = steal[steal.len() / 2];
    let max = steal[steal.len() - 1];
    format!(
        "\nCPU steal (time the hypervisor gave to other guests) in the measured windows: \
         median {median:.1} %, max {max:.1} %.\n"
    )
}

/// The distinct values of `key` among records of `bench`: numbers in numeric order, then
/// words in text order.
fn variants(records: &[Record], bench: &str, key: &str) -> Vec<String> {
    let mut values: Vec<String> = records
        .iter()
        .filter(|r| r.get("bench") == Some(bench))
        .filter_map(|r| r.get(key).map(String::from))
        .collect();
    values.sort_by(|a, b| {
        let key = |v: &String| (v.parse::<u64>().unwrap_or(u64::MAX), v.clone());
        key(a).cmp(&key(b))
    });
    values.dedup();
    values
}

fn rows(records: &[Record]) -> Vec<Row> {
    let mut rows = Vec::new();
    for c in variants(records, "logins", "concurrency") {
        let who = if c == "1" {
            "1 client".to_string()
        } else {
            format!("{c} clients")
        };
        let row = |figure: &str, key, target| Row {
            figure: format!("{figure}, {who}"),
            candidate: CANDIDATE,
            bench: "logins",
            select: Some(("concurrency", c.clone())),
            key,
            target,
        };
        let p50_target = if c == "1" {
            Target::AtMost(3.0)
        } else {
            Target::None
        };
        rows.push(row("logins/s", "logins_per_s", Target::None));
        rows.push(row("login latency p50 (ms)", "p50_ms", p50_target));
        rows.push(row("login latency p99 (ms)", "p99_ms", Target::None));
        rows.push(row(
            "proxy CPU per login (ms)",
            "cpu_ms_per_login",
            Target::RatioAtMost(0.6),
        ));
        let measured = |r: &&Record| r.get("proxy") == Some(KEEPALIVE);
        if records
            .iter()
            .filter(measured)
            .any(|r| r.get("concurrency") == Some(&c))
        {
            let mut kept = row(
                "proxy CPU per login (ms)",
                "cpu_ms_per_login",
                Target::RatioAtMost(0.6),
            );
            kept.figure
                .push_str(", mailproxy with `auth_http_keepalive`");
            kept.candidate = KEEPALIVE;
            rows.push(kept);
        }
    }
    for n in variants(records, "relay", "conns") {
        let row = |figure: &str, key, target| Row {
            figure: format!("{figure}, {n} conns × 10 MiB FETCH"),
            candidate: CANDIDATE,
            bench: "relay",
            select: Some(("conns", n.clone())),
            key,
            target,
        };
        rows.push(row("relay throughput (MB/s)", "mb_per_s", Target::None));
        rows.push(row(
            "proxy CPU per GiB relayed (s)",
            "cpu_s_per_gib",
            Target::RatioAtMost(0.35),
        ));
    }
    for n in variants(records, "idle", "conns") {
        let row = |figure: &str, key, target| Row {
            figure: format!("{figure}, {n} idle TLS sessions"),
            candidate: CANDIDATE,
            bench: "idle",
            select: Some(("conns", n.clone())),
            key,
            target,
        };
        rows.push(row(
            "RSS per session (KiB)",
            "rss_kib_per_conn",
            Target::RatioAtMost(0.5),
        ));
        rows.push(row(
            "PSS per session (KiB)",
            "pss_kib_per_conn",
            Target::None,
        ));
        rows.push(row("time to open all (s)", "open_seconds", Target::None));
        rows.push(row("errors", "errors", Target::AtMost(0.0)));
    }
    rows
}

/// Median of the row's figure over the matching records of one proxy.
fn median(records: &[Record], row: &Row, proxy: &str) -> Option<f64> {
    let mut values: Vec<f64> = records
        .iter()
        .filter(|r| r.get("bench") == Some(row.bench) && r.get("proxy") == Some(proxy))
        .filter(|r| {
            row.select
                .as_ref()
                .is_none_or(|(k, v)| r.get(k) == Some(v.as_str()))
        })
        .filter_map(|r| r.get(row.key)?.parse::<f64>().ok())
        .filter(|v| v.is_finite())
        .collect();
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    })
}

/// Three significant digits or so, without a trailing ".000" on counts.
fn number(v: f64) -> String {
    let a = v.abs();
    if (v == v.trunc() && a < 1e9) || a >= 100.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(lines: &str) -> Vec<Record> {
        lines.lines().map(Record::parse).collect()
    }

    #[test]
    fn table_compares_both_proxies_and_checks_targets() {
        let recs = records(
            "bench=logins proxy=nginx concurrency=1 logins_per_s=500 p50_ms=1.5 p99_ms=3 cpu_ms_per_login=0.4 errors=0\n\
             bench=logins proxy=mailproxy concurrency=1 logins_per_s=600 p50_ms=1.2 p99_ms=2 cpu_ms_per_login=0.2 errors=0\n\
             bench=idle proxy=nginx conns=1000 rss_kib_per_conn=40 errors=0\n\
             bench=idle proxy=mailproxy conns=1000 rss_kib_per_conn=30 errors=2 first_error=x\n",
        );
        let out = table(&recs);
        assert!(out.contains("| proxy CPU per login (ms), 1 client | 0.40 | 0.20 | 0.50 | ≤ 0.6× nginx | yes |\n"), "{out}");
        assert!(
            out.contains("| login latency p50 (ms), 1 client | 1.50 | 1.20 | 0.80 | ≤ 3 | yes |\n"),
            "{out}"
        );
        assert!(out.contains("| RSS per session (KiB), 1000 idle TLS sessions | 40 | 30 | 0.75 | ≤ 0.5× nginx | **no** |\n"), "{out}");
        assert!(
            out.contains("| errors, 1000 idle TLS sessions | 0 | 2 | — | ≤ 0 | **no** |\n"),
            "{out}"
        );
        assert!(out.contains("\nerrors: bench=idle proxy=mailproxy conns=1000 rss_kib_per_conn=30 errors=2 first_error=x\n"));
    }

    #[test]
    fn keepalive_rows_compare_with_plain_nginx() {
        let recs = records(
            "bench=logins proxy=nginx concurrency=200 cpu_ms_per_login=0.80 errors=0\n\
             bench=logins proxy=mailproxy concurrency=200 cpu_ms_per_login=0.72 errors=0\n\
             bench=logins proxy=mailproxy-keepalive concurrency=200 cpu_ms_per_login=0.40 errors=0\n",
        );
        let out = table(&recs);
        assert!(
            out.contains("| proxy CPU per login (ms), 200 clients | 0.80 | 0.72 | 0.90 |"),
            "{out}"
        );
        assert!(out.contains("| proxy CPU per login (ms), 200 clients, mailproxy with `auth_http_keepalive` | 0.80 | 0.40 | 0.50 | ≤ 0.6× nginx | yes |"), "{out}");
        let without =
            records("bench=logins proxy=nginx concurrency=200 cpu_ms_per_login=1.0 errors=0\n");
        assert!(!table(&without).contains("keepalive"));
    }

    #[test]
    fn steal_is_summarised() {
        let recs = records(
            "bench=relay proxy=nginx conns=8 cpu_s_per_gib=1.5 steal_pct=2.0 errors=0\n\
             bench=relay proxy=mailproxy conns=8 cpu_s_per_gib=1.0 steal_pct=9.5 errors=0\n\
             bench=logins proxy=mailproxy concurrency=1 cpu_ms_per_login=1.0 steal_pct=0.5 errors=0\n",
        );
        assert!(table(&recs).contains("median 2.0 %, max 9.5 %"));
        assert!(!table(&records("bench=relay proxy=nginx conns=8 errors=0\n")).contains("steal"));
    }

    #[test]
    fn different_tls_versions_are_flagged() {
        let same = records(
            "bench=relay proxy=nginx conns=8 cpu_s_per_gib=1.5 tls=TLSv1.3 errors=0\n\
             bench=relay proxy=mailproxy conns=8 cpu_s_per_gib=1.0 tls=TLSv1.3 errors=0\n",
        );
        assert!(!table(&same).contains("different TLS versions"));
        let mixed = records(
            "bench=relay proxy=nginx conns=8 cpu_s_per_gib=1.5 tls=TLSv1.2 errors=0\n\
             bench=relay proxy=mailproxy conns=8 cpu_s_per_gib=1.0 tls=TLSv1.3 errors=0\n",
        );
        let out = table(&mixed);
        assert!(
            out.contains(
                "**relay: the proxies negotiated different TLS versions (TLSv1.2, TLSv1.3)"
            ),
            "{out}"
        );
    }

    #[test]
    fn missing_candidate_is_not_applicable() {
        let recs =
            records("bench=relay proxy=nginx conns=8 mb_per_s=900 cpu_s_per_gib=1.5 errors=0\n");
        let out = table(&recs);
        assert!(out.contains("| proxy CPU per GiB relayed (s), 8 conns × 10 MiB FETCH | 1.50 | — | — | ≤ 0.35× nginx | n/a |\n"), "{out}");
    }

    #[test]
    fn median_of_repeats() {
        let recs = records(
            "bench=relay proxy=nginx conns=8 mb_per_s=100\n\
             bench=relay proxy=nginx conns=8 mb_per_s=300\n\
             bench=relay proxy=nginx conns=8 mb_per_s=200\n",
        );
        let row = &rows(&recs)[0];
        assert_eq!(median(&recs, row, "nginx"), Some(200.0));
    }
}
