//! Stop signals. Installed before anything slow starts (an extension's
//! compile, attaching), so that every stop is a clean one: the summary is
//! printed, outputs are completed, temporary files removed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};

/// Ctrl-C, SIGTERM and SIGHUP (terminal closed, ssh lost) end the capture
/// with its summary; a second one ends netcap at once.
pub struct StopSignals {
    flag: Arc<AtomicBool>,
}

impl StopSignals {
    pub fn install() -> Result<StopSignals> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let flag = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM, SIGHUP] {
            // Registered first, so it sees only the flag of an earlier signal.
            signal_hook::flag::register_conditional_shutdown(signal, 128 + signal, Arc::clone(&flag))
                .context("installing the signal handler")?;
            signal_hook::flag::register(signal, Arc::clone(&flag)).context("installing the signal handler")?;
        }
        Ok(StopSignals { flag })
    }

    /// Never set: for runs without signals (bench-sink).
    pub fn none() -> StopSignals {
        StopSignals { flag: Arc::new(AtomicBool::new(false)) }
    }

    pub fn requested(&self) -> bool {
        self.flag.load(Ordering::Relaxed)
    }
}
