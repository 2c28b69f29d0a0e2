//! The SVG chart of call setup time against RTT for each transport variant, with the
//! medians joined by lines, min..max whiskers, and each variant's floor dashed.

use crate::call_setup::{Mode, Point};
use crate::measure::stats;
use std::fmt::Write;

const W: f64 = 770.0;
const H: f64 = 440.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 250.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;
const COLOURS: [&str; 4] = ["#1b7837", "#762a83", "#2166ac", "#b2182b"];

/// The chart for `results` (mode, RTT in ms, measured point).
pub fn call_setup_chart(results: &[(Mode, u64, Point)]) -> String {
    let max_rtt = results.iter().map(|r| r.1).max().unwrap_or(50).max(1) as f64;
    let max_t = results
        .iter()
        .filter_map(|(_, _, p)| stats(&p.ok).map(|s| s.2))
        .fold(1.0f64, f64::max)
        .max(results.iter().map(|(m, r, _)| m.floor_rtts * *r as f64).fold(0.0, f64::max));
    let y_top = nice(max_t * 1.08);
    let x = |rtt: f64| LEFT + rtt / max_rtt * (W - LEFT - RIGHT);
    let y = |t: f64| H - BOTTOM - t / y_top * (H - TOP - BOTTOM);
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">Call setup (place-call to 200 OK) against round-trip time</text>"#,
        W / 2.0
    );
    // Axes, ticks and grid.
    let (x0, y0) = (x(0.0), y(0.0));
    let _ = writeln!(s, r##"<line x1="{x0}" y1="{y0}" x2="{}" y2="{y0}" stroke="#000"/>"##, x(max_rtt));
    let _ = writeln!(s, r##"<line x1="{x0}" y1="{y0}" x2="{x0}" y2="{}" stroke="#000"/>"##, y(y_top));
    let mut rtts: Vec<u64> = results.iter().map(|r| r.1).collect();
    rtts.sort_unstable();
    rtts.dedup();
    for r in &rtts {
        let _ = writeln!(s, r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{r}</text>"#, x(*r as f64), y0 + 18.0);
    }
    for i in 0..=5 {
        let t = y_top * f64::from(i) / 5.0;
        let _ = writeln!(
            s,
            r##"<line x1="{x0}" y1="{0:.1}" x2="{1:.1}" y2="{0:.1}" stroke="#ddd"/><text x="{2:.1}" y="{3:.1}" text-anchor="end">{t:.0}</text>"##,
            y(t),
            x(max_rtt),
            x0 - 6.0,
            y(t) + 4.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">emulated RTT (ms)</text>"#,
        x(max_rtt / 2.0),
        H - 15.0
    );
    let _ = writeln!(
        s,
        r#"<text x="18" y="{:.1}" text-anchor="middle" transform="rotate(-90 18 {:.1})">call setup (ms)</text>"#,
        H / 2.0,
        H / 2.0
    );
    // One series per mode.
    // Each name once, in the order of first appearance (results run RTT by RTT).
    let mut names: Vec<&str> = Vec::new();
    for (mode, _, _) in results {
        if !names.contains(&mode.name) {
            names.push(mode.name);
        }
    }
    let mut legend_y = TOP + 10.0;
    for (i, name) in names.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut pts: Vec<(Mode, u64, (f64, f64, f64))> = results
            .iter()
            .filter(|r| r.0.name == *name)
            .filter_map(|(m, r, p)| stats(&p.ok).map(|st| (*m, *r, st)))
            .collect();
        pts.sort_by_key(|p| p.1);
        let path: Vec<String> = pts.iter().map(|(_, r, st)| format!("{:.1},{:.1}", x(*r as f64), y(st.0))).collect();
        let _ =
            writeln!(s, r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#, path.join(" "));
        for (_, r, (m, lo, hi)) in &pts {
            let cx = x(*r as f64);
            let _ = writeln!(
                s,
                r#"<line x1="{cx:.1}" y1="{:.1}" x2="{cx:.1}" y2="{:.1}" stroke="{colour}"/><circle cx="{cx:.1}" cy="{:.1}" r="3.5" fill="{colour}"><title>{name} at {r} ms RTT: median {m:.2} ms (min {lo:.2}, max {hi:.2})</title></circle>"#,
                y(*lo),
                y(*hi),
                y(*m)
            );
        }
        if let Some((mode, _, _)) = pts.first() {
            let floor: Vec<String> = pts
                .iter()
                .map(|(_, r, _)| format!("{:.1},{:.1}", x(*r as f64), y(mode.floor_rtts * *r as f64)))
                .collect();
            let _ = writeln!(
                s,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="1" stroke-dasharray="5,4"/>"#,
                floor.join(" ")
            );
            let lx = W - RIGHT + 15.0;
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{legend_y}" x2="{}" y2="{legend_y}" stroke="{colour}" stroke-width="2"/><text x="{}" y="{}">{name}</text>"#,
                lx + 25.0,
                lx + 30.0,
                legend_y + 4.0
            );
            let _ = writeln!(
                s,
                r#"<line x1="{lx}" y1="{0}" x2="{1}" y2="{0}" stroke="{colour}" stroke-dasharray="5,4"/><text x="{2}" y="{3}">floor: {4} RTT</text>"#,
                legend_y + 18.0,
                lx + 25.0,
                lx + 30.0,
                legend_y + 22.0,
                mode.floor_rtts
            );
            legend_y += 48.0;
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{}" font-size="10">median, whiskers min..max; generated by benches/e2e (cargo bench --bench e2e -- call_setup)</text>"#,
        LEFT,
        H - 2.0
    );
    s.push_str("</svg>\n");
    s
}

/// A round axis top at or above `v`.
fn nice(v: f64) -> f64 {
    let mag = 10f64.powf(v.max(1e-9).log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * mag >= v {
            return m * mag;
        }
    }
    10.0 * mag
}
