//! The one switch that breaks the farm on purpose: with `PATCHFARM_UNSAFE_DISABLE_FENCING=1` in
//! every coordinator's environment, completions are accepted whatever their fencing token. It
//! exists so the fault suite (tests/faults) can show its checker catches a farm without fencing;
//! nothing else may set it. Read once at start, so every replica applies the log the same way.

use std::sync::atomic::{AtomicBool, Ordering};

/// The environment variable that turns fencing off (test builds of the farm only).
pub const UNSAFE_DISABLE_FENCING: &str = "PATCHFARM_UNSAFE_DISABLE_FENCING";

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Reads the switch; called once by the coordinator's `main`. True when fencing is now off.
pub fn read_switch() -> bool {
    let off = std::env::var(UNSAFE_DISABLE_FENCING).is_ok_and(|v| v == "1");
    DISABLED.store(off, Ordering::Relaxed);
    off
}

pub fn disabled_for_tests() -> bool {
    DISABLED.load(Ordering::Relaxed)
}
