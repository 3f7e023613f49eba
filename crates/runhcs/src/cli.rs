//! Command-line surface, flag for flag with runc where runc has the verb.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "runhcs", version = concat!("version ", env!("CARGO_PKG_VERSION"), "\nspec: 1.2.0"), about = "wharf's OCI runtime: runs containers from OCI bundles (runc-compatible)")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args, Debug)]
pub struct Global {
    /// Root directory for container state.
    #[arg(long, global = true, default_value = "/run/runhcs")]
    pub root: PathBuf,
    /// Log file for errors (containerd reads it).
    #[arg(long, global = true)]
    pub log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long = "log-format", global = true, default_value = "text", value_parser = ["text", "json"])]
    pub log_format: String,
    /// Debug logging.
    #[arg(long, global = true)]
    pub debug: bool,
    /// Use systemd to manage cgroups (not supported on this runtime).
    #[arg(long = "systemd-cgroup", global = true)]
    pub systemd_cgroup: bool,
    /// Owner recorded for created containers (HCS compute system owner).
    #[arg(long, global = true, default_value = "runhcs")]
    pub owner: String,
    /// Accepted for runc compatibility; ignored.
    #[arg(long, global = true, hide = true)]
    pub criu: Option<String>,
}

#[derive(Args, Debug, Clone)]
pub struct CreateArgs {
    /// Path to the bundle directory.
    #[arg(short, long, default_value = ".")]
    pub bundle: PathBuf,
    /// Unix socket to receive the pty master on.
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    /// File to write the container's init pid to.
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    /// Use chroot instead of pivot_root.
    #[arg(long = "no-pivot")]
    pub no_pivot: bool,
    /// Do not create a new session keyring (accepted; no keyring is created).
    #[arg(long = "no-new-keyring")]
    pub no_new_keyring: bool,
    /// Pass this many extra fds (3, 4, ...) into the container.
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    pub id: String,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Start a created container.
    Start { id: String },
    /// Create and start a container.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Detach from the container's process.
        #[arg(short, long)]
        detach: bool,
        /// Keep the container after it exits (accepted; ignored).
        #[arg(long)]
        keep: bool,
    },
    /// Run a new process in a running container.
    Exec(ExecArgs),
    /// Send a signal to the container's init (or all its processes).
    Kill {
        #[arg(short, long)]
        all: bool,
        id: String,
        #[arg(default_value = "SIGTERM")]
        signal: String,
    },
    /// Delete a container and its resources.
    Delete {
        #[arg(short, long)]
        force: bool,
        id: String,
    },
    /// Output the state of a container.
    State { id: String },
    /// List containers.
    List {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        #[arg(short, long)]
        quiet: bool,
    },
    /// Show the processes running in a container.
    Ps {
        #[arg(short, long, default_value = "table", value_parser = ["table", "json"])]
        format: String,
        id: String,
        /// Options passed to ps(1) in table format.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Suspend all processes of a container.
    Pause { id: String },
    /// Resume a paused container.
    Resume { id: String },
    /// Update a container's resource limits.
    Update {
        /// Path to a JSON file with linux.resources, or - for stdin.
        #[arg(short, long)]
        resources: Option<PathBuf>,
        #[arg(long)]
        memory: Option<i64>,
        #[arg(long = "pids-limit")]
        pids_limit: Option<i64>,
        #[arg(long = "cpu-shares")]
        cpu_shares: Option<u64>,
        #[arg(long = "cpu-quota")]
        cpu_quota: Option<i64>,
        #[arg(long = "cpu-period")]
        cpu_period: Option<u64>,
        id: String,
    },
    /// Write a default config.json.
    Spec {
        #[arg(short, long, default_value = ".")]
        bundle: PathBuf,
        /// Spec for a rootless container (user namespace with the caller's ids).
        #[arg(long)]
        rootless: bool,
    },
    /// Describe what this runtime supports (OCI features document).
    Features,
    /// Create a container under its own monitor (the per-container shim) and detach.
    Shim(ShimArgs),
}

#[derive(Args, Debug)]
pub struct ShimArgs {
    /// Container id.
    #[arg(long)]
    pub id: String,
    /// Path to the OCI bundle directory.
    #[arg(long)]
    pub bundle: PathBuf,
    /// Directory for the monitor's socket, pid file and exit file.
    #[arg(long = "state-dir")]
    pub state_dir: PathBuf,
    /// json-file log of the container's output.
    #[arg(long = "log-path")]
    pub log_path: PathBuf,
    /// Rotate the log when it would grow past this many bytes (0: never).
    #[arg(long = "log-max-size", default_value_t = 0)]
    pub log_max_size: u64,
    /// How many log files to keep, the current one included.
    #[arg(long = "log-max-files", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub log_max_files: u32,
    /// Give the container a stdin pipe (attached clients write to it).
    #[arg(long)]
    pub stdin: bool,
    /// Give the container a terminal; the monitor holds its master.
    #[arg(long)]
    pub tty: bool,
    /// Initial terminal size, ROWSxCOLS.
    #[arg(long = "console-size", value_parser = parse_console_size)]
    pub console_size: Option<(u16, u16)>,
}

fn parse_console_size(s: &str) -> Result<(u16, u16), String> {
    let (r, c) = s
        .split_once(['x', 'X'])
        .ok_or_else(|| format!("{s:?}: expected ROWSxCOLS"))?;
    let num = |v: &str| {
        v.parse::<u16>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{s:?}: {v:?} is not a size between 1 and 65535"))
    };
    Ok((num(r)?, num(c)?))
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Path to a process.json.
    #[arg(short, long)]
    pub process: Option<PathBuf>,
    #[arg(short, long)]
    pub tty: bool,
    #[arg(short, long)]
    pub detach: bool,
    #[arg(long = "pid-file")]
    pub pid_file: Option<PathBuf>,
    #[arg(long = "console-socket")]
    pub console_socket: Option<PathBuf>,
    #[arg(long)]
    pub cwd: Option<PathBuf>,
    #[arg(short, long)]
    pub env: Vec<String>,
    /// UID[:GID]
    #[arg(short, long)]
    pub user: Option<String>,
    #[arg(short = 'g', long = "additional-gids")]
    pub additional_gids: Vec<u32>,
    #[arg(short, long)]
    pub cap: Vec<String>,
    #[arg(long = "no-new-privs")]
    pub no_new_privs: bool,
    #[arg(long = "preserve-fds", default_value_t = 0)]
    pub preserve_fds: u32,
    /// Accepted for runc compatibility; ignored.
    #[arg(long = "process-label", hide = true)]
    pub process_label: Option<String>,
    #[arg(long = "apparmor", hide = true)]
    pub apparmor: Option<String>,
    pub id: String,
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

impl Command {
    /// Verbs that put a process into a container need the /proc/self/exe protection.
    pub fn spawns_container_process(&self) -> bool {
        matches!(
            self,
            Command::Create(_) | Command::Run { .. } | Command::Exec(_) | Command::Shim(_)
        )
    }
}
