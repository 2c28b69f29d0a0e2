//! Writes the generated parts of `docs/benchmarks.md` from one kept benchmark run
//! (`docs/bench-runs/<commit>.txt`, made by `scripts/bench-run.sh`), so that no figure in
//! the document is transcribed by hand.
//!
//! ```text
//! cargo run --example bench_tables -- docs/bench-runs/<commit>.txt docs/benchmarks.md
//! ```
//!
//! The document marks what is generated with HTML comments; everything between a marker
//! and its end is replaced, everything else is left as written:
//!
//! - `<!-- run -->` … `<!-- /run -->`: which run the figures come from (its first line).
//! - `<!-- figures: PREFIX -->` … `<!-- /figures -->`: a table of every figure whose name
//!   starts with PREFIX, in the order the run printed them.
//! - `<!-- goal: NAME <= BOUND -->` … `<!-- /goal -->` (also `<`, `>=`, `>`): "met" or
//!   "missed" with the measured median; on lines of their own, or both on one line (a
//!   table cell), where the text between them is replaced.
//! - `<!-- peer-table -->` … `<!-- /peer-table -->`: the side-by-side table the peer
//!   scenario printed.
//!
//! A marker whose figures are not in the run is an error naming it: a table is never left
//! half-made or silently empty.

use std::fmt::Write as _;
use std::process::ExitCode;

/// One figure line of a run: `name: median (min..max) unit`.
#[derive(Clone, Debug, PartialEq)]
struct Figure {
    name: String,
    median: String,
    range: Option<(String, String)>,
    unit: String,
}

/// Reads `name: median (min..max) unit`, or `name: not measured (…) unit`.
fn parse_figure(line: &str) -> Option<Figure> {
    let (name, rest) = line.split_once(": ")?;
    if name.is_empty() || name.contains(char::is_whitespace) || !name.contains('/') {
        return None;
    }
    if let Some(unit) = rest.strip_prefix("not measured") {
        return Some(Figure {
            name: name.to_owned(),
            median: "not measured".to_owned(),
            range: None,
            unit: unit.trim().to_owned(),
        });
    }
    let (median, rest) = rest.split_once(" (")?;
    let (range, unit) = rest.split_once(") ")?;
    let (lo, hi) = range.split_once("..")?;
    median.parse::<f64>().ok()?;
    Some(Figure {
        name: name.to_owned(),
        median: median.to_owned(),
        range: Some((lo.to_owned(), hi.to_owned())),
        unit: unit.trim().to_owned(),
    })
}

/// What a run file holds: its first line and its figures (a name printed twice keeps its
/// last value).
struct Run {
    header: String,
    figures: Vec<Figure>,
    peer_table: Vec<String>,
}

fn parse_run(text: &str) -> Run {
    let header = text.lines().next().unwrap_or("").trim_start_matches('#').trim().to_owned();
    let mut figures: Vec<Figure> = Vec::new();
    let mut peer_table = Vec::new();
    let mut in_table = false;
    for line in text.lines() {
        if let Some(f) = parse_figure(line.trim()) {
            figures.retain(|g| g.name != f.name);
            figures.push(f);
        }
        // The peer scenario ends with its table; a later table replaces an earlier one.
        if line.starts_with("| figure | sip-ptls |") {
            peer_table.clear();
            in_table = true;
        }
        if in_table {
            if line.starts_with('|') {
                peer_table.push(line.to_owned());
            } else {
                in_table = false;
            }
        }
    }
    Run { header, figures, peer_table }
}

fn figures_table(run: &Run, prefix: &str) -> Result<String, String> {
    let rows: Vec<&Figure> = run.figures.iter().filter(|f| f.name.starts_with(prefix)).collect();
    if rows.is_empty() {
        return Err(format!("no figure named {prefix}… in the run"));
    }
    let mut out = String::from("| figure | median | min..max | unit |\n| --- | ---: | ---: | --- |\n");
    for f in rows {
        let range = f.range.as_ref().map_or_else(|| "-".to_owned(), |(lo, hi)| format!("{lo}..{hi}"));
        let _ = writeln!(out, "| `{}` | {} | {} | {} |", f.name, f.median, range, f.unit);
    }
    Ok(out)
}

fn goal(run: &Run, spec: &str) -> Result<String, String> {
    let words: Vec<&str> = spec.split_whitespace().collect();
    let [name, op, bound] = words[..] else {
        return Err(format!("goal {spec:?}: expected `NAME OP BOUND`"));
    };
    let bound_value: f64 = bound.parse().map_err(|_| format!("goal {spec:?}: {bound:?} is not a number"))?;
    let figure = run
        .figures
        .iter()
        .find(|f| f.name == name)
        .ok_or_else(|| format!("goal {spec:?}: no figure {name} in the run"))?;
    let value: f64 = figure.median.parse().map_err(|_| format!("goal {spec:?}: {name} was not measured"))?;
    let met = match op {
        "<=" => value <= bound_value,
        "<" => value < bound_value,
        ">=" => value >= bound_value,
        ">" => value > bound_value,
        _ => return Err(format!("goal {spec:?}: unknown comparison {op:?}")),
    };
    let verdict = if met { "met" } else { "missed" };
    Ok(format!("**{verdict}**: `{name}` = {} {} (goal {op} {bound})\n", figure.median, figure.unit))
}

/// `line` with every goal marked inside it (`<!-- goal: … --> … <!-- /goal -->`, both on
/// the line) written again; a line without one is returned as it is.
fn inline_goals(line: &str, run: &Run) -> Result<String, String> {
    const OPEN: &str = "<!-- goal: ";
    const CLOSE: &str = "<!-- /goal -->";
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find(OPEN) {
        let after_open = &rest[start + OPEN.len()..];
        let Some(spec_end) = after_open.find(" -->") else { break };
        let Some(close) = after_open.find(CLOSE) else { break };
        let spec = &after_open[..spec_end];
        let verdict = goal(run, spec)?;
        out.push_str(&rest[..start + OPEN.len() + spec_end + 4]);
        out.push(' ');
        out.push_str(verdict.trim_end());
        out.push(' ');
        out.push_str(CLOSE);
        rest = &after_open[close + CLOSE.len()..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The document with every generated part written again from `run`.
fn regenerate(doc: &str, run: &Run, run_file: &str) -> Result<String, String> {
    let mut out = String::new();
    let mut skipping: Option<&str> = None;
    for (number, line) in doc.lines().enumerate() {
        let trimmed = line.trim();
        if skipping.is_none() && !trimmed.starts_with("<!-- ") && trimmed.contains("<!-- goal: ") {
            let line = inline_goals(line, run).map_err(|e| format!("docs line {}: {e}", number + 1))?;
            out.push_str(&line);
            out.push('\n');
            continue;
        }
        if let Some(end) = skipping {
            if trimmed == end {
                out.push_str(line);
                out.push('\n');
                skipping = None;
            }
            continue;
        }
        out.push_str(line);
        out.push('\n');
        let Some(inner) = trimmed.strip_prefix("<!-- ").and_then(|t| t.strip_suffix(" -->")) else { continue };
        let at = |e: String| format!("docs line {}: {e}", number + 1);
        let (generated, end) = if inner == "run" {
            (format!("Every figure in a generated table comes from `{run_file}`: {}.\n", run.header), "<!-- /run -->")
        } else if let Some(prefix) = inner.strip_prefix("figures: ") {
            (figures_table(run, prefix.trim()).map_err(at)?, "<!-- /figures -->")
        } else if let Some(spec) = inner.strip_prefix("goal: ") {
            (goal(run, spec).map_err(at)?, "<!-- /goal -->")
        } else if inner == "peer-table" {
            if run.peer_table.is_empty() {
                return Err(at("the run has no peer table".to_owned()));
            }
            (run.peer_table.join("\n") + "\n", "<!-- /peer-table -->")
        } else {
            continue;
        };
        out.push_str(&generated);
        skipping = Some(end);
    }
    match skipping {
        Some(end) => Err(format!("a generated part is not closed by {end}")),
        None => Ok(out),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [run_file, doc_file] = &args[..] else {
        eprintln!("usage: bench_tables RUN_FILE DOC_FILE");
        return ExitCode::from(2);
    };
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}"));
    let result = read(run_file).and_then(|run| {
        let doc = read(doc_file)?;
        let new = regenerate(&doc, &parse_run(&run), run_file)?;
        std::fs::write(doc_file, new).map_err(|e| format!("cannot write {doc_file}: {e}"))
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_tables: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_figure, parse_run, regenerate};

    const RUN: &str = "# run at abc1234, 2026-11-30 10:00 UTC, load average 1.0 1.0 1.0\n\
        == idle\n\
        idle/wakeups_per_ping: 2.00 (2.00..2.00) wakeups\n\
        idle/cpu_time: 10.4 (9.0..12.5) ms\n\
        call_setup/persistent: 1.014 (0.953..1.329) ms\n\
        scale/rss: not measured (no sample) KiB\n\
        | figure | sip-ptls | baresip |\n| --- | --- | --- |\n| dial | 5 ms | 48 ms |\n\
        done\n";

    #[test]
    fn figure_lines_are_read_and_other_lines_are_not() {
        let f = parse_figure("idle/cpu_time: 10.4 (9.0..12.5) ms").unwrap();
        assert_eq!((f.name.as_str(), f.median.as_str(), f.unit.as_str()), ("idle/cpu_time", "10.4", "ms"));
        assert_eq!(f.range, Some(("9.0".to_owned(), "12.5".to_owned())));
        assert!(parse_figure("idle: window 600.0 s, keep-alive 5 s").is_none());
        assert!(parse_figure("[sip-ptls] call 0: Answered(17.3ms)").is_none());
        assert!(parse_figure("a/b: fast (1..2) ms").is_none());
    }

    #[test]
    fn marked_parts_are_written_again_and_the_rest_is_kept() {
        let doc = "# Title\nprose\n<!-- run -->\nold\n<!-- /run -->\n<!-- figures: idle/ -->\n| old |\n<!-- /figures -->\n\
            <!-- goal: idle/wakeups_per_ping <= 2 -->\nold\n<!-- /goal -->\n<!-- goal: call_setup/persistent < 1 -->\n<!-- /goal -->\n\
            <!-- peer-table -->\n<!-- /peer-table -->\nend\n";
        let out = regenerate(doc, &parse_run(RUN), "docs/bench-runs/abc1234.txt").unwrap();
        assert!(out.starts_with("# Title\nprose\n<!-- run -->\nEvery figure in a generated table comes from `docs/bench-runs/abc1234.txt`: run at abc1234"));
        assert!(out.contains("| `idle/wakeups_per_ping` | 2.00 | 2.00..2.00 | wakeups |\n| `idle/cpu_time` | 10.4 | 9.0..12.5 | ms |\n<!-- /figures -->"));
        assert!(!out.contains("old"));
        assert!(out.contains("**met**: `idle/wakeups_per_ping` = 2.00 wakeups (goal <= 2)"));
        assert!(out.contains("**missed**: `call_setup/persistent` = 1.014 ms (goal < 1)"));
        assert!(out.contains("<!-- peer-table -->\n| figure | sip-ptls | baresip |\n| --- | --- | --- |\n| dial | 5 ms | 48 ms |\n<!-- /peer-table -->\nend\n"));
        // Generating twice gives the same document.
        assert_eq!(regenerate(&out, &parse_run(RUN), "docs/bench-runs/abc1234.txt").unwrap(), out);
    }

    #[test]
    fn goals_inside_a_table_row_are_written_again() {
        let doc = "| goal | verdict |\n| idle | <!-- goal: idle/wakeups_per_ping <= 2 --> old <!-- /goal --> |\n\
            | both | <!-- goal: idle/cpu_time < 5 --> <!-- /goal --> and <!-- goal: idle/cpu_time > 5 --> x <!-- /goal --> |\n";
        let out = regenerate(doc, &parse_run(RUN), "r").unwrap();
        assert!(out.contains("| idle | <!-- goal: idle/wakeups_per_ping <= 2 --> **met**: `idle/wakeups_per_ping` = 2.00 wakeups (goal <= 2) <!-- /goal --> |\n"), "{out}");
        assert!(out.contains("<!-- goal: idle/cpu_time < 5 --> **missed**: `idle/cpu_time` = 10.4 ms (goal < 5) <!-- /goal --> and <!-- goal: idle/cpu_time > 5 --> **met**"), "{out}");
        assert!(!out.contains("old"));
        assert_eq!(regenerate(&out, &parse_run(RUN), "r").unwrap(), out);
        let missing =
            regenerate("| x | <!-- goal: storm/x < 1 --> <!-- /goal --> |\n", &parse_run(RUN), "r").unwrap_err();
        assert!(missing.contains("docs line 1") && missing.contains("storm/x"), "{missing}");
    }

    #[test]
    fn a_marker_without_figures_or_without_its_end_is_an_error() {
        let run = parse_run(RUN);
        let missing = regenerate("<!-- figures: storm/ -->\n<!-- /figures -->\n", &run, "r").unwrap_err();
        assert!(missing.contains("docs line 1") && missing.contains("storm/"), "{missing}");
        let unmeasured = regenerate("<!-- goal: scale/rss < 50 -->\n<!-- /goal -->\n", &run, "r").unwrap_err();
        assert!(unmeasured.contains("not measured"), "{unmeasured}");
        let open = regenerate("<!-- figures: idle/ -->\nno end\n", &run, "r").unwrap_err();
        assert!(open.contains("not closed"), "{open}");
    }
}
