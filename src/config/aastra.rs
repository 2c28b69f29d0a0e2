//! Reader for Aastra-style configuration files (`name: value` lines).
