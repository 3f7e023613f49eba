//! The command line: docker's verbs, flags and short options.

use clap::{ArgAction, Args, Parser, Subcommand};

mod manage;
pub use manage::*;

#[derive(Parser, Debug)]
#[command(
    name = "wharf",
    version,
    about = "Run and manage containers with wharfd (docker-compatible verbs and flags)",
    disable_help_subcommand = true
)]
pub struct Cli {
    /// Daemon socket to connect to (unix:///path); DOCKER_HOST is honoured too.
    #[arg(short = 'H', long, env = "WHARF_HOST", global = true)]
    pub host: Option<String>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

#[derive(Subcommand, Debug)]
pub enum Cmd {
    /// Create and run a new container from an image
    #[command(disable_help_flag = true)]
    Run(RunArgs),
    /// Create a new container
    #[command(disable_help_flag = true)]
    Create(CreateOpts),
    /// Start one or more stopped containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Kill one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(StopArgs),
    /// Pause all processes within one or more containers
    Pause(Names),
    /// Unpause all processes within one or more containers
    Unpause(Names),
    /// Remove one or more containers
    Rm(RmArgs),
    /// Rename a container
    Rename { container: String, new_name: String },
    /// List containers
    Ps(PsArgs),
    /// Fetch the logs of a container
    Logs(LogsArgs),
    /// Attach local standard input, output, and error streams to a running container
    Attach(AttachArgs),
    /// Execute a command in a running container
    Exec(ExecArgs),
    /// Block until one or more containers stop, then print their exit codes
    Wait(Names),
    /// Display the running processes of a container
    Top { container: String },
    /// Display a live stream of container resource usage statistics
    Stats(StatsArgs),
    /// List port mappings or a specific mapping for the container
    Port {
        container: String,
        port: Option<String>,
    },
    /// Return low-level information on wharf objects
    Inspect(InspectArgs),
    /// Copy files/folders between a container and the local filesystem
    Cp(CpArgs),
    /// Create a new image from a container's changes
    Commit(CommitArgs),
    /// Download an image from a registry
    Pull(PullArgs),
    /// Upload an image to a registry
    Push(PushArgs),
    /// List images
    Images(ImagesArgs),
    /// Remove one or more images
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE
    Tag { source: String, target: String },
    /// Show the history of an image
    History(HistoryArgs),
    /// Save one or more images to a tar archive (streamed to STDOUT by default)
    Save(SaveArgs),
    /// Load an image from a tar archive or STDIN
    Load(LoadArgs),
    /// Import the contents from a tarball to create a filesystem image
    Import(ImportArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCmd),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCmd),
    /// Manage networks
    #[command(subcommand)]
    Network(NetworkCmd),
    /// Manage volumes
    #[command(subcommand)]
    Volume(VolumeCmd),
    /// Manage wharf
    #[command(subcommand)]
    System(SystemCmd),
    /// Display system-wide information
    Info(FormatArg),
    /// Show the wharf and wharfd version information
    Version(FormatArg),
    /// Get real time events from the server
    Events(EventsArgs),
    /// Generate the shell completion script
    Completion { shell: clap_complete::Shell },
}

#[derive(Args, Debug)]
pub struct Names {
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct FormatArg {
    /// Format output: "json", or a template like '{{.ServerVersion}}'
    #[arg(short = 'f', long)]
    pub format: Option<String>,
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Only display IDs (names for volumes)
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: "table", "json", or a template
    #[arg(long)]
    pub format: Option<String>,
    /// Filter output (key=value)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Do not truncate the output
    #[arg(long)]
    pub no_trunc: bool,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    /// Run container in background and print container ID
    #[arg(short, long)]
    pub detach: bool,
    #[command(flatten)]
    pub create: CreateOpts,
}

/// Flags shared by `run` and `create`.
#[derive(Args, Debug, Default)]
pub struct CreateOpts {
    /// Print help
    #[arg(long, action = ArgAction::Help)]
    pub help: Option<bool>,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Automatically remove the container and its anonymous volumes when it exits
    #[arg(long)]
    pub rm: bool,
    /// Assign a name to the container
    #[arg(long)]
    pub name: Option<String>,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Publish a container's port(s) to the host
    #[arg(short, long)]
    pub publish: Vec<String>,
    /// Publish all exposed ports to random ports
    #[arg(short = 'P', long)]
    pub publish_all: bool,
    /// Expose a port or a range of ports
    #[arg(long)]
    pub expose: Vec<String>,
    /// Bind mount a volume
    #[arg(short, long)]
    pub volume: Vec<String>,
    /// Attach a filesystem mount to the container (type=,source=,target=,readonly)
    #[arg(long)]
    pub mount: Vec<String>,
    /// Mount a tmpfs directory
    #[arg(long)]
    pub tmpfs: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: <name|uid>[:<group|gid>])
    #[arg(short, long)]
    pub user: Option<String>,
    /// Overwrite the default ENTRYPOINT of the image
    #[arg(long)]
    pub entrypoint: Option<String>,
    /// Container host name
    #[arg(short = 'h', long)]
    pub hostname: Option<String>,
    /// Connect a container to a network (repeat to join several; the first holds the
    /// default route)
    #[arg(long, alias = "net")]
    pub network: Vec<String>,
    /// Add a network-scoped alias for the container (on its first network)
    #[arg(long)]
    pub network_alias: Vec<String>,
    /// IPv4 address on the first network (e.g., "172.30.100.104")
    #[arg(long)]
    pub ip: Option<String>,
    /// Restart policy to apply when a container exits
    #[arg(long)]
    pub restart: Option<String>,
    /// Container isolation technology (process, hyperv)
    #[arg(long)]
    pub isolation: Option<String>,
    /// Memory limit
    #[arg(short, long)]
    pub memory: Option<String>,
    /// Number of CPUs
    #[arg(long)]
    pub cpus: Option<f64>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long)]
    pub pids_limit: Option<i64>,
    /// Add Linux capabilities
    #[arg(long)]
    pub cap_add: Vec<String>,
    /// Drop Linux capabilities
    #[arg(long)]
    pub cap_drop: Vec<String>,
    /// Give extended privileges to this container
    #[arg(long)]
    pub privileged: bool,
    /// Mount the container's root filesystem as read only
    #[arg(long)]
    pub read_only: bool,
    /// Set meta data on a container
    #[arg(short, long)]
    pub label: Vec<String>,
    /// Security Options
    #[arg(long)]
    pub security_opt: Vec<String>,
    /// Signal to stop the container
    #[arg(long)]
    pub stop_signal: Option<String>,
    /// Timeout (in seconds) to stop a container
    #[arg(long)]
    pub stop_timeout: Option<i64>,
    /// Set custom DNS servers
    #[arg(long)]
    pub dns: Vec<String>,
    /// Add a custom host-to-IP mapping (host:ip)
    #[arg(long)]
    pub add_host: Vec<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// IMAGE [COMMAND] [ARG...]
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "IMAGE [COMMAND] [ARG...]"
    )]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StartArgs {
    /// Attach STDOUT/STDERR and forward signals
    #[arg(short, long)]
    pub attach: bool,
    /// Attach container's STDIN
    #[arg(short, long)]
    pub interactive: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StopArgs {
    /// Seconds to wait before killing the container
    #[arg(short, long)]
    pub time: Option<i64>,
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct KillArgs {
    /// Signal to send to the container
    #[arg(short, long)]
    pub signal: Option<String>,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct RmArgs {
    /// Force the removal of a running container (uses SIGKILL)
    #[arg(short, long)]
    pub force: bool,
    /// Remove anonymous volumes associated with the container
    #[arg(short, long)]
    pub volumes: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct PsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Only display container IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Filter output based on conditions provided (key=value)
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output: "table", "json", or a template like '{{.ID}} {{.Names}}'
    #[arg(long)]
    pub format: Option<String>,
    /// Show n last created containers (includes all states)
    #[arg(short = 'n', long)]
    pub last: Option<i64>,
    /// Show the latest created container (includes all states)
    #[arg(short, long)]
    pub latest: bool,
}

#[derive(Args, Debug)]
pub struct LogsArgs {
    /// Follow log output
    #[arg(short, long)]
    pub follow: bool,
    /// Number of lines to show from the end of the logs
    #[arg(short = 'n', long)]
    pub tail: Option<String>,
    /// Show logs since timestamp or relative (e.g. 42m)
    #[arg(long)]
    pub since: Option<String>,
    /// Show logs before a timestamp or relative (e.g. 42m)
    #[arg(long)]
    pub until: Option<String>,
    /// Show timestamps
    #[arg(short, long)]
    pub timestamps: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct AttachArgs {
    /// Do not attach STDIN
    #[arg(long)]
    pub no_stdin: bool,
    /// Proxy all received signals to the process
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub sig_proxy: bool,
    pub container: String,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// Detached mode: run command in the background
    #[arg(short, long)]
    pub detach: bool,
    /// Keep STDIN open even if not attached
    #[arg(short, long)]
    pub interactive: bool,
    /// Allocate a pseudo-TTY
    #[arg(short, long)]
    pub tty: bool,
    /// Set environment variables
    #[arg(short, long = "env")]
    pub env: Vec<String>,
    /// Read in a file of environment variables
    #[arg(long)]
    pub env_file: Vec<String>,
    /// Working directory inside the container
    #[arg(short, long)]
    pub workdir: Option<String>,
    /// Username or UID (format: "<name|uid>[:<group|gid>]")
    #[arg(short, long)]
    pub user: Option<String>,
    /// Give extended privileges to the command
    #[arg(long)]
    pub privileged: bool,
    /// CONTAINER COMMAND [ARG...]
    #[arg(required = true, num_args = 2.., trailing_var_arg = true, allow_hyphen_values = true, value_name = "CONTAINER COMMAND [ARG...]")]
    pub args: Vec<String>,
}

#[derive(Args, Debug)]
pub struct StatsArgs {
    /// Show all containers (default shows just running)
    #[arg(short, long)]
    pub all: bool,
    /// Disable streaming stats and only pull the first result
    #[arg(long)]
    pub no_stream: bool,
    /// Format output: "table", "json", or a template
    #[arg(long)]
    pub format: Option<String>,
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct InspectArgs {
    /// Format output: "json", or a template like '{{.State.Status}}'
    #[arg(short, long)]
    pub format: Option<String>,
    /// Return JSON for specified type (container, image, network, volume)
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Display total file sizes if the type is container
    #[arg(short, long)]
    pub size: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct CpArgs {
    /// Archive mode (copy all uid/gid information)
    #[arg(short, long)]
    pub archive: bool,
    /// Always follow symbol link in SRC_PATH
    #[arg(short = 'L', long)]
    pub follow_link: bool,
    /// Suppress progress output during copy
    #[arg(short, long)]
    pub quiet: bool,
    /// CONTAINER:SRC_PATH or local path ("-" for a tar stream on stdin/stdout)
    pub src: String,
    /// CONTAINER:DEST_PATH or local path
    pub dst: String,
}

#[derive(Args, Debug)]
pub struct CommitArgs {
    /// Author (e.g., "John Hannibal Smith <hannibal@a-team.com>")
    #[arg(short, long)]
    pub author: Option<String>,
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Commit message
    #[arg(short, long)]
    pub message: Option<String>,
    /// Pause container during commit
    #[arg(short, long, default_value_t = true, action = ArgAction::Set)]
    pub pause: bool,
    pub container: String,
    pub repository: Option<String>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// Suppress verbose output
    #[arg(short, long)]
    pub quiet: bool,
    pub name: String,
}

#[derive(Args, Debug)]
pub struct ImagesArgs {
    /// Show all images
    #[arg(short, long)]
    pub all: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Show digests
    #[arg(long)]
    pub digests: bool,
    /// Filter output based on conditions provided
    #[arg(short, long)]
    pub filter: Vec<String>,
    /// Format output: "table", "json", or a template
    #[arg(long)]
    pub format: Option<String>,
    /// Only images of this repository ([REPOSITORY[:TAG]])
    pub reference: Option<String>,
}

#[derive(Args, Debug)]
pub struct RmiArgs {
    /// Force removal of the image
    #[arg(short, long)]
    pub force: bool,
    /// Do not delete untagged parents
    #[arg(long)]
    pub no_prune: bool,
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Args, Debug)]
pub struct HistoryArgs {
    /// Print sizes and dates in human readable format
    #[arg(long, default_value_t = true, action = ArgAction::Set)]
    pub human: bool,
    /// Don't truncate output
    #[arg(long)]
    pub no_trunc: bool,
    /// Only show image IDs
    #[arg(short, long)]
    pub quiet: bool,
    /// Format output: "table", "json", or a template
    #[arg(long)]
    pub format: Option<String>,
    pub image: String,
}

#[derive(Args, Debug)]
pub struct SaveArgs {
    /// Write to a file, instead of STDOUT
    #[arg(short, long)]
    pub output: Option<String>,
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Args, Debug)]
pub struct LoadArgs {
    /// Read from tar archive file, instead of STDIN
    #[arg(short, long)]
    pub input: Option<String>,
    /// Suppress the load output
    #[arg(short, long)]
    pub quiet: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    /// Apply Dockerfile instruction to the created image
    #[arg(short, long)]
    pub change: Vec<String>,
    /// Set commit message for imported image
    #[arg(short, long)]
    pub message: Option<String>,
    /// Set platform if server is multi-platform capable
    #[arg(long)]
    pub platform: Option<String>,
    /// file ("-" for STDIN)
    pub file: String,
    pub repository: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn run_takes_the_command_after_the_image() {
        let cli = Cli::try_parse_from([
            "wharf", "run", "--rm", "-h", "box", "-e", "A=1", "busybox", "ls", "-l", "-e",
        ])
        .expect("parse");
        let Cmd::Run(r) = cli.cmd else {
            panic!("not run")
        };
        assert_eq!(r.create.args, ["busybox", "ls", "-l", "-e"]);
        assert_eq!(r.create.hostname.as_deref(), Some("box"));
        assert_eq!(r.create.env, ["A=1"]);
        let cli = Cli::try_parse_from(["wharf", "exec", "-it", "c1", "sh", "-c", "echo hi"])
            .expect("parse");
        let Cmd::Exec(e) = cli.cmd else {
            panic!("not exec")
        };
        assert!(e.tty && e.interactive);
        assert_eq!(e.args, ["c1", "sh", "-c", "echo hi"]);
    }
}
