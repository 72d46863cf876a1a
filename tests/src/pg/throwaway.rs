//! The throwaway PostgreSQL server: one per test process, started on first use, gone when the
//! process exits, however it exits.
//!
//! # Starting
//!
//! `initdb` and `postgres` are taken from the first `PATH` directory holding both, else from the
//! highest version under `/usr/lib/postgresql/*/bin`. The cluster lives in a new directory
//! `<temp>/lstest-pg-<uuid>` (`data/`, `postgres.log`, the Unix socket), is initialised with
//! trust authentication, superuser `postgres`, UTF-8 and the C locale, and runs on a free port
//! of 127.0.0.1 with durability turned off (`fsync`, `synchronous_commit`, `full_page_writes`):
//! a crash loses nothing we want to keep. PostgreSQL refuses to run as root, so as root both
//! programs run as the `postgres` user (through `runuser`, else `su`) and the directory is
//! handed to that user.
//!
//! # Stopping
//!
//! Nothing in the process has to remember to stop the server, because a killed process could
//! not. `postgres` runs under a small shell wrapper whose stdin is a pipe from this process; the
//! wrapper's handle sits in a static, so the pipe stays open exactly as long as the process
//! lives. When the process ends, by returning, panicking or `SIGKILL`, the kernel closes the
//! pipe, the wrapper's `read` returns, and it stops `postgres` (`SIGINT`, a fast shutdown,
//! escalating if that hangs), waits for it and removes the directory. The wrapper runs in its
//! own process group so that a Ctrl-C aimed at the tests reaches the tests only and the wrapper
//! still gets to clean up.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use sqlx::{Connection, PgConnection};
use tokio::sync::OnceCell;
use uuid::Uuid;

/// How long a launched server may take to accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// How many lines of the server's log an error message shows.
const LOG_TAIL_LINES: usize = 30;

/// The process's server once started, or why it could not be: a failure is kept too, so that
/// every test reports it at once instead of each spending seconds failing the same way.
static SERVER: OnceCell<Result<Server, String>> = OnceCell::const_new();

/// A running throwaway server.
struct Server {
    /// The superuser's URL on the `postgres` database.
    url: String,
    /// The wrapper, whose stdin is the pipe that keeps the server alive (see the module docs).
    /// Never dropped: it lives in [`SERVER`].
    _wrapper: Child,
}

/// The URL of the throwaway server's `postgres` database, starting the server on the first call.
pub(crate) async fn admin_url() -> anyhow::Result<String> {
    let server = SERVER
        .get_or_init(|| async { start().await.map_err(|error| format!("{error:#}")) })
        .await;
    match server {
        Ok(server) => Ok(server.url.clone()),
        Err(error) => Err(anyhow!("{error}")).context("starting the throwaway PostgreSQL server"),
    }
}

/// Initialises a cluster, launches the server and waits until it accepts connections.
async fn start() -> anyhow::Result<Server> {
    let started = Instant::now();
    let launched = tokio::task::spawn_blocking(launch)
        .await
        .context("the launching task panicked")??;
    let Launched {
        dir,
        port,
        bin,
        mut wrapper,
    } = launched;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    if let Err(error) = wait_until_ready(&url, &dir, &mut wrapper).await {
        give_up(&dir, wrapper);
        return Err(error);
    }
    // Captured with the test's output: shown when a test fails, which is when it helps.
    eprintln!(
        "throwaway PostgreSQL from {} at {url} ready in {:.2?}, files in {}",
        bin.display(),
        started.elapsed(),
        dir.display(),
    );
    Ok(Server {
        url,
        _wrapper: wrapper,
    })
}

/// A server launched but not known to be ready.
struct Launched {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    wrapper: Child,
}

/// The blocking part of [`start`]: finds the programs, runs `initdb` and launches the wrapper.
fn launch() -> anyhow::Result<Launched> {
    let bin = find_binaries()?;
    let user = ServerUser::detect()?;
    let dir = std::env::temp_dir().join(format!("lstest-pg-{}", Uuid::new_v4().simple()));
    std::fs::create_dir(&dir).with_context(|| format!("creating {}", dir.display()))?;
    match initdb_and_spawn(&bin, &user, &dir) {
        Ok((port, wrapper)) => Ok(Launched {
            dir,
            port,
            bin,
            wrapper,
        }),
        Err(error) => {
            // No wrapper runs yet to remove the directory; we created it, so we may.
            let _ = std::fs::remove_dir_all(&dir);
            Err(error)
        }
    }
}

fn initdb_and_spawn(bin: &Path, user: &ServerUser, dir: &Path) -> anyhow::Result<(u16, Child)> {
    user.take_ownership(dir)?;
    let initdb = format!(
        "exec {} -D {} -A trust -U postgres --no-sync -E UTF8 --locale=C",
        quote(&bin.join("initdb"))?,
        quote(&dir.join("data"))?,
    );
    let output = user
        .command(&initdb)
        .stdin(Stdio::null())
        .output()
        .context("running initdb")?;
    if !output.status.success() {
        bail!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr),
        );
    }

    // Chosen as late as possible, to leave little time for someone else to take it.
    let port = free_port()?;
    // Whatever `runuser`, `su` or the shell itself have to say, before `postgres` has a log.
    let wrapper_log = File::create(dir.join("wrapper.log")).context("creating wrapper.log")?;
    let wrapper = user
        .command(&wrapper_script(&bin.join("postgres"), dir, port)?)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(wrapper_log)
        .process_group(0)
        .spawn()
        .context("launching postgres")?;
    Ok((port, wrapper))
}

/// The shell script that runs `postgres` until this process's end closes its stdin, then stops
/// it and removes `dir`. Stopping asks for a fast shutdown (`SIGINT`), then an immediate one
/// (`SIGQUIT`), then kills, five seconds apart, so a wedged server cannot outlive the tests.
/// If `postgres` exits early, the script leaves its exit status in `dir/exited` and keeps the
/// directory, with the log, until the end.
fn wrapper_script(postgres: &Path, dir: &Path, port: u16) -> anyhow::Result<String> {
    // A background job's stdin is /dev/null, so the pipe is handed to the watcher as fd 3;
    // `postgres` gets neither, so it holds nothing of ours open.
    Ok(format!(
        r#"dir={dir}
exec 3<&0 </dev/null
{postgres} -D "$dir/data" -p {port} -h 127.0.0.1 -k "$dir" \
    -c fsync=off -c synchronous_commit=off -c full_page_writes=off \
    -c max_connections=500 -c shared_buffers=64MB \
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
rm -rf "$dir"
"#,
        dir = quote(dir)?,
        postgres = quote(postgres)?,
    ))
}

/// Retries a connection until one succeeds, the server is seen to have died, or time runs out.
async fn wait_until_ready(url: &str, dir: &Path, wrapper: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(2), PgConnection::connect(url));
        let error = match attempt.await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Ok(Err(error)) => error.to_string(),
            Err(_) => "no answer in 2s".to_owned(),
        };
        if let Ok(status) = std::fs::read_to_string(dir.join("exited")) {
            bail!("postgres exited with status {}{}", status.trim(), logs(dir));
        }
        if let Some(status) = wrapper.try_wait().context("checking on the wrapper")? {
            bail!("the wrapper around postgres exited ({status}){}", logs(dir));
        }
        if Instant::now() >= deadline {
            bail!(
                "postgres did not accept connections within {READY_TIMEOUT:?} \
                 (last error: {error}){}",
                logs(dir)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Lets go of a server that failed to come up: closing the wrapper's stdin makes it stop
/// `postgres` and remove `dir`; if the wrapper is already gone, we remove `dir` ourselves.
fn give_up(dir: &Path, mut wrapper: Child) {
    drop(wrapper.stdin.take());
    if let Ok(Some(_)) = wrapper.try_wait() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// The tails of the wrapper's and the server's logs, for error messages.
fn logs(dir: &Path) -> String {
    let mut out = String::new();
    for name in ["wrapper.log", "postgres.log"] {
        let path = dir.join(name);
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let lines: Vec<&str> = text.lines().collect();
        if lines.is_empty() {
            continue;
        }
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        out.push_str(&format!("\n--- last lines of {} ---\n", path.display()));
        out.push_str(&tail.join("\n"));
    }
    out
}

/// The directory holding both `initdb` and `postgres`: the first on `PATH`, else the highest
/// version under `/usr/lib/postgresql`.
fn find_binaries() -> anyhow::Result<PathBuf> {
    let holds_both = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    let on_path = std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .unwrap_or_default();
    if let Some(dir) = on_path.into_iter().find(|dir| holds_both(dir)) {
        return Ok(dir);
    }
    let mut versions: Vec<(Vec<u32>, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry
                .file_name()
                .to_str()?
                .split('.')
                .map(str::parse)
                .collect::<Result<Vec<u32>, _>>()
                .ok()?;
            let bin = entry.path().join("bin");
            holds_both(&bin).then_some((version, bin))
        })
        .collect();
    versions.sort();
    match versions.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "no initdb and postgres on PATH nor under /usr/lib/postgresql/*/bin: install \
             PostgreSQL's server programs, or set DATABASE_URL to a server to use"
        ),
    }
}

/// Who runs `initdb` and `postgres`, and how to become them.
enum ServerUser {
    /// This process's user, which is not root.
    Myself,
    /// The `postgres` user, reached from root with `runuser`.
    Runuser,
    /// The `postgres` user, reached from root with `su`.
    Su,
}

impl ServerUser {
    fn detect() -> anyhow::Result<Self> {
        if id(&["-u"])? != "0" {
            return Ok(ServerUser::Myself);
        }
        id(&["-u", "postgres"]).context(
            "PostgreSQL refuses to run as root, and there is no `postgres` user to run it as",
        )?;
        if on_path("runuser") {
            Ok(ServerUser::Runuser)
        } else if on_path("su") {
            Ok(ServerUser::Su)
        } else {
            bail!("running as root, and neither runuser nor su is there to become `postgres`")
        }
    }

    /// `sh -c script`, as this user.
    fn command(&self, script: &str) -> Command {
        let mut command;
        match self {
            ServerUser::Myself => {
                command = Command::new("sh");
                command.arg("-c").arg(script);
            }
            ServerUser::Runuser => {
                command = Command::new("runuser");
                command.args(["-u", "postgres", "--", "sh", "-c", script]);
            }
            ServerUser::Su => {
                command = Command::new("su");
                command.args(["postgres", "-s", "/bin/sh", "-c", script]);
            }
        }
        command
    }

    /// Makes `dir` this user's, so `initdb` can create the cluster in it and the wrapper can
    /// remove it.
    fn take_ownership(&self, dir: &Path) -> anyhow::Result<()> {
        if matches!(self, ServerUser::Myself) {
            return Ok(());
        }
        let status = Command::new("chown")
            .arg("postgres")
            .arg(dir)
            .status()
            .context("running chown")?;
        if !status.success() {
            bail!("chown postgres {} failed ({status})", dir.display());
        }
        Ok(())
    }
}

/// The output of `id` with `args`, trimmed.
fn id(args: &[&str]) -> anyhow::Result<String> {
    let output = Command::new("id")
        .args(args)
        .output()
        .context("running id")?;
    if !output.status.success() {
        bail!(
            "id {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr().context("finding a free port")?.port())
}

/// `path` as one single-quoted shell word.
fn quote(path: &Path) -> anyhow::Result<String> {
    let path = path
        .to_str()
        .with_context(|| format!("{} is not UTF-8", path.display()))?;
    Ok(format!("'{}'", path.replace('\'', r"'\''")))
}
