//! raft-rs logs through slog; this drain hands its records to `tracing` under the target `slog`,
//! so `RUST_LOG=…,slog=warn` (the daemons' default) or `slog=debug` decides what raft-rs says.
//! (tracing-slog checks the filter against raft's own module path, so `slog=` did nothing.)

use tracing::Level;

/// Forwards slog records as `tracing` events with target `slog`, the raft module as a field.
pub struct SlogToTracing;

macro_rules! forward {
    ($level:expr, $record:expr) => {
        if tracing::enabled!(target: "slog", $level) {
            tracing::event!(
                target: "slog",
                $level,
                raft = $record.module(),
                "{}",
                $record.msg()
            );
        }
    };
}

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        match record.level() {
            slog::Level::Critical | slog::Level::Error => forward!(Level::ERROR, record),
            slog::Level::Warning => forward!(Level::WARN, record),
            slog::Level::Info => forward!(Level::INFO, record),
            slog::Level::Debug => forward!(Level::DEBUG, record),
            slog::Level::Trace => forward!(Level::TRACE, record),
        }
        Ok(())
    }
}
