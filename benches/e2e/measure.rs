//! Measuring helpers: median (min..max) lines in the harness's common form, and readers
//! of /proc for CPU time, resident memory and per-thread context switches (wakeups).

use std::time::Duration;

/// Median, minimum and maximum of `v` (`None` when empty).
pub fn stats(v: &[f64]) -> Option<(f64, f64, f64)> {
    crate::summary::stats(v.to_vec())
}

/// Prints `id: median (min..max) unit` with `decimals` digits; returns the median.
pub fn line(id: &str, v: &[f64], unit: &str, decimals: usize) -> Option<f64> {
    match stats(v) {
        Some((m, lo, hi)) => {
            println!("{id}: {m:.decimals$} ({lo:.decimals$}..{hi:.decimals$}) {unit}");
            Some(m)
        }
        None => {
            println!("{id}: not measured (no sample) {unit}");
            None
        }
    }
}

/// Milliseconds of a duration.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Clock ticks per second of /proc's CPU figures (USER_HZ; 100 on Linux).
const TICKS: f64 = 100.0;

/// User + system CPU time of process `pid` (10 ms resolution).
pub fn process_cpu(pid: u32) -> Duration {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { return Duration::ZERO };
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest[0] is field 3 (state); utime is field 14, stime field 15.
    let tick = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(0.0);
    Duration::from_secs_f64((tick(11) + tick(12)) / TICKS)
}

/// Resident memory in bytes from a /proc status file.
pub fn rss(status_path: &str) -> u64 {
    let text = std::fs::read_to_string(status_path).unwrap_or_default();
    text.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

/// One thread of this process: name, CPU time (ns, from schedstat) and context switches.
#[derive(Clone, Debug)]
pub struct ThreadSample {
    /// Thread id.
    pub tid: u64,
    /// `comm`.
    pub name: String,
    /// CPU time on the clock, ns.
    pub cpu_ns: u64,
    /// Voluntary context switches (the thread blocked and was woken).
    pub voluntary: u64,
    /// Involuntary context switches (preempted).
    pub involuntary: u64,
}

/// Every thread of this process.
pub fn threads() -> Vec<ThreadSample> {
    threads_of("self")
}

/// Every thread of process `pid` (a number, or `self`).
pub fn threads_of(pid: &str) -> Vec<ThreadSample> {
    let mut out = Vec::new();
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return out };
    for entry in dir.flatten() {
        let tid: u64 = entry.file_name().to_string_lossy().parse().unwrap_or(0);
        let p = entry.path();
        let name = std::fs::read_to_string(p.join("comm")).unwrap_or_default().trim().to_string();
        let cpu_ns = std::fs::read_to_string(p.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
            .unwrap_or(0);
        let status = std::fs::read_to_string(p.join("status")).unwrap_or_default();
        let field =
            |k: &str| status.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
        out.push(ThreadSample {
            tid,
            name,
            cpu_ns,
            voluntary: field("voluntary_ctxt_switches:"),
            involuntary: field("nonvoluntary_ctxt_switches:"),
        });
    }
    out
}

/// Thread `tid` of this process: time on a CPU and time waiting on a run queue
/// (runnable, not running), ns, from its schedstat.
pub fn thread_sched(tid: u64) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/self/task/{tid}/schedstat")).ok()?;
    let mut f = text.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((f.next()??, f.next()??))
}

/// Minor page faults of thread `tid` of this process so far.
pub fn thread_faults(tid: u64) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/self/task/{tid}/stat")).ok()?;
    // After the name (in parentheses): state is field 3, minflt field 10.
    stat.rsplit_once(')')?.1.split_whitespace().nth(7)?.parse().ok()
}

/// The thread ids of this process's threads called `name`.
pub fn tids_named(name: &str) -> Vec<u64> {
    threads().into_iter().filter(|t| t.name == name).map(|t| t.tid).collect()
}

/// The machine: CPU count, model and load, for the report.
pub fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map_or("unknown", |v| v.trim_start_matches([' ', '\t', ':']))
        .to_string();
    let n = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    format!("{n} CPUs, {model}, load average {}", load.join(" "))
}
