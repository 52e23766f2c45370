//! Hookboard's own PostgreSQL, used when `DATABASE_URL` is unset.
//!
//! The server runs as a child process with its cluster in `<data dir>/postgres`, listening
//! only on a unix socket inside that directory (no TCP port to collide with or expose). As
//! root, the server runs as the `postgres` OS user, because PostgreSQL refuses to run as
//! root. The child is tied to a keeper thread: when Hookboard exits, however it exits, the
//! kernel asks the server for a fast shutdown, so no postgres process is left behind.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow, bail};
use diesel::{Connection, PgConnection, RunQueryDsl};
use nix::sys::signal::{self, Signal};
use nix::unistd::{Gid, Pid, Uid, User};

/// The unix socket's file name ends in this port number; no TCP port is opened.
const SOCKET_PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";
/// Longest unix socket path the kernel accepts (sun_path is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// How the embedded server is to be run.
#[derive(Debug, Clone)]
pub struct EmbeddedOptions {
    /// Hookboard's data directory; the cluster lives in its `postgres` subdirectory.
    pub data_dir: PathBuf,
    /// Turn off fsync and friends. Only for throwaway test clusters.
    pub unsafe_fast: bool,
    /// Load `pg_stat_statements`, planning tracked: the benchmark's profile of what each
    /// statement costs (`HOOKBOARD_BENCH_STATEMENTS=1 make bench`).
    pub statement_stats: bool,
}

/// A running embedded PostgreSQL (started by us, or found running on the same directory).
pub struct EmbeddedPostgres {
    cluster_dir: PathBuf,
    keeper: Option<Keeper>,
}

struct Keeper {
    stop: mpsc::Sender<()>,
    thread: JoinHandle<()>,
}

/// The server binaries of one PostgreSQL installation.
#[derive(Debug, Clone)]
pub struct ServerBinaries {
    pub initdb: PathBuf,
    pub postgres: PathBuf,
}

impl EmbeddedPostgres {
    /// Starts the server (running `initdb` first when the cluster does not exist yet), or
    /// attaches to one already running on the same data directory, and waits until it
    /// accepts connections.
    pub fn start(options: &EmbeddedOptions) -> anyhow::Result<Self> {
        let binaries = ServerBinaries::find()?;
        let run_as = RunAs::resolve()?;
        fs::create_dir_all(&options.data_dir)
            .with_context(|| format!("cannot create the data directory {}", options.data_dir.display()))?;
        let data_dir = fs::canonicalize(&options.data_dir)?;
        let cluster_dir = data_dir.join("postgres");
        run_as.check_can_reach(&data_dir)?;
        let socket = cluster_dir.join(format!(".s.PGSQL.{SOCKET_PORT}"));
        if socket.as_os_str().len() > MAX_SOCKET_PATH {
            bail!(
                "the data directory path {} is too long for PostgreSQL's unix socket \
                 (at most {} characters in all); set HOOKBOARD_DATA_DIR to a shorter path",
                data_dir.display(),
                MAX_SOCKET_PATH - "/postgres/.s.PGSQL.5432".len()
            );
        }

        if !cluster_dir.join("PG_VERSION").exists() {
            if cluster_dir.exists() && fs::read_dir(&cluster_dir)?.next().is_some() {
                bail!(
                    "{} exists but is not a PostgreSQL cluster (no PG_VERSION); move it away or \
                     choose another HOOKBOARD_DATA_DIR",
                    cluster_dir.display()
                );
            }
            init_cluster(&binaries, &run_as, &cluster_dir)?;
        }
        run_as.check_owns(&cluster_dir)?;

        let mut server = EmbeddedPostgres {
            cluster_dir,
            keeper: None,
        };
        if server.running_pid().is_some() {
            tracing::info!(cluster = %server.cluster_dir.display(), "reusing the PostgreSQL server already running on this data directory");
        } else {
            // A postmaster.pid whose process is gone is left over from a crash.
            let _ = fs::remove_file(server.cluster_dir.join("postmaster.pid"));
            server.keeper = Some(spawn_server(&binaries, &run_as, &server.cluster_dir, options)?);
        }
        server.wait_until_ready(Duration::from_secs(60))?;
        server.ensure_database("hookboard")?;
        Ok(server)
    }

    /// A connection URL for `database` over the unix socket.
    pub fn url(&self, database: &str) -> String {
        format!(
            "postgres://{SUPERUSER}@/{database}?host={}&port={SOCKET_PORT}",
            percent_encode(&self.cluster_dir.to_string_lossy())
        )
    }

    /// Whether this handle started the server (and so will stop it).
    pub fn started_here(&self) -> bool {
        self.keeper.is_some()
    }

    /// Asks the server for a fast shutdown and waits for it, if we started it.
    pub fn stop(mut self) {
        self.stop_inner();
    }

    fn stop_inner(&mut self) {
        if let Some(keeper) = self.keeper.take() {
            let _ = keeper.stop.send(());
            let _ = keeper.thread.join();
        }
    }

    /// The pid in `postmaster.pid` when that process is alive and is a postgres server.
    fn running_pid(&self) -> Option<i32> {
        let text = fs::read_to_string(self.cluster_dir.join("postmaster.pid")).ok()?;
        let pid: i32 = text.lines().next()?.trim().parse().ok()?;
        let cmdline = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let name = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let is_postgres = Path::new(std::str::from_utf8(name).ok()?)
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("postgres"));
        is_postgres.then_some(pid)
    }

    fn wait_until_ready(&mut self, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        let url = self.url("postgres");
        loop {
            match PgConnection::establish(&url) {
                Ok(_) => return Ok(()),
                Err(err) if Instant::now() >= deadline => {
                    bail!(
                        "PostgreSQL did not accept connections within {timeout:?}: {err}; see {}",
                        self.log_hint()
                    )
                }
                Err(_) => {}
            }
            if let Some(keeper) = &self.keeper
                && keeper.thread.is_finished()
            {
                self.keeper = None;
                bail!("PostgreSQL exited while starting; {}", self.log_hint());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn log_hint(&self) -> String {
        let log = self.cluster_dir.with_file_name("postgres.log");
        let tail = fs::read_to_string(&log)
            .map(|text| {
                text.lines()
                    .rev()
                    .take(5)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        format!("its log {} ends with:\n{tail}", log.display())
    }

    fn ensure_database(&self, name: &str) -> anyhow::Result<()> {
        let mut conn = PgConnection::establish(&self.url("postgres"))?;
        let exists: i64 = diesel::sql_query(format!(
            "SELECT count(*) AS count FROM pg_database WHERE datname = '{name}'"
        ))
        .get_result::<Count>(&mut conn)?
        .count;
        if exists == 0 {
            diesel::sql_query(format!("CREATE DATABASE \"{name}\"")).execute(&mut conn)?;
        }
        Ok(())
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        self.stop_inner();
    }
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    count: i64,
}

impl ServerBinaries {
    /// Finds `initdb` and `postgres` on PATH, or in Debian's versioned directories
    /// (`/usr/lib/postgresql/<version>/bin`, newest first).
    pub fn find() -> anyhow::Result<Self> {
        let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
            .map(|path| std::env::split_paths(&path).collect())
            .unwrap_or_default();
        let mut versioned: Vec<(u32, PathBuf)> = fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let version = entry.file_name().to_str()?.parse::<u32>().ok()?;
                Some((version, entry.path().join("bin")))
            })
            .collect();
        versioned.sort_by_key(|(version, _)| std::cmp::Reverse(*version));
        dirs.extend(versioned.into_iter().map(|(_, dir)| dir));
        dirs.into_iter()
            .find(|dir| dir.join("initdb").is_file() && dir.join("postgres").is_file())
            .map(|dir| ServerBinaries {
                initdb: dir.join("initdb"),
                postgres: dir.join("postgres"),
            })
            .ok_or_else(|| {
                anyhow!(
                    "PostgreSQL server binaries (initdb, postgres) were not found on PATH or in \
                     /usr/lib/postgresql/*/bin. Install Debian's `postgresql` package \
                     (apt-get install postgresql), or set DATABASE_URL to use an existing server."
                )
            })
    }
}

/// The OS user the server runs as: ourselves, or `postgres` when we are root.
struct RunAs {
    uid: Uid,
    gid: Gid,
    name: String,
    switch: bool,
}

impl RunAs {
    fn resolve() -> anyhow::Result<Self> {
        if Uid::effective().is_root() {
            let user = User::from_name(SUPERUSER)?.context(
                "Hookboard runs as root, and PostgreSQL refuses to run as root, so it runs the \
                 server as the `postgres` OS user; that user does not exist. Install Debian's \
                 `postgresql` package, which creates it.",
            )?;
            Ok(RunAs {
                uid: user.uid,
                gid: user.gid,
                name: user.name,
                switch: true,
            })
        } else {
            let uid = Uid::effective();
            let name = User::from_uid(uid)?
                .map(|u| u.name)
                .unwrap_or_else(|| uid.to_string());
            Ok(RunAs {
                uid,
                gid: Gid::effective(),
                name,
                switch: false,
            })
        }
    }

    /// The server's user must be able to enter every folder above the cluster.
    fn check_can_reach(&self, data_dir: &Path) -> anyhow::Result<()> {
        if !self.switch {
            return Ok(());
        }
        for dir in data_dir.ancestors() {
            let meta = fs::metadata(dir)?;
            let mode = meta.mode();
            let can_enter = (meta.uid() == self.uid.as_raw() && mode & 0o100 != 0)
                || (meta.gid() == self.gid.as_raw() && mode & 0o010 != 0)
                || mode & 0o001 != 0;
            if !can_enter {
                bail!(
                    "PostgreSQL runs as the `{}` OS user, which cannot enter {} (mode {:o}), a \
                     folder above the data directory {}. Set HOOKBOARD_DATA_DIR to a place it can \
                     reach, for example /var/lib/hookboard or a folder under /tmp.",
                    self.name,
                    dir.display(),
                    mode & 0o7777,
                    data_dir.display()
                );
            }
        }
        Ok(())
    }

    fn check_owns(&self, cluster_dir: &Path) -> anyhow::Result<()> {
        let owner = fs::metadata(cluster_dir)?.uid();
        if owner != self.uid.as_raw() {
            let owner_name = User::from_uid(Uid::from_raw(owner))
                .ok()
                .flatten()
                .map(|u| u.name)
                .unwrap_or_else(|| owner.to_string());
            bail!(
                "the database directory {} belongs to `{owner_name}`, but PostgreSQL would run as \
                 `{}`; use the data directory's own user, or choose another HOOKBOARD_DATA_DIR",
                cluster_dir.display(),
                self.name
            );
        }
        Ok(())
    }

    fn apply(&self, command: &mut Command) {
        if self.switch {
            command.uid(self.uid.as_raw()).gid(self.gid.as_raw());
        }
    }
}

/// Runs `initdb` into a scratch directory and renames it into place, so a failure leaves
/// nothing half-initialised behind.
fn init_cluster(binaries: &ServerBinaries, run_as: &RunAs, cluster_dir: &Path) -> anyhow::Result<()> {
    let scratch = cluster_dir.with_file_name("postgres.initdb");
    let _ = fs::remove_dir_all(&scratch);
    let _ = fs::remove_dir(cluster_dir);
    fs::create_dir(&scratch)?;
    fs::set_permissions(&scratch, fs::Permissions::from_mode(0o700))?;
    if run_as.switch {
        nix::unistd::chown(&scratch, Some(run_as.uid), Some(run_as.gid))?;
    }
    tracing::info!(cluster = %cluster_dir.display(), "creating the embedded PostgreSQL cluster");
    let mut command = Command::new(&binaries.initdb);
    command
        .arg("-D")
        .arg(&scratch)
        .args([
            "-U",
            SUPERUSER,
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C",
            "--no-instructions",
        ])
        .current_dir("/")
        .stdin(Stdio::null());
    run_as.apply(&mut command);
    let output = command.output().context("cannot run initdb")?;
    if !output.status.success() {
        let _ = fs::remove_dir_all(&scratch);
        bail!(
            "initdb failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    fs::rename(&scratch, cluster_dir)?;
    Ok(())
}

fn spawn_server(
    binaries: &ServerBinaries,
    run_as: &RunAs,
    cluster_dir: &Path,
    options: &EmbeddedOptions,
) -> anyhow::Result<Keeper> {
    let log_path = cluster_dir.with_file_name("postgres.log");
    let mut log = fs::OpenOptions::new().create(true).append(true).open(&log_path)?;
    writeln!(log, "--- hookboard starts postgres (pid {})", std::process::id())?;
    let mut command = Command::new(&binaries.postgres);
    command
        .arg("-D")
        .arg(cluster_dir)
        .args(["-c", "listen_addresses="])
        .arg("-c")
        .arg(format!("unix_socket_directories={}", cluster_dir.display()))
        .args(["-c", &format!("port={SOCKET_PORT}")])
        .args(["-c", "max_connections=200"]);
    if options.statement_stats {
        command.args([
            "-c",
            "shared_preload_libraries=pg_stat_statements",
            "-c",
            "pg_stat_statements.track_planning=on",
            // Statements run inside others (the triggers' and functions') on rows of their own.
            "-c",
            "pg_stat_statements.track=all",
        ]);
    }
    if options.unsafe_fast {
        command.args([
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ]);
    }
    command
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        // Its own process group: Ctrl-C in a terminal reaches Hookboard, which then stops
        // the server in order, instead of both at once.
        .process_group(0);
    run_as.apply(&mut command);
    // SAFETY: prctl is async-signal-safe; this runs in the child between fork and exec,
    // after the uid switch, so the parent-death signal survives into postgres.
    unsafe {
        command.pre_exec(|| nix::sys::prctl::set_pdeathsig(Signal::SIGINT).map_err(std::io::Error::from));
    }

    // The parent-death signal fires when the spawning *thread* ends, so a thread that lives
    // as long as the server spawns and owns it.
    let (started_tx, started_rx) = mpsc::channel::<std::io::Result<()>>();
    let (stop_tx, stop_rx) = mpsc::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("embedded-postgres".into())
        .spawn(move || {
            let mut child: Child = match command.spawn() {
                Ok(child) => {
                    let _ = started_tx.send(Ok(()));
                    child
                }
                Err(err) => {
                    let _ = started_tx.send(Err(err));
                    return;
                }
            };
            loop {
                match stop_rx.recv_timeout(Duration::from_millis(200)) {
                    Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Ok(Some(status)) = child.try_wait() {
                            tracing::error!(%status, "the embedded PostgreSQL server exited");
                            return;
                        }
                    }
                }
            }
            shut_down(&mut child);
        })?;
    started_rx
        .recv()
        .context("the embedded PostgreSQL keeper thread died")?
        .with_context(|| format!("cannot start {}", binaries.postgres.display()))?;
    Ok(Keeper {
        stop: stop_tx,
        thread,
    })
}

/// Fast shutdown (SIGINT); immediate (SIGQUIT) if that takes longer than 30 seconds.
fn shut_down(child: &mut Child) {
    let pid = Pid::from_raw(child.id() as i32);
    let _ = signal::kill(pid, Signal::SIGINT);
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    let _ = signal::kill(pid, Signal::SIGQUIT);
    let _ = child.wait();
}

fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
