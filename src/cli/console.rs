//! The commands `sip-ptls run` reads on standard input (dial, answer, reject, hang up,
//! status, help): how a line is parsed and how a status is printed. Each command goes to
//! the phone through the embedding API, like any application's; nothing here decides.

use sip_ptls::ids::CallId;
use sip_ptls::runtime::Status;
use std::fmt::Write as _;

/// What `help` prints, and the help of `run` repeats.
pub const HELP: &str = "\
commands (one per line on standard input):
  dial LINE TARGET     place a call from line LINE (1-9) to TARGET (a number, user@host or a sip:/sips: URI)
  answer CALL          answer incoming call CALL (the number of call#N in the log)
  reject CALL [STATUS] reject incoming call CALL with STATUS (400-699, default 486)
  hangup CALL          hang up or cancel call CALL (also: hang up CALL)
  status               the connection, each line's registration and the calls waiting
  help                 this list";

/// One command typed on standard input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ConsoleCommand {
    /// Place a call from an Aastra line number (1 to 9).
    Dial {
        /// The Aastra line number.
        line: u8,
        /// Whom to call.
        target: String,
    },
    /// Answer a ringing incoming call.
    Answer(CallId),
    /// Reject a ringing incoming call with a status.
    Reject(CallId, u16),
    /// Hang up, cancel or refuse a call.
    HangUp(CallId),
    /// Print the phone's status.
    Status,
    /// Print the commands.
    Help,
}

/// Parses one line; `Ok(None)` for a blank line or a comment (`#`).
pub fn parse(line: &str) -> Result<Option<ConsoleCommand>, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let Some(first) = words.first() else { return Ok(None) };
    if first.starts_with('#') {
        return Ok(None);
    }
    let verb = first.to_ascii_lowercase();
    // "hang up CALL" is two words for one verb.
    let (verb, args) = if verb == "hang" && words.get(1).is_some_and(|w| w.eq_ignore_ascii_case("up")) {
        ("hangup".to_owned(), &words[2..])
    } else {
        (verb, &words[1..])
    };
    let command = match (verb.as_str(), args) {
        ("dial", [line, target]) => ConsoleCommand::Dial { line: line_number(line)?, target: (*target).to_owned() },
        ("dial", _) => return Err("usage: dial LINE TARGET".to_owned()),
        ("answer", [call]) => ConsoleCommand::Answer(call_id(call)?),
        ("answer", _) => return Err("usage: answer CALL".to_owned()),
        ("reject", [call]) => ConsoleCommand::Reject(call_id(call)?, 486),
        ("reject", [call, status]) => ConsoleCommand::Reject(call_id(call)?, reject_status(status)?),
        ("reject", _) => return Err("usage: reject CALL [STATUS]".to_owned()),
        ("hangup" | "bye" | "cancel", [call]) => ConsoleCommand::HangUp(call_id(call)?),
        ("hangup" | "bye" | "cancel", _) => return Err("usage: hangup CALL".to_owned()),
        ("status", []) => ConsoleCommand::Status,
        ("help" | "?", []) => ConsoleCommand::Help,
        ("status" | "help" | "?", _) => return Err(format!("{verb} takes no argument")),
        _ => return Err(format!("unknown command {first:?} (help lists the commands)")),
    };
    Ok(Some(command))
}

fn line_number(word: &str) -> Result<u8, String> {
    match word.parse::<u8>() {
        Ok(n @ 1..=9) => Ok(n),
        _ => Err(format!("line {word:?} is not a line number from 1 to 9")),
    }
}

/// A call as the log names it: `call#3`, or just `3`.
fn call_id(word: &str) -> Result<CallId, String> {
    let digits = word.strip_prefix("call#").unwrap_or(word);
    digits.parse::<u32>().map(CallId).map_err(|_| format!("{word:?} is not a call (call#N or N)"))
}

fn reject_status(word: &str) -> Result<u16, String> {
    match word.parse::<u16>() {
        Ok(s @ 400..=699) => Ok(s),
        _ => Err(format!("status {word:?} is not a final failure status from 400 to 699")),
    }
}

/// The status in a few lines of text.
pub fn describe_status(status: &Status, line_numbers: &[u8]) -> String {
    let mut out = format!("status: connection {}", status.flow);
    if status.failed_rounds > 0 {
        let _ = write!(out, ", {} rounds failed in a row", status.failed_rounds);
    }
    if status.good_probes > 0 {
        let _ = write!(out, ", {} good probes of the primary", status.good_probes);
    }
    if let Some(at) = status.next_retry {
        let _ = write!(out, ", next round in {} ms", at.saturating_since(status.now).as_millis());
    }
    let link = status.link;
    if let Some((_, since)) = link.up_since {
        let _ = write!(
            out,
            "\nstatus: connection up for {} s, {} pings sent, {} pongs received",
            status.now.saturating_since(since).as_secs(),
            link.pings_sent,
            link.pongs_received
        );
        if let Some(rtt) = link.last_pong_rtt {
            let _ = write!(out, ", last round trip {} ms", rtt.as_millis());
        }
    }
    for (i, reg) in status.registrations.iter().enumerate() {
        let line = line_numbers.get(i).copied().unwrap_or(i as u8 + 1);
        let _ = write!(out, "\nstatus: line {line} {reg}");
        if let Some(at) = status.binding_expiry.get(i).copied().flatten() {
            let _ = write!(out, ", expires in {} s", at.saturating_since(status.now).as_secs());
        }
    }
    for c in &status.calls {
        let line = line_numbers.get(usize::from(c.account.0)).copied().unwrap_or(c.account.0 + 1);
        let direction = if c.outgoing { "to" } else { "from" };
        let _ = write!(out, "\nstatus: {} on line {line} {direction} {}: {:?}", c.call, c.peer, c.stage);
    }
    let _ = write!(out, "\nstatus: {} calls waiting for the connection", status.queued_calls);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_parses_with_its_arguments() {
        assert_eq!(parse("dial 1 2000"), Ok(Some(ConsoleCommand::Dial { line: 1, target: "2000".to_owned() })));
        assert_eq!(parse("  ANSWER call#7 "), Ok(Some(ConsoleCommand::Answer(CallId(7)))));
        assert_eq!(parse("reject 3"), Ok(Some(ConsoleCommand::Reject(CallId(3), 486))));
        assert_eq!(parse("reject 3 603"), Ok(Some(ConsoleCommand::Reject(CallId(3), 603))));
        assert_eq!(parse("hang up 4"), Ok(Some(ConsoleCommand::HangUp(CallId(4)))));
        assert_eq!(parse("hangup call#4"), Ok(Some(ConsoleCommand::HangUp(CallId(4)))));
        assert_eq!(parse("status"), Ok(Some(ConsoleCommand::Status)));
        assert_eq!(parse("help"), Ok(Some(ConsoleCommand::Help)));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(parse("   # a comment"), Ok(None));
    }

    #[test]
    fn bad_commands_name_what_is_wrong() {
        for (line, needle) in [
            ("dial 0 2000", "line \"0\""),
            ("dial 10 2000", "line \"10\""),
            ("dial 1", "usage: dial"),
            ("answer x", "\"x\" is not a call"),
            ("reject 3 200", "status \"200\""),
            ("reject 3 700", "status \"700\""),
            ("hang 3", "unknown command"),
            ("status now", "takes no argument"),
            ("call 1 2000", "unknown command \"call\""),
        ] {
            let err = parse(line).expect_err(line);
            assert!(err.contains(needle), "{line}: {err}");
        }
    }
}
