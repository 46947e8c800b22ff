//! Everything a command prints goes through here, so a reader that goes
//! away (`meridian conflicts --follow --json | head -1`) ends the command
//! quietly: a write that finds stdout's pipe closed returns [`ReaderGone`],
//! which `cli::run` turns into exit 0 with no message. Rust ignores
//! SIGPIPE, so without this the write would fail and `println!` panic.

use std::fmt::Display;
use std::io::{self, Write};

use serde::Serialize;

/// stdout's reader closed it: nobody is left to print for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("stdout was closed by its reader")]
pub struct ReaderGone;

/// Whether `error` (anywhere in its chain) says the reader is gone. Only
/// a write to stdout says so ([`write_error`] marks it): a broken pipe
/// anywhere else, such as a connection to a server, is a failure the user
/// must hear about and see in the exit code.
pub fn is_reader_gone(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.downcast_ref::<ReaderGone>().is_some())
}

/// A write error as the command returns it: a closed pipe becomes
/// [`ReaderGone`], anything else stays itself.
pub fn write_error(error: io::Error) -> anyhow::Error {
    if error.kind() == io::ErrorKind::BrokenPipe {
        ReaderGone.into()
    } else {
        anyhow::Error::new(error).context("writing to stdout")
    }
}

/// Writes `text` to stdout as it is, and flushes it, so a followed feed
/// shows each entry as it comes.
pub fn out(text: impl Display) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    write!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(write_error)
}

/// Writes `text` and a newline.
pub fn line(text: impl Display) -> anyhow::Result<()> {
    out(format_args!("{text}\n"))
}

/// Writes `value` as indented JSON and a newline.
pub fn json_pretty<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    line(serde_json::to_string_pretty(value)?)
}

/// Writes `value` as JSON on one line.
pub fn json_line<T: Serialize + ?Sized>(value: &T) -> anyhow::Result<()> {
    line(serde_json::to_string(value)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_stdout_is_the_reader_gone() {
        let gone = write_error(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(is_reader_gone(&gone));
        assert!(is_reader_gone(&gone.context("printing the feed")));
        // A broken pipe that is not stdout's, say a server connection's.
        let raw = anyhow::Error::new(io::Error::from(io::ErrorKind::BrokenPipe));
        assert!(!is_reader_gone(&raw.context("talking to the server")));
        let full = write_error(io::Error::from(io::ErrorKind::StorageFull));
        assert!(!is_reader_gone(&full));
        assert!(!is_reader_gone(&anyhow::anyhow!("deadline exceeded")));
    }
}
