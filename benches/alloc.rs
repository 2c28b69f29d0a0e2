//! Allocation and memory figures of the core, counted with dhat's global allocator:
//! allocations (and bytes) per keep-alive round, per REGISTER refresh, and the size of
//! one core's state (`size_of::<Core>()` plus the heap it holds once registered).
//!
//! Prints one line per figure in the form `scenario/figure: median (min..max) unit`.
//! Run: `cargo bench --bench alloc`.

#[path = "support/rig.rs"]
mod rig;
#[path = "support/summary.rs"]
mod summary;

use rig::{Rig, config};
use sip_ptls::engine::Core;
use sip_ptls::time::Duration;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

/// Allocations and bytes allocated while `f` runs.
fn count(f: impl FnOnce()) -> (u64, u64) {
    let before = dhat::HeapStats::get();
    f();
    let after = dhat::HeapStats::get();
    (after.total_blocks - before.total_blocks, after.total_bytes - before.total_bytes)
}

/// Live heap bytes and blocks now.
fn live() -> (usize, usize) {
    let s = dhat::HeapStats::get();
    (s.curr_bytes, s.curr_blocks)
}

fn line(id: &str, v: &[u64], unit: &str) {
    let Some((median, min, max)) = summary::stats(v.iter().map(|&x| x as f64).collect()) else { return };
    println!("{id}: {median} ({min}..{max}) {unit}");
}

/// Per round of the core's work alone: firing the deadline and receiving the answer.
/// The simulated server's allocations in between are not counted.
fn per_round(rig: &mut Rig, rounds: usize) -> (Vec<u64>, Vec<u64>) {
    let (mut blocks, mut bytes) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let (b1, y1) = count(|| rig.fire_next_deadline());
        rig.serve();
        let (b2, y2) = count(|| rig.deliver());
        blocks.push(b1 + b2);
        bytes.push(y1 + y2);
    }
    (blocks, bytes)
}

fn main() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let filter: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let wanted = |name: &str| filter.is_empty() || filter.iter().any(|f| name.contains(f.as_str()));
    const NEVER_S: u32 = 1_000_000_000;

    if wanted("alloc/keepalive") {
        let mut rig = Rig::registered(config(1, Duration::from_secs(5), NEVER_S));
        let pings = rig.pings;
        let (blocks, bytes) = per_round(&mut rig, 1000);
        assert_eq!(rig.pings - pings, 1000, "every round is a ping");
        line("alloc/keepalive_round_allocations", &blocks, "allocations");
        line("alloc/keepalive_round_bytes", &bytes, "bytes");
    }
    if wanted("alloc/register_refresh") {
        let mut rig = Rig::registered(config(1, Duration::from_secs(u64::from(NEVER_S)), 60));
        let (blocks, bytes) = per_round(&mut rig, 1000);
        line("alloc/register_refresh_allocations", &blocks, "allocations");
        line("alloc/register_refresh_bytes", &bytes, "bytes");
    }
    if wanted("alloc/core_state") {
        println!("alloc/core_size_of: {0} ({0}..{0}) bytes", std::mem::size_of::<Core>());
        for accounts in [1usize, 2, 9] {
            // The heap a registered core holds (its configuration included): build the rig
            // (core + simulated server), then drop all but the core (moved out, so its
            // buffers keep the capacities they grew to) and count what it keeps.
            let mut heap = Vec::new();
            for _ in 0..5 {
                let (base, _) = live();
                let cfg = config(accounts, Duration::from_secs(30), 3600);
                let rig = Rig::registered(cfg);
                let Rig { core, .. } = rig;
                let (with_core, _) = live();
                heap.push((with_core - base) as u64);
                drop(core);
            }
            line(&format!("alloc/core_heap_registered_{accounts}_accounts"), &heap, "bytes");
        }
    }
}
