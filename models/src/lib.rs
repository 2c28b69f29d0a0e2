//! Model checking of the `sip_ptls` core: the stateright models that drive the real core
//! against a hostile environment live here (see issue "Model-check the real core").
#![forbid(unsafe_code)]
