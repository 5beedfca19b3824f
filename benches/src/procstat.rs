//! CPU time and memory of a proxy: its main process plus every descendant (nginx's master and
//! workers; mailproxy's process and anything it forks), read from /proc. Processes that exit
//! between two samples simply stop counting, which is fine for proxies whose workers live for
//! the whole measurement.

use std::collections::HashMap;
use std::fs;

/// One sample of a process tree.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// utime + stime of all processes (all their threads), in seconds.
    pub cpu_seconds: f64,
    /// Sum of VmRSS, KiB: shared pages are counted once per process that maps them.
    pub rss_kib: u64,
    /// Sum of Pss from smaps_rollup, KiB: shared pages split between the processes sharing them.
    pub pss_kib: u64,
    pub processes: usize,
    /// The whole machine's CPU ticks so far, and how many of them the hypervisor gave to
    /// other guests (`steal` in /proc/stat): a window with much steal has noisy CPU figures.
    pub machine_ticks: u64,
    pub steal_ticks: u64,
}

impl Usage {
    /// Percent of the machine's CPU time stolen between `self` and a later sample.
    pub fn steal_percent_until(&self, later: &Usage) -> f64 {
        let total = later.machine_ticks.saturating_sub(self.machine_ticks);
        let steal = later.steal_ticks.saturating_sub(self.steal_ticks);
        if total == 0 {
            return 0.0;
        }
        100.0 * steal as f64 / total as f64
    }
}

/// Samples `root` and its descendants; `None` when `root` is not running.
pub fn sample(root: u32) -> Option<Usage> {
    let pids = tree(root);
    if pids.is_empty() {
        return None;
    }
    let ticks_per_second = clock_ticks_per_second();
    let mut usage = Usage::default();
    if let Some((total, steal)) = machine_ticks() {
        usage.machine_ticks = total;
        usage.steal_ticks = steal;
    }
    for pid in pids {
        let Some(ticks) = cpu_ticks(pid) else {
            continue; // exited since the scan
        };
        usage.processes += 1;
        usage.cpu_seconds += ticks as f64 / ticks_per_second;
        usage.rss_kib += status_field_kib(pid, "VmRSS:").unwrap_or(0);
        usage.pss_kib += rollup_field_kib(pid, "Pss:").unwrap_or(0);
    }
    Some(usage)
}

/// The `cpu` line of /proc/stat: (all ticks, steal ticks).
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guests are
    // already inside user and nice.
    let total = ticks.iter().take(8).sum();
    Some((total, *ticks.get(7)?))
}

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf only reads a constant of the running system.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// `root` (if alive) and all its descendants, found through the ppid field of every process.
fn tree(root: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut root_alive = false;
    for pid in all_pids() {
        if pid == root {
            root_alive = true;
        }
        if let Some(parent) = stat_fields(pid).and_then(|f| f.get(1)?.parse().ok()) {
            children.entry(parent).or_default().push(pid);
        }
    }
    if !root_alive {
        return Vec::new();
    }
    let mut found = vec![root];
    let mut next = 0;
    while next < found.len() {
        if let Some(kids) = children.get(&found[next]) {
            found.extend(kids);
        }
        next += 1;
    }
    found
}

fn all_pids() -> Vec<u32> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect()
}

/// The fields of /proc/PID/stat after the command name, which may itself contain spaces and
/// parentheses: index 0 is the state (field 3 of proc(5)), 1 the ppid, 11 utime, 12 stime.
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &text[text.rfind(')')? + 1..];
    Some(after_name.split_whitespace().map(String::from).collect())
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let fields = stat_fields(pid)?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn status_field_kib(pid: u32, name: &str) -> Option<u64> {
    kib_field(
        &fs::read_to_string(format!("/proc/{pid}/status")).ok()?,
        name,
    )
}

fn rollup_field_kib(pid: u32, name: &str) -> Option<u64> {
    kib_field(
        &fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?,
        name,
    )
}

/// Finds `name   1234 kB` in a /proc text file.
fn kib_field(text: &str, name: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with(name))?;
    line[name.len()..].split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kib_field_reads_the_number_after_the_name() {
        let text = "Name:\tnginx\nVmHWM:\t   9000 kB\nVmRSS:\t    8123 kB\n";
        assert_eq!(kib_field(text, "VmRSS:"), Some(8123));
        assert_eq!(kib_field(text, "Pss:"), None);
    }

    #[test]
    fn own_process_is_sampled() {
        let me = std::process::id();
        let usage = sample(me).expect("the test process is running");
        assert!(usage.processes >= 1);
        assert!(usage.rss_kib > 0);
        assert_eq!(tree(me)[0], me);
    }
}
