//! Guest logs and progress reports, capped per invocation, into the host's tracing (and the
//! CLI's progress bar).

use super::bindings::berth::connector::log;
use super::host::HostState;

/// Progress reports per invocation before the rest are dropped.
const MAX_PROGRESS_EVENTS: u32 = 100_000;
/// Log lines a guest may emit per invocation before the rest are dropped.
const MAX_LOG_LINES: u32 = 1000;
const MAX_LOG_LINE: usize = 4096;

impl log::Host for HostState {
    async fn log(&mut self, level: log::Level, message: String) {
        if !self.count_log_line() {
            return;
        }
        let msg = truncate(&message);
        let action = self.action.as_str();
        match level {
            log::Level::Trace => tracing::trace!(target: "berth::guest", action, "{msg}"),
            log::Level::Debug => tracing::debug!(target: "berth::guest", action, "{msg}"),
            log::Level::Info => tracing::info!(target: "berth::guest", action, "{msg}"),
            log::Level::Warn => tracing::warn!(target: "berth::guest", action, "{msg}"),
            log::Level::Error => tracing::error!(target: "berth::guest", action, "{msg}"),
        }
    }

    async fn progress(&mut self, id: String, current: u64, total: Option<u64>, message: String) {
        self.out.progress_events += 1;
        if self.out.progress_events > MAX_PROGRESS_EVENTS {
            return;
        }
        if let Some(sink) = &self.ctx.progress {
            sink.report(&self.action, truncate(&id), current, total, truncate(&message));
        }
        tracing::info!(target: "berth::progress", action = %self.action, id = %truncate(&id), current, total, "{}", truncate(&message));
    }
}

impl HostState {
    fn count_log_line(&mut self) -> bool {
        self.out.log_lines += 1;
        if self.out.log_lines == MAX_LOG_LINES + 1 {
            tracing::warn!(action = %self.action, "guest log limit of {MAX_LOG_LINES} lines reached; dropping the rest");
        }
        self.out.log_lines <= MAX_LOG_LINES
    }
}

fn truncate(s: &str) -> &str {
    if s.len() <= MAX_LOG_LINE {
        return s;
    }
    let mut end = MAX_LOG_LINE;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
