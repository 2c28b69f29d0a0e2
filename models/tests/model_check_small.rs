//! A small exhaustive check of the real core, fast enough to judge every mutant of a
//! cargo-mutants run (docs/mutation-testing.md): one fault, one then two accounts. Every
//! `always` property must hold; the reachability goals need the larger bounds of
//! `model_check.rs` and are not asked for here.

use sip_ptls_models::model::{Bounds, PtlsModel};
use sip_ptls_models::run;

#[test]
fn one_fault_holds_for_one_and_two_accounts() {
    for accounts in [1, 2] {
        let bounds = Bounds { accounts, faults: 1, ..Bounds::default() };
        let r = run::check(PtlsModel::new(bounds), 1, false, true);
        let failed: Vec<&str> = r.failed.iter().map(|(name, _)| *name).collect();
        assert!(failed.is_empty(), "{bounds:?}: properties with a counterexample: {failed:?}");
        eprintln!("{bounds:?}: {} unique states in {:.1} s", r.unique, r.secs);
        // Measured 3,584 and 10,032 states (4,299 and 11,914 before calls moved across
        // failover instead of waiting for their deadline): a model that collapsed judges
        // nothing.
        let floor = if accounts == 1 { 3_300 } else { 9_000 };
        assert!(r.unique >= floor, "{bounds:?}: only {} unique states", r.unique);
    }
}
