//! The `lilt` command: `serve`, `check-config`, `user add|del|passwd`, `storage migrate`. Parses arguments, reads
//! the config, sets up tracing and hands over to the library; nothing else lives here.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use lilt::admin::{self, UserAction};
use lilt::config::{Config, EMBEDDED_DEFAULTS};
use lilt::runtime::server::Server;

#[derive(Parser)]
#[command(
    name = "lilt",
    version,
    about = "Lilt: the Jitsi Meet backend in one Rust server, with WebAssembly plugins."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded defaults when no --config is given).
    Serve {
        /// The TOML configuration file.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Validate a configuration file, loading every plugin, without opening sockets.
    CheckConfig {
        /// The TOML configuration file.
        file: PathBuf,
    },
    /// See and reload the plugins of the running server (through its admin endpoint on a
    /// loopback HTTP listener).
    Plugin {
        #[command(subcommand)]
        action: PluginCmd,
        /// The TOML configuration file the server runs with (embedded defaults when absent).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
    /// Make the running server read its configuration file again (as SIGHUP does): vhosts
    /// added, removed or given other plugins take effect without a restart.
    Reload {
        /// The TOML configuration file the server runs with.
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// Manage accounts through the vhost's auth plugin.
    User {
        #[command(subcommand)]
        action: UserCmd,
        /// The TOML configuration file (embedded defaults when absent).
        #[arg(long, short, global = true)]
        config: Option<PathBuf>,
    },
    /// Move data between storage backends.
    Storage {
        #[command(subcommand)]
        action: StorageCmd,
    },
}

#[derive(Subcommand)]
enum StorageCmd {
    /// Copy accounts and plugin data from a SQLite file (data_dir/lilt.sqlite3) into the
    /// PostgreSQL database of --config, in one transaction, and print what was copied.
    Migrate {
        /// The SQLite file to copy from (it is only read).
        #[arg(long)]
        from: PathBuf,
        /// The TOML configuration whose [storage] has backend = "postgres".
        #[arg(long, short)]
        config: PathBuf,
        /// Copy even into a database that already holds entries: an entry with the same
        /// vhost, plugin and key is replaced by the SQLite one, the others are kept.
        #[arg(long)]
        merge: bool,
    },
}

#[derive(Subcommand)]
enum PluginCmd {
    /// Per vhost: plugin, world, generation, content hash, grants, calls, traps, state.
    List,
    /// Load plugins again from their files and swap the new generation in without a restart.
    Reload {
        /// Only this vhost's plugins.
        #[arg(long)]
        vhost: Option<String>,
        /// Only the plugin of this name.
        plugin: Option<String>,
    },
    /// Write a new plugin NAME/ depending on this checkout's plugin SDK: a Rust crate
    /// (Cargo.toml, src/lib.rs, src/policy.rs, README.md), or with --lang js|python a hook
    /// plugin with its world, a native test and build.sh.
    New {
        /// The plugin's name, lowercase kebab-case (e.g. room-greeter).
        name: String,
        /// Its world.
        #[arg(long, default_value = "hooks", value_parser = ["hooks", "component", "auth"])]
        world: String,
        /// Its language: a Rust crate, or a JavaScript or Python hook plugin (built with the
        /// toolchains scripts/plugin-langs-deps.sh pins).
        #[arg(long, default_value = "rust", value_parser = ["rust", "js", "python"])]
        lang: String,
        /// The directory to create NAME/ in (default: the current one).
        #[arg(long, default_value = ".")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create USER@VHOST; the password comes from a prompt or one line of stdin.
    Add {
        /// The account.
        jid: String,
    },
    /// Delete USER@VHOST.
    Del {
        /// The account.
        jid: String,
    },
    /// Change the password of USER@VHOST.
    Passwd {
        /// The account.
        jid: String,
    },
}

fn load(path: Option<&PathBuf>) -> Result<Config, String> {
    match path {
        Some(p) => Config::load(p).map_err(|e| format!("{}: {e}", p.display())),
        None => {
            Config::parse(EMBEDDED_DEFAULTS, std::path::Path::new(".")).map_err(|e| e.to_string())
        }
    }
}

fn init_tracing(filter: &str) {
    init_tracing_with_audit(filter, None);
}

/// The log on stderr (`LILT_LOG` or the config's level), and, for `serve`, the audit events
/// (target `audit`) as JSON lines appended to `audit`. An audit file that cannot be opened is
/// a start-up error, reported by the caller.
fn init_tracing_with_audit(filter: &str, audit: Option<std::fs::File>) {
    use tracing_subscriber::Layer as _;
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;
    // wasmtime and cranelift log every compiled function at debug level: keep them at warn
    // unless LILT_LOG asks otherwise.
    let filter = tracing_subscriber::EnvFilter::try_from_env("LILT_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(format!(
            "{filter},cranelift_codegen=warn,wasmtime=warn,wasmtime_internal_cranelift=warn"
        ))
    });
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let audit = audit.map(|file| {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::sync::Mutex::new(file))
            .with_filter(
                tracing_subscriber::filter::Targets::new()
                    .with_target("audit", tracing::Level::INFO),
            )
    });
    tracing_subscriber::registry()
        .with(stderr)
        .with(audit)
        .init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("lilt: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve { config } => {
                let config = load(config.as_ref()).map_err(anyhow::Error::msg)?;
                if let Some(dir) = config.audit_log.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        anyhow::anyhow!("audit_log: cannot create {}: {e}", dir.display())
                    })?;
                }
                let audit = std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&config.audit_log)
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "audit_log: cannot open {}: {e}",
                            config.audit_log.display()
                        )
                    })?;
                init_tracing_with_audit(&config.log_level, Some(audit));
                serve(config).await
            }
            Command::CheckConfig { file } => {
                init_tracing("warn");
                let config = load(Some(&file)).map_err(anyhow::Error::msg)?;
                admin::check_config(&config)
                    .map_err(|e| anyhow::anyhow!("{}: {e:#}", file.display()))?;
                println!(
                    "{}: ok ({} vhosts, {} listeners)",
                    file.display(),
                    config.vhosts.len(),
                    config.listeners.len()
                );
                Ok(())
            }
            Command::Plugin { action, config } => {
                init_tracing("warn");
                let config = load(config.as_ref()).map_err(anyhow::Error::msg)?;
                match action {
                    PluginCmd::New {
                        name,
                        world,
                        lang,
                        dir,
                    } => {
                        let world = world.parse()?;
                        let lang = lang.parse()?;
                        let checkout = admin::scaffold::checkout_path();
                        let root =
                            admin::scaffold::new_plugin_in(&name, lang, world, &dir, &checkout)?;
                        println!("created {}", root.display());
                        Ok(())
                    }
                    PluginCmd::List => {
                        print!("{}", admin::plugins::list(&config)?);
                        Ok(())
                    }
                    PluginCmd::Reload { vhost, plugin } => {
                        let (report, ok) =
                            admin::plugins::reload(&config, vhost.as_deref(), plugin.as_deref())?;
                        print!("{report}");
                        if ok {
                            Ok(())
                        } else {
                            Err(anyhow::anyhow!("a reload was refused"))
                        }
                    }
                }
            }
            Command::Reload { config } => {
                init_tracing("warn");
                let config = load(config.as_ref()).map_err(anyhow::Error::msg)?;
                print!("{}", admin::plugins::reload_config(&config)?);
                Ok(())
            }
            Command::User { action, config } => {
                init_tracing("warn");
                let config = load(config.as_ref()).map_err(anyhow::Error::msg)?;
                let (action, jid) = match action {
                    UserCmd::Add { jid } => (UserAction::Add, jid),
                    UserCmd::Del { jid } => (UserAction::Delete, jid),
                    UserCmd::Passwd { jid } => (UserAction::Passwd, jid),
                };
                admin::user(&config, action, &jid).await?;
                println!("ok");
                Ok(())
            }
            Command::Storage {
                action:
                    StorageCmd::Migrate {
                        from,
                        config,
                        merge,
                    },
            } => {
                init_tracing("warn");
                let config = load(Some(&config)).map_err(anyhow::Error::msg)?;
                print!(
                    "{}",
                    lilt::storage::migrate_sqlite::run(&config, &from, merge).await?
                );
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lilt: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Serve until SIGINT or SIGTERM, or until a long-lived task fails: then the server logs why
/// and the process exits non-zero, so that its supervisor restarts it. SIGHUP (what
/// `systemctl reload` sends) reloads the configuration file.
async fn serve(config: Config) -> anyhow::Result<()> {
    // Handlers first: a SIGHUP that arrives once the listeners accept must not find the
    // default action (terminate) still in place.
    let mut signals = Signals::new();
    let mut server = Server::start(config).await?;
    loop {
        tokio::select! {
            signal = signals.next() => match signal {
                Signal::Stop => {
                    tracing::info!(message = "Shutting down.");
                    server.shutdown().await;
                    return Ok(());
                }
                Signal::Reload => {
                    tracing::info!(message = "SIGHUP received: reloading the configuration.");
                    // The outcome is logged by the reload itself.
                    let _ = server.reload_config().await;
                }
            },
            e = server.failed() => {
                tracing::error!(message = "A server task failed; exiting.", error = %e);
                return Err(e);
            }
        }
    }
}

/// What a signal asks for.
enum Signal {
    /// SIGINT or SIGTERM.
    Stop,
    /// SIGHUP.
    Reload,
}

/// The signals `serve` listens to.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    hup: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                hup: signal(SignalKind::hangup()).ok(),
            }
        }
        #[cfg(not(unix))]
        Signals {}
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                _ = tokio::signal::ctrl_c() => Signal::Stop,
                () = recv(&mut self.term) => Signal::Stop,
                () = recv(&mut self.hup) => Signal::Reload,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Stop
        }
    }
}
