//! The daemon binary: configuration, the composition root, the API socket, signal handling.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use clap::Parser;
use wharfd::config::Config;
use wharfd::daemon::Daemon;

#[derive(Parser, Debug)]
#[command(
    name = "wharfd",
    version,
    about = "wharf's container engine (Docker Engine API on a unix socket)"
)]
struct Args {
    /// TOML configuration file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Root of persistent state (images, containers, volumes).
    #[arg(long = "data-root")]
    data_root: Option<PathBuf>,
    /// Root of runtime state (sockets, mounts, monitors).
    #[arg(long = "exec-root")]
    exec_root: Option<PathBuf>,
    /// The API socket.
    #[arg(short = 'H', long)]
    host: Option<PathBuf>,
    /// The runhcs binary (runtime and monitor).
    #[arg(long)]
    runhcs: Option<PathBuf>,
    /// Subnet of the default `nat` network.
    #[arg(long = "nat-subnet")]
    nat_subnet: Option<String>,
    /// Registries reachable over plain HTTP.
    #[arg(long = "insecure-registry")]
    insecure_registry: Vec<String>,
    /// Debug logging.
    #[arg(short = 'D', long)]
    debug: bool,
}

fn main() {
    let args = Args::parse();
    init_tracing(args.debug);
    let mut cfg = match &args.config {
        Some(p) => match Config::load(p) {
            Ok(c) => c,
            Err(e) => fail(&e),
        },
        None => Config::default(),
    };
    if let Some(v) = args.data_root {
        cfg.data_root = v;
    }
    if let Some(v) = args.exec_root {
        if args.host.is_none() && cfg.host == Config::default().host {
            cfg.host = v.join("wharf.sock");
        }
        cfg.exec_root = v;
    }
    if let Some(v) = args.host {
        cfg.host = v;
    }
    if let Some(v) = args.runhcs {
        cfg.runhcs = Some(v);
    }
    if let Some(v) = args.nat_subnet {
        cfg.nat_subnet = v;
    }
    cfg.insecure_registries.extend(args.insecure_registry);

    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => fail(&format!("start async runtime: {e}")),
    };
    if let Err(e) = rt.block_on(run(cfg)) {
        fail(&e);
    }
}

fn fail(msg: &str) -> ! {
    eprintln!("wharfd: {msg}");
    std::process::exit(1)
}

async fn run(cfg: Config) -> Result<(), String> {
    let host = cfg.host.clone();
    let daemon = Arc::new(Daemon::open(cfg).map_err(|e| e.to_string())?);
    if daemon.net.is_some() && !daemon.cfg.no_default_network {
        if let Err(e) = daemon.ensure_default_network() {
            tracing::warn!("default network: {e}");
        }
    }
    daemon.restore().await;
    if let Some(dir) = host.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    match std::fs::remove_file(&host) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("remove stale socket {}: {e}", host.display())),
    }
    let listener = tokio::net::UnixListener::bind(&host)
        .map_err(|e| format!("listen on {}: {e}", host.display()))?;
    std::fs::set_permissions(&host, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("chmod {}: {e}", host.display()))?;
    tracing::info!("API listening on {}", host.display());
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("signal handler: {e}"))?;
    let mut int = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
        .map_err(|e| format!("signal handler: {e}"))?;
    tokio::select! {
        r = wharfd::http::serve(listener, daemon.clone()) => r.map_err(|e| format!("accept: {e}"))?,
        _ = term.recv() => tracing::info!("SIGTERM: stopping (containers keep running)"),
        _ = int.recv() => tracing::info!("SIGINT: stopping (containers keep running)"),
    }
    drop(std::fs::remove_file(&host));
    Ok(())
}

fn init_tracing(debug: bool) {
    struct Stderr {
        debug: bool,
    }
    impl tracing::Subscriber for Stderr {
        fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
            let ours = m.target().starts_with("wharfd")
                || m.target().starts_with("images")
                || m.target().starts_with("hns");
            *m.level() <= tracing::Level::INFO || (self.debug && ours)
        }
        fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
            tracing::span::Id::from_u64(1)
        }
        fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
        fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
        fn event(&self, e: &tracing::Event<'_>) {
            struct V(String);
            impl tracing::field::Visit for V {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    if f.name() == "message" {
                        self.0.insert_str(0, &format!("{v:?}"));
                    } else {
                        self.0.push_str(&format!(" {}={v:?}", f.name()));
                    }
                }
            }
            let mut v = V(String::new());
            e.record(&mut v);
            eprintln!(
                "wharfd {} {}: {}",
                e.metadata().level(),
                e.metadata().target(),
                v.0
            );
        }
        fn enter(&self, _: &tracing::span::Id) {}
        fn exit(&self, _: &tracing::span::Id) {}
    }
    let _already_set_is_fine = tracing::subscriber::set_global_default(Stderr { debug });
}
