//! Model checking of the `sip_ptls` core with stateright: the real core driven by a
//! hostile environment of two proxies, within budgets of faults, calls and periodic
//! timer firings. See `docs/model-checking.md`.
#![forbid(unsafe_code)]

pub mod model;
pub mod run;
pub mod sites;
mod target_checks;

pub use model::{Action, Bounds, PtlsModel, State};
