//! The shell wrapper `postgres` runs under: the pipe watchdog that stops the server when the
//! runner ends, however it ends.
//!
//! The wrapper's stdin is a pipe from the runner. When the runner ends (returning, panicking
//! or `SIGKILL`) or drops the server, the kernel closes the pipe, the wrapper's `read` returns,
//! and it stops `postgres`: a fast shutdown (`SIGINT`), then an immediate one (`SIGQUIT`), then
//! `SIGKILL`, five seconds apart, so a wedged server cannot outlive the run. If `postgres`
//! exits early, the wrapper leaves its exit status in `<dir>/exited` and keeps the directory,
//! with the log, until the end; at the end it removes the directory when told to.

use std::path::Path;

use super::PgOptions;
use super::programs::quote;

/// The script that runs `postgres` on `port` with the cluster in `<dir>/data`.
pub(crate) fn script(
    postgres: &Path,
    dir: &Path,
    port: u16,
    options: &PgOptions,
) -> anyhow::Result<String> {
    let mut settings = format!("-c max_connections={}", options.max_connections);
    if !options.durable {
        // A crash loses nothing we want to keep.
        settings.push_str(" -c fsync=off -c synchronous_commit=off -c full_page_writes=off");
    }
    if let Some(shared_buffers) = &options.shared_buffers {
        settings.push_str(&format!(" -c shared_buffers={shared_buffers}"));
    }
    if let Some(slow) = options.log_statements_slower_than {
        // Logging only: what the database was doing when a measurement had a slow tail.
        settings.push_str(&format!(
            " -c log_autovacuum_min_duration=0 -c log_min_duration_statement={}",
            slow.as_millis()
        ));
    }
    let cleanup = if options.remove_when_stopped {
        r#"rm -rf "$dir""#
    } else {
        ":"
    };
    // A background job's stdin is /dev/null, so the pipe is handed to the watcher as fd 3;
    // `postgres` gets neither, so it holds nothing of ours open.
    Ok(format!(
        r#"dir={dir}
exec 3<&0 </dev/null
{postgres} -D "$dir/data" -p {port} -h 127.0.0.1 -k "$dir" {settings} \
    3<&- >"$dir/postgres.log" 2>&1 &
pid=$!
{{
    read _ignored <&3
    for signal in INT QUIT KILL; do
        [ -e "$dir/exited" ] && break
        kill -"$signal" "$pid" 2>/dev/null
        tries=0
        while [ "$tries" -lt 50 ] && [ ! -e "$dir/exited" ]; do
            sleep 0.1
            tries=$((tries + 1))
        done
    done
}} &
exec 3<&-
wait "$pid"
echo "$?" >"$dir/exited"
wait
{cleanup}
"#,
        dir = quote(dir)?,
        postgres = quote(postgres)?,
    ))
}
