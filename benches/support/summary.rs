//! One line per criterion figure in the harness's common form
//! `scenario/figure: median (min..max) unit`, computed from the per-iteration times of
//! criterion's samples (`<output>/<group>/<function>/new/sample.json`).
#![allow(dead_code)]

use std::path::PathBuf;

/// Where criterion writes its samples (set on the `Criterion` with `output_directory`).
pub fn output_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
        .join("criterion")
}

/// How to show a figure.
pub enum Unit {
    /// Iterations per second.
    PerSecond(&'static str),
    /// Nanoseconds per iteration.
    Nanos,
    /// MB/s given the bytes handled per iteration.
    Throughput {
        /// Bytes per iteration.
        bytes: f64,
    },
}

/// The numbers of the array called `key` in a JSON text (no nesting inside the array).
fn array(json: &str, key: &str) -> Vec<f64> {
    let Some(at) = json.find(&format!("\"{key}\"")) else { return Vec::new() };
    let rest = &json[at..];
    let (Some(open), Some(close)) = (rest.find('['), rest.find(']')) else { return Vec::new() };
    rest[open + 1..close].split(',').filter_map(|s| s.trim().parse().ok()).collect()
}

/// Nanoseconds per iteration of each sample of figure `id` (`group/function`).
pub fn per_iteration(id: &str) -> Vec<f64> {
    let path = output_dir().join(id).join("new").join("sample.json");
    let Ok(json) = std::fs::read_to_string(&path) else { return Vec::new() };
    let iters = array(&json, "iters");
    let times = array(&json, "times");
    iters.iter().zip(&times).filter(|(i, _)| **i > 0.0).map(|(i, t)| t / i).collect()
}

/// Median, minimum and maximum.
pub fn stats(mut v: Vec<f64>) -> Option<(f64, f64, f64)> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 };
    Some((median, v[0], v[n - 1]))
}

/// Prints one line per figure that criterion measured in this run.
pub fn print(figures: &[(&str, Unit)]) {
    println!("--- summary (per-iteration figures over criterion's samples) ---");
    for (id, unit) in figures {
        let Some((med, min, max)) = stats(per_iteration(id)) else { continue };
        match unit {
            // A faster iteration gives the higher rate: min and max swap.
            Unit::PerSecond(u) => println!("{id}: {:.0} ({:.0}..{:.0}) {u}", 1e9 / med, 1e9 / max, 1e9 / min),
            Unit::Nanos => println!("{id}: {med:.0} ({min:.0}..{max:.0}) ns"),
            Unit::Throughput { bytes } => {
                let mbs = |ns: f64| bytes / ns * 1e9 / 1e6;
                println!("{id}: {:.1} ({:.1}..{:.1}) MB/s", mbs(med), mbs(max), mbs(min))
            }
        }
    }
}
