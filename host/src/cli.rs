//! The `berth` command line.
//!
//! Exit codes: 0 success; 1 the action failed (engine error); 2 bad usage or bad params;
//! 3 denied by policy or stopped by the sandbox.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use crate::credentials::{CredentialStore, Credentials};
use crate::engine::{EngineClient, Timeouts};
use crate::runtime::{Artifacts, Catalog, HostContext, Limits, Runtime, RuntimeConfig};
use crate::spec::{ActionResult, ActionSpec, FailureKind, RawParams};

pub use crate::engine::DEFAULT_HOST;

#[derive(Parser, Debug)]
#[command(name = "berth", version, about = "Docker Engine connector: sandboxed WebAssembly actions")]
pub struct Cli {
    /// Engine address: unix:///path/to/docker.sock, tcp://host:port or ssh://user@host[:port]
    /// [env: DOCKER_HOST; default: unix:///var/run/docker.sock].
    #[arg(short = 'H', long, global = true, help_heading = "Engine options")]
    pub host: Option<String>,
    /// Docker context to use (~/.docker/contexts) [env: DOCKER_CONTEXT].
    #[arg(short = 'c', long, global = true, help_heading = "Engine options")]
    pub context: Option<String>,
    /// Use TLS; implied by --tlsverify.
    #[arg(long, global = true, help_heading = "Engine options")]
    pub tls: bool,
    /// Use TLS and verify the engine's certificate against the CA [env: DOCKER_TLS_VERIFY].
    #[arg(long, global = true, help_heading = "Engine options")]
    pub tlsverify: bool,
    /// Trust only certificates signed by this CA [default: $DOCKER_CERT_PATH/ca.pem].
    #[arg(long, global = true, help_heading = "Engine options")]
    pub tlscacert: Option<PathBuf>,
    /// Client certificate [default: $DOCKER_CERT_PATH/cert.pem].
    #[arg(long, global = true, help_heading = "Engine options")]
    pub tlscert: Option<PathBuf>,
    /// Client key [default: $DOCKER_CERT_PATH/key.pem].
    #[arg(long, global = true, help_heading = "Engine options")]
    pub tlskey: Option<PathBuf>,
    /// The name the engine's certificate must carry, for engines reached by IP.
    #[arg(long, global = true, help_heading = "Engine options")]
    pub tls_server_name: Option<String>,
    /// Basic auth to the engine (an authenticating proxy in front of it): the username, with
    /// --engine-password-file [env: BERTH_ENGINE_USERNAME].
    #[arg(long, env = "BERTH_ENGINE_USERNAME", global = true, help_heading = "Engine options")]
    pub engine_username: Option<String>,
    /// The file holding the engine password [env: BERTH_ENGINE_PASSWORD_FILE].
    #[arg(long, env = "BERTH_ENGINE_PASSWORD_FILE", global = true, help_heading = "Engine options")]
    pub engine_password_file: Option<PathBuf>,
    /// The file holding a bearer token for the engine [env: BERTH_ENGINE_TOKEN_FILE].
    #[arg(long, env = "BERTH_ENGINE_TOKEN_FILE", global = true, help_heading = "Engine options")]
    pub engine_token_file: Option<PathBuf>,
    /// Directory of action components (*.wasm). Default: `actions/` beside the binary.
    #[arg(long, env = "BERTH_ACTIONS", global = true, help_heading = "Components options")]
    pub actions: Option<PathBuf>,
    /// Output format: `berth run` prints pretty on a terminal and JSON otherwise; the other
    /// commands print text unless asked for JSON.
    #[arg(short, long, global = true)]
    pub output: Option<OutputFormat>,
    /// Compile cache directory. Default: $XDG_CACHE_HOME/berth or ~/.cache/berth.
    #[arg(long, env = "BERTH_CACHE", global = true, help_heading = "Components options")]
    pub cache: Option<PathBuf>,
    /// Compile every component afresh; write no cache.
    #[arg(long, global = true, help_heading = "Components options")]
    pub no_cache: bool,
    /// Registry credentials file: {"registries": {"host:port": {"username": .., "password": ..}}}.
    /// ~/.docker/config.json `auths` are used for registries it does not name.
    #[arg(long, env = "BERTH_CREDENTIALS", global = true, help_heading = "Engine options")]
    pub credentials: Option<PathBuf>,
    /// Run under a tenant's policy (the TOML of one [[tenant]] table: allow, read_only,
    /// label_scope, pins, [engine_policy]), as `berth serve` would.
    #[arg(long, env = "BERTH_POLICY", global = true, help_heading = "Sandbox options")]
    pub policy: Option<PathBuf>,
    /// Progress of long waits (compiling, pulling, waiting) as lines on stderr even when it is
    /// not a terminal (on a terminal it is always drawn).
    #[arg(long, global = true)]
    pub progress: bool,
    #[command(flatten)]
    pub limits: LimitArgs,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The engine flags, for [`crate::engine::endpoint::resolve`].
    pub fn endpoint_flags(&self) -> crate::engine::endpoint::Flags {
        crate::engine::endpoint::Flags {
            host: self.host.clone(),
            context: self.context.clone(),
            tls: self.tls,
            tlsverify: self.tlsverify,
            tlscacert: self.tlscacert.clone(),
            tlscert: self.tlscert.clone(),
            tlskey: self.tlskey.clone(),
            tls_server_name: self.tls_server_name.clone(),
            engine_username: self.engine_username.clone(),
            engine_password_file: self.engine_password_file.clone(),
            engine_token_file: self.engine_token_file.clone(),
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Guest memory cap, MiB [default: 128].
    #[arg(long, global = true, help_heading = "Sandbox options")]
    pub memory_mb: Option<u64>,
    /// Guest CPU cap, seconds [default: 10].
    #[arg(long, global = true, help_heading = "Sandbox options")]
    pub cpu_secs: Option<f64>,
    /// Wall-clock cap per invocation, seconds (time in engine calls included) [default: 600].
    #[arg(long, global = true, help_heading = "Sandbox options")]
    pub timeout_secs: Option<f64>,
    /// Engine calls per invocation [default: 256].
    #[arg(long, global = true, help_heading = "Sandbox options")]
    pub max_engine_calls: Option<u32>,
    /// Response bytes handed to the guest per invocation [default: 256 MiB].
    #[arg(long, global = true, help_heading = "Sandbox options")]
    pub max_response_bytes: Option<u64>,
    /// Seconds to wait for the engine's socket to accept.
    #[arg(long, default_value_t = 5.0, global = true, help_heading = "Engine options")]
    pub connect_timeout: f64,
    /// Seconds to wait for response headers.
    #[arg(long, default_value_t = 120.0, global = true, help_heading = "Engine options")]
    pub header_timeout: f64,
    /// Seconds a response body may stall.
    #[arg(long, default_value_t = 60.0, global = true, help_heading = "Engine options")]
    pub body_timeout: f64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportTarget {
    /// A Splunk SOAR app (splunk-soar-sdk 2.3): every action, the Docker app's under their names.
    SplunkSoar,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Json,
    Pretty,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Serve many tenants over HTTP (see host/README.md: server mode).
    Serve {
        /// Tenants config (TOML).
        #[arg(long)]
        config: PathBuf,
        /// Address to listen on (overrides server.listen).
        #[arg(long, env = "BERTH_LISTEN")]
        listen: Option<String>,
    },
    /// Print the SHA-256 of a tenant token, for the tenants config.
    HashToken {
        /// The token a tenant will send as `Authorization: Bearer TOKEN`.
        token: String,
    },
    /// Print a shell completion script: `berth completions bash > /etc/bash_completion.d/berth`.
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
    /// List every action: name, kind, read-only, summary; then any skipped component and why.
    Actions {
        /// JSON for machines.
        #[arg(long)]
        json: bool,
        /// Exit 1 when any component was skipped (broken, clashing, unsupported contract).
        #[arg(long)]
        strict: bool,
    },
    /// Check a component before installing it: contract version, imports, describe(), names,
    /// clashes with the installed families, the default caps.
    Check {
        /// The component (.wasm) to check.
        file: PathBuf,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check a component, copy it into the actions directory (atomically), precompile it and
    /// print its sha256 for tenant pins.
    Install {
        /// The component (.wasm) to check and install.
        file: PathBuf,
        /// Print the check and the install as JSON.
        #[arg(long)]
        json: bool,
        /// Replace an installed family of the same name (otherwise refused).
        #[arg(long)]
        replace: bool,
    },
    /// Scaffold a new action family that builds and passes its own test.
    New {
        /// Family name (lower-case, '-' allowed): its actions are NAME.<action>.
        name: String,
        /// The language of the family's code and test.
        #[arg(long, value_enum, default_value = "rust")]
        lang: crate::authoring::scaffold::Lang,
        /// Directory to create [default: ./NAME].
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The berth checkout whose SDKs and WIT the family uses [default: the one this
        /// binary was built from].
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Write a platform's app for berth's actions: `berth export splunk-soar --dir berth_docker`
    /// (a Splunk SOAR app on splunk-soar-sdk whose actions run through berth serve).
    Export {
        /// The platform.
        #[arg(value_enum)]
        target: ExportTarget,
        /// The directory to create.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Show an action's params and their JSON Schema.
    Describe {
        /// The action, e.g. container.list.
        action: String,
        /// Print the params, their JSON Schema and the output paths as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run an action: `berth run system.events since=10m max_events=5`.
    Run {
        /// The action, e.g. container.list (`berth actions` lists them).
        action: String,
        /// Params as key=value; values are converted to the declared type.
        params: Vec<String>,
        /// Params as a JSON object, or @file.
        #[arg(long)]
        params_json: Option<String>,
        /// Output artifact `out` (exports, saves, archive-get).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Input artifact `in` (loads, imports, archive-put).
        #[arg(long = "in")]
        input: Option<PathBuf>,
        /// More output artifacts, NAME=PATH.
        #[arg(long = "artifact", value_name = "NAME=PATH")]
        artifacts: Vec<String>,
        /// More input artifacts, NAME=PATH.
        #[arg(long = "input-artifact", value_name = "NAME=PATH")]
        input_artifacts: Vec<String>,
        /// Run on several engines at once (fan-out): NAME=ADDRESS (unix://, tcp://, ssh://) or
        /// a docker context name; repeat it. Rows get an `asset` field, each engine a status.
        #[arg(long = "asset", value_name = "NAME=ADDRESS|CONTEXT")]
        assets: Vec<String>,
        /// Fan-out: seconds each engine may take before it counts as timed out.
        #[arg(long, default_value_t = 60.0)]
        asset_timeout: f64,
    },
}

impl LimitArgs {
    /// The caps, through the one validator the tenants config uses too.
    pub fn limits(&self) -> Result<Limits, String> {
        crate::runtime::LimitSpec {
            memory_mb: self.memory_mb,
            cpu_secs: self.cpu_secs,
            timeout_secs: self.timeout_secs,
            engine_calls: self.max_engine_calls,
            response_bytes: self.max_response_bytes,
        }
        .validate()
        .map_err(|e| {
            let flag = match e.key {
                "engine_calls" => "max-engine-calls".to_string(),
                "response_bytes" => "max-response-bytes".to_string(),
                k => k.replace('_', "-"),
            };
            format!("--{flag}: {}", e.msg)
        })
    }

    pub fn timeouts(&self) -> Result<Timeouts, String> {
        Ok(Timeouts {
            connect: secs("connect-timeout", self.connect_timeout)?,
            headers: secs("header-timeout", self.header_timeout)?,
            body: secs("body-timeout", self.body_timeout)?,
        })
    }
}

/// A seconds flag as a duration: positive, at most a day.
fn secs(name: &str, v: f64) -> Result<Duration, String> {
    if v.is_finite() && v > 0.0 && v <= 86_400.0 {
        Ok(Duration::from_secs_f64(v))
    } else {
        Err(format!("--{name} must be between 0 and 86400 seconds, got {v}"))
    }
}

/// A usage error: exit 2 with the message.
struct Usage(String);

/// The default actions directory: `actions/` beside the binary.
pub fn default_actions_dir() -> PathBuf {
    std::env::current_exe().ok().and_then(|p| p.parent().map(|d| d.join("actions"))).unwrap_or_else(|| PathBuf::from("actions"))
}

/// The global options each command reads; the rest are hidden from its help (they are
/// accepted everywhere, so `berth -H HOST run …` and `berth run -H HOST …` both work).
fn shown_options(command: &str) -> &'static [&'static str] {
    const COMPONENTS: &[&str] = &["actions", "cache", "no_cache", "output", "progress"];
    match command {
        "run" => &["*"],
        "serve" => &["actions"],
        "actions" | "describe" | "check" | "install" | "export" => COMPONENTS,
        _ => &[],
    }
}

/// The command line parser, each subcommand's help showing only the options it reads.
pub fn command() -> clap::Command {
    let mut cmd = <Cli as clap::CommandFactory>::command();
    let globals: Vec<clap::Arg> = cmd.get_arguments().filter(|a| a.is_global_set()).cloned().collect();
    let names: Vec<String> = cmd.get_subcommands().map(|c| c.get_name().to_string()).collect();
    for name in names {
        let shown = shown_options(&name);
        if shown == ["*"] {
            continue;
        }
        // A subcommand that already has an argument keeps it when the globals are propagated:
        // the hidden copies stand in for them.
        cmd = cmd.mut_subcommand(&name, |mut sub| {
            for a in &globals {
                if !shown.contains(&a.get_id().as_str()) {
                    sub = sub.arg(a.clone().hide(true));
                }
            }
            sub
        });
    }
    cmd
}

/// Runs the CLI; returns the process exit code.
pub fn main_entry() -> i32 {
    // The wasm engine and linker are built beside the argument parsing (each ~0.5–0.8 ms of a
    // short CLI run); `berth serve` builds its own pooled ones and leaves these unused.
    let parts = std::thread::Builder::new().name("berth-engine".into()).spawn(|| crate::runtime::EngineParts::new(None));
    let cli = match <Cli as clap::FromArgMatches>::from_arg_matches(&command().get_matches()) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    init_tracing();
    match &cli.command {
        Command::HashToken { token } => {
            println!("{}", hex::encode(crate::server::config::hash_token(token)));
            return 0;
        }
        Command::Completions { shell } => {
            clap_complete::generate(*shell, &mut command(), "berth", &mut std::io::stdout());
            return 0;
        }
        Command::Serve { config, listen } => {
            let actions = cli.actions.clone().unwrap_or_else(default_actions_dir);
            return crate::server::run(config, listen.as_deref(), actions);
        }
        Command::New { name, lang, dir, root } => {
            let dir = dir.clone().unwrap_or_else(|| PathBuf::from(name));
            let root = root.clone().unwrap_or_else(crate::authoring::scaffold::default_root);
            let berth = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("berth"));
            return match crate::authoring::scaffold::create(name, *lang, &dir, &root, &berth) {
                Ok(files) => {
                    for f in files {
                        println!("created {}", f.display());
                    }
                    println!("next: make -C {} && make -C {} test", dir.display(), dir.display());
                    0
                }
                Err(e) => {
                    eprintln!("berth: new: {e:#}");
                    2
                }
            };
        }
        _ => {}
    }
    let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berth: cannot start the async runtime: {e}");
            return 1;
        }
    };
    // `berth run` prints an action_result whatever fails, so a playbook always gets JSON.
    let run_format = match &cli.command {
        Command::Run { .. } => Some(cli.output.unwrap_or(if std::io::stdout().is_terminal() { OutputFormat::Pretty } else { OutputFormat::Json })),
        _ => None,
    };
    let parts = move || match parts {
        Ok(handle) => handle.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the engine thread panicked"))),
        Err(_) => crate::runtime::EngineParts::new(None),
    };
    match rt.block_on(run_cli(cli, parts)) {
        Ok(code) => code,
        Err(Usage(msg)) => {
            if let Some(format) = run_format {
                print_result(&ActionResult::failed(Map::new(), FailureKind::BadParams, None, msg.clone()), format);
            }
            eprintln!("berth: {msg}");
            2
        }
    }
}

fn init_tracing() {
    let fmt = tracing_subscriber::fmt().with_writer(std::io::stderr).with_ansi(std::io::stderr().is_terminal()).with_target(true);
    // Without BERTH_LOG, a plain level: an EnvFilter compiles its directives into regexes,
    // a cost every CLI run would pay.
    let _ = match tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG") {
        Ok(filter) => fmt.with_env_filter(filter).try_init(),
        Err(_) => fmt.with_max_level(tracing::Level::WARN).try_init(),
    };
}

/// `parts` waits for the engine and linker being built beside the argument parsing.
async fn run_cli(cli: Cli, parts: impl FnOnce() -> anyhow::Result<crate::runtime::EngineParts>) -> Result<i32, Usage> {
    let limits = cli.limits.limits().map_err(Usage)?;
    let timeouts = cli.limits.timeouts().map_err(Usage)?;
    let format = cli.output.unwrap_or(if std::io::stdout().is_terminal() { OutputFormat::Pretty } else { OutputFormat::Json });
    let cache_dir = if cli.no_cache { None } else { cli.cache.clone().or_else(crate::runtime::cache::default_dir) };
    // The runtime and the catalog live until the process exits: leaked, so that exiting does
    // not first unmap every compiled component and free every spec one by one (~1 ms of a
    // short CLI run); the kernel takes the whole address space back at once.
    let dir = cli.actions.clone().unwrap_or_else(default_actions_dir);
    // Checking or installing into an actions directory that does not exist yet: nothing is
    // installed there (install creates it). The directory and the index are read while the
    // engine is still being built.
    let scan = if matches!(cli.command, Command::Check { .. } | Command::Install { .. }) && !dir.exists() {
        None
    } else {
        Some(crate::runtime::Scan::new(cache_dir.as_deref(), &dir).map_err(|e| Usage(format!("{e:#}")))?)
    };
    let parts = parts().map_err(|e| Usage(format!("cannot start the wasm runtime: {e:#}")))?;
    let progress = ProgressMode::new(cli.progress);
    let compile_progress = (progress != ProgressMode::Off).then(|| Arc::new(CompileNotice { mode: progress, spinner: Default::default() }) as _);
    let runtime: &'static Runtime =
        Box::leak(Box::new(Runtime::with_parts(parts, RuntimeConfig { cache_dir, map_cache_files: true, compile_progress, ..Default::default() })));
    let catalog: &'static Catalog = Box::leak(Box::new(match scan {
        None => Catalog::default(),
        Some(scan) => runtime.discover_scanned(scan).await.map_err(|e| Usage(format!("{e:#}")))?,
    }));
    for (path, why) in &catalog.skipped {
        eprintln!("berth: warning: skipped component {}: {why}", path.display());
    }
    // Listings keep their text form when piped (`berth actions | grep`): JSON only when asked.
    let json = |flag: bool| flag || cli.output == Some(OutputFormat::Json);
    match cli.command {
        Command::Serve { .. } | Command::HashToken { .. } | Command::Completions { .. } | Command::New { .. } => unreachable!("handled before discovery"),
        Command::Actions { json: j, strict } => Ok(actions_command(catalog, json(j), strict)),
        Command::Check { ref file, json: j } => Ok(check_command(runtime, catalog, &dir, file, json(j)).await),
        Command::Install { ref file, json: j, replace } => Ok(install_command(runtime, &dir, file, replace, json(j)).await),
        Command::Export { target: ExportTarget::SplunkSoar, ref dir } => {
            let actions: Vec<&crate::spec::ActionSpec> = catalog.actions().map(|(_, a)| a).collect();
            match crate::authoring::soar_app::write(dir, &actions) {
                Ok(files) => {
                    for f in files {
                        println!("created {}", f.display());
                    }
                    println!("{} actions; next: see {}/README.md (uv lock, soarapps package build)", actions.len(), dir.display());
                    Ok(0)
                }
                Err(e) => {
                    eprintln!("berth: export: {e:#}; nothing was written");
                    Ok(1)
                }
            }
        }
        Command::Describe { ref action, json: j } => {
            let (comp, spec) = find(catalog, action)?;
            print_describe(comp, spec, json(j));
            Ok(0)
        }
        Command::Run { .. } => run_command(&cli, runtime, catalog, limits, timeouts, format).await,
    }
}

/// `berth actions`: the catalog, and with `--strict` exit 1 when a component was skipped.
fn actions_command(catalog: &Catalog, json: bool, strict: bool) -> i32 {
    print_actions(catalog, json);
    if strict && !catalog.skipped.is_empty() {
        eprintln!("berth: {} component(s) skipped (--strict)", catalog.skipped.len());
        return 1;
    }
    0
}

/// `berth check FILE`.
async fn check_command(runtime: &Runtime, catalog: &Catalog, dir: &Path, file: &Path, json: bool) -> i32 {
    match crate::authoring::check(runtime, file, catalog, dir).await {
        Ok((report, _)) => {
            print_check(&report, json);
            0
        }
        Err(e) => {
            eprintln!("berth: check {}: {e:#}", file.display());
            1
        }
    }
}

/// `berth install FILE [--replace]`.
async fn install_command(runtime: &Runtime, dir: &Path, file: &Path, replace: bool, json: bool) -> i32 {
    let done = match crate::authoring::install(runtime, file, dir, replace).await {
        Ok(done) => done,
        Err(e) => {
            eprintln!("berth: install {}: {e:#}; nothing was installed", file.display());
            return 1;
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&done).expect("serialises"));
        return 0;
    }
    print_check(&done.report, false);
    let verb = if done.replaced { "replaced" } else { "installed" };
    println!("{verb} {} (family {} {})", done.path.display(), done.report.family.name, done.report.family.version);
    if done.precompiled {
        println!("precompiled into the cache: the first run compiles nothing");
    } else {
        println!("no compile cache (--no-cache): each run compiles it");
    }
    println!("sha256 {}", done.report.sha256);
    println!("pin it for a tenant: pins = {{ \"{}\" = \"{}\" }}", done.report.family.name, done.report.sha256);
    0
}

/// `berth run ACTION [k=v …]`: admitted under `--policy` if given, on one engine or fanned
/// out over `--asset`s; the exit code follows the result.
async fn run_command(
    cli: &Cli,
    runtime: &'static Runtime,
    catalog: &'static Catalog,
    limits: Limits,
    timeouts: crate::engine::Timeouts,
    format: OutputFormat,
) -> Result<i32, Usage> {
    let Command::Run { ref action, ref params, ref params_json, ref out, ref input, ref artifacts, ref input_artifacts, ref assets, asset_timeout } =
        cli.command
    else {
        unreachable!("a run")
    };
    let (comp, spec) = find(catalog, action)?;
    let tenant_policy = match &cli.policy {
        None => None,
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|e| Usage(format!("cannot read --policy {}: {e}", p.display())))?;
            Some(crate::server::config::parse_policy(&text).map_err(|e| Usage(format!("--policy {}: {e}", p.display())))?)
        }
    };
    let raw = raw_params(params, params_json.as_deref())?;
    let params = match crate::invoke::admit(tenant_policy.as_ref(), "this policy", comp, spec, raw) {
        Ok(p) => p,
        Err(r) if r.error.as_ref().is_some_and(|e| e.kind == FailureKind::BadParams) => return Err(Usage(r.message)),
        Err(r) => {
            print_result(&r, format);
            eprintln!("berth: {action} refused: {}", r.message);
            return Ok(r.error.map_or(1, |e| e.kind.exit_code()));
        }
    };
    let arts = artifacts_of(out.as_deref(), input.as_deref(), artifacts, input_artifacts)?;
    let policy = crate::invoke::policy_for(tenant_policy.as_ref(), spec);
    let invocation =
        |ctx| crate::invoke::Invocation { runtime, file: comp, spec, params: params.clone(), artifacts: arts.clone(), limits, policy: policy.clone(), ctx };
    if !assets.is_empty() {
        if arts.has_outputs() {
            return Err(Usage("--asset (fan-out) runs take no output artifacts: each engine would write the same file; run per engine".into()));
        }
        let timeout = secs("asset-timeout", asset_timeout).map_err(Usage)?;
        let creds = Arc::new(Credentials::new(cli.credentials.clone(), CredentialStore::docker_config_path()));
        let mut runs = Vec::new();
        for (name, engine) in asset_engines(cli, assets, timeouts)? {
            runs.push((name, invocation(HostContext::new(Arc::new(engine), creds.clone()))));
        }
        let (result, _) = crate::invoke::fan_out(runs, timeout, 8, crate::invoke::FanOut::Threads).await;
        print_result(&result, format);
        if let Some(e) = &result.error {
            eprintln!("berth: {} failed on every asset: {}", spec.name, one_line(&result.message));
            return Ok(e.kind.exit_code());
        }
        return Ok(0);
    }
    let endpoint = crate::engine::endpoint::resolve(&cli.endpoint_flags(), &crate::engine::endpoint::Env::process()).map_err(|e| Usage(format!("{e:#}")))?;
    let engine = EngineClient::connect_to(&endpoint, timeouts).map_err(|e| Usage(format!("{e:#}")))?;
    let creds = Credentials::new(cli.credentials.clone(), CredentialStore::docker_config_path());
    let mut ctx = HostContext::new(Arc::new(engine), Arc::new(creds));
    let bar = match ProgressMode::new(cli.progress) {
        ProgressMode::Off => None,
        mode => Some(Arc::new(CliProgress::new(mode))),
    };
    if let Some(bar) = &bar {
        ctx.progress = Some(bar.clone());
    }
    let mut run = invocation(ctx);
    let input_pack;
    (run.artifacts, input_pack) = pack_input_dir(run.artifacts, input.as_deref())?;
    let outcome = run.run().await;
    drop(input_pack);
    if let Some(bar) = &bar {
        bar.finish();
    }
    tracing::debug!(action = %spec.name, duration = ?outcome.duration, calls = ?outcome.calls, "invocation finished");
    print_result(&outcome.result, format);
    if let Some(e) = &outcome.result.error {
        eprintln!("berth: {} failed: {}", spec.name, one_line(&outcome.result.message));
        return Ok(e.kind.exit_code());
    }
    Ok(0)
}

/// `--out`, `--in`, `--artifact NAME=PATH` and `--input-artifact NAME=PATH`.
fn artifacts_of(out: Option<&Path>, input: Option<&Path>, outputs: &[String], inputs: &[String]) -> Result<Artifacts, Usage> {
    let mut arts = Artifacts::default();
    if let Some(p) = out {
        arts.output("out", p);
    }
    if let Some(p) = input {
        arts.input("in", p);
    }
    for (list, is_out) in [(outputs, true), (inputs, false)] {
        for a in list {
            let (name, path) =
                a.split_once('=').filter(|(n, p)| !n.is_empty() && !p.is_empty()).ok_or_else(|| Usage(format!("artifact '{a}' must be NAME=PATH")))?;
            if is_out {
                arts.output(name, path);
            } else {
                arts.input(name, path);
            }
        }
    }
    Ok(arts)
}

/// The engines of `--asset NAME=ADDRESS` or `--asset CONTEXT`, each connected, by name.
fn asset_engines(cli: &Cli, assets: &[String], timeouts: crate::engine::Timeouts) -> Result<Vec<(String, EngineClient)>, Usage> {
    let mut out: Vec<(String, EngineClient)> = Vec::new();
    for a in assets {
        let (name, flags) = match a.split_once('=') {
            Some((n, addr)) if !n.is_empty() && !addr.is_empty() => {
                (n.to_string(), crate::engine::endpoint::Flags { host: Some(addr.to_string()), ..cli.endpoint_flags() })
            }
            Some(_) => return Err(Usage(format!("--asset '{a}' must be NAME=ADDRESS or a context name"))),
            None => (a.clone(), crate::engine::endpoint::Flags { host: None, context: Some(a.clone()), ..cli.endpoint_flags() }),
        };
        if out.iter().any(|(n, _)| n == &name) {
            return Err(Usage(format!("--asset '{name}' is given twice")));
        }
        let endpoint =
            crate::engine::endpoint::resolve(&flags, &crate::engine::endpoint::Env::process()).map_err(|e| Usage(format!("--asset {name}: {e:#}")))?;
        let engine = EngineClient::connect_to(&endpoint, timeouts).map_err(|e| Usage(format!("--asset {name}: {e:#}")))?;
        out.push((name, engine));
    }
    Ok(out)
}

/// Where progress goes: drawn on a terminal's stderr; as plain lines when asked (`--progress`)
/// on anything else; otherwise nowhere.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ProgressMode {
    Bar,
    Lines,
    Off,
}

impl ProgressMode {
    fn new(asked: bool) -> Self {
        if std::io::stderr().is_terminal() {
            ProgressMode::Bar
        } else if asked {
            ProgressMode::Lines
        } else {
            ProgressMode::Off
        }
    }
}

/// An action's progress (pulls, pushes, waits): one line rewritten in place on a terminal
/// (indicatif), or a line at most every second.
struct CliProgress {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Option<Instant>>,
}

impl CliProgress {
    fn new(mode: ProgressMode) -> Self {
        let bar = (mode == ProgressMode::Bar).then(|| {
            let bar = indicatif::ProgressBar::new(0);
            bar.set_style(
                indicatif::ProgressStyle::with_template("{msg:60!} [{bar:30}] {percent:>3}%")
                    .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar
        });
        CliProgress { bar, last_line: Mutex::new(None) }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl crate::runtime::ProgressSink for CliProgress {
    fn report(&self, action: &str, id: &str, current: u64, total: Option<u64>, message: &str) {
        let Some(bar) = &self.bar else {
            let mut last = self.last_line.lock().unwrap();
            if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                *last = Some(Instant::now());
                let of = total.map(|t| format!(" {current}/{t}")).unwrap_or_default();
                eprintln!("berth: {action} {id}: {message}{of}");
            }
            return;
        };
        match total {
            Some(t) if t > 0 => {
                bar.set_length(t);
                bar.set_position(current.min(t));
            }
            _ => bar.set_length(0),
        }
        bar.set_message(format!("{action} {id}: {message}"));
    }
}

/// Compiling a component (seconds, once per version): a spinner on a terminal, or a line.
struct CompileNotice {
    mode: ProgressMode,
    spinner: Mutex<Option<indicatif::ProgressBar>>,
}

impl crate::runtime::cache::CompileProgress for CompileNotice {
    fn compiling(&self, name: &str, bytes: usize) {
        let msg = format!("compiling {name} ({:.1} MiB; once, then cached)", bytes as f64 / (1 << 20) as f64);
        if self.mode == ProgressMode::Bar {
            let s = indicatif::ProgressBar::new_spinner();
            s.set_message(msg);
            s.enable_steady_tick(Duration::from_millis(120));
            *self.spinner.lock().unwrap() = Some(s);
        } else {
            eprintln!("berth: {msg}");
        }
    }

    fn compiled(&self, name: &str, took: Duration) {
        if let Some(s) = self.spinner.lock().unwrap().take() {
            s.finish_and_clear();
        }
        eprintln!("berth: compiled {name} in {:.1} s", took.as_secs_f64());
    }
}

/// `--in DIR`: the CLI packs a directory (a build context) into a temporary tar, kept until the
/// invocation ends.
fn pack_input_dir(mut arts: Artifacts, input: Option<&std::path::Path>) -> Result<(Artifacts, Option<tempfile::NamedTempFile>), Usage> {
    let Some(dir) = input.filter(|p| p.is_dir()) else { return Ok((arts, None)) };
    let tmp = tempfile::Builder::new()
        .prefix("berth-context-")
        .suffix(".tar")
        .tempfile()
        .map_err(|e| Usage(format!("cannot create a temp file to pack {}: {e}", dir.display())))?;
    let mut tar = tar::Builder::new(std::io::BufWriter::new(tmp.as_file()));
    tar.follow_symlinks(false);
    tar.append_dir_all(".", dir).map_err(|e| Usage(format!("cannot pack {} into a tar: {e}", dir.display())))?;
    tar.into_inner().and_then(|mut w| w.flush()).map_err(|e| Usage(format!("cannot pack {} into a tar: {e}", dir.display())))?;
    arts.input("in", tmp.path());
    Ok((arts, Some(tmp)))
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn find<'a>(catalog: &'a Catalog, action: &str) -> Result<(&'a crate::runtime::ComponentFile, &'a ActionSpec), Usage> {
    catalog.action(action).ok_or_else(|| {
        let close = crate::spec::near(action, catalog.actions().map(|(_, a)| a.name.as_str()));
        let hint = if close.is_empty() { String::new() } else { format!("; did you mean {}?", close.join(", ")) };
        Usage(format!("unknown action '{action}' (run `berth actions` to list them){hint}"))
    })
}

fn raw_params(pairs: &[String], json: Option<&str>) -> Result<RawParams, Usage> {
    if let Some(j) = json {
        if !pairs.is_empty() {
            return Err(Usage("give params either as key=value or with --params-json, not both".into()));
        }
        let text = match j.strip_prefix('@') {
            Some(path) => std::fs::read_to_string(path).map_err(|e| Usage(format!("cannot read params file {path}: {e}")))?,
            None => j.to_string(),
        };
        return match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(m)) => Ok(RawParams::Json(m)),
            Ok(_) => Err(Usage("--params-json must be a JSON object".into())),
            Err(e) => Err(Usage(format!("--params-json is not valid JSON: {e}"))),
        };
    }
    let mut out = Vec::new();
    for p in pairs {
        let (k, v) = p.split_once('=').ok_or_else(|| Usage(format!("parameter '{p}' must be key=value")))?;
        if k.is_empty() {
            return Err(Usage(format!("parameter '{p}' has an empty name")));
        }
        out.push((k.to_string(), v.to_string()));
    }
    Ok(RawParams::Pairs(out))
}

fn kind_name(k: crate::spec::Kind) -> &'static str {
    match k {
        crate::spec::Kind::Investigate => "investigate",
        crate::spec::Kind::Generic => "generic",
        crate::spec::Kind::Contain => "contain",
        crate::spec::Kind::Correct => "correct",
    }
}

fn print_actions(catalog: &Catalog, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let list: Vec<Value> = catalog
            .actions()
            .map(|(c, a)| {
                json!({
                    "name": a.name, "kind": a.kind, "read_only": a.read_only, "summary": a.summary,
                    "family": c.family.name, "family_version": c.family.version, "component": c.path, "sha256": c.sha256,
                    "operations": a.operations,
                })
            })
            .collect();
        let skipped: Vec<Value> = catalog.skipped.iter().map(|(path, why)| json!({"component": path, "why": one_line(why)})).collect();
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&json!({"actions": list, "skipped": skipped})).unwrap());
        return;
    }
    let w = catalog.actions().map(|(_, a)| a.name.len()).max().unwrap_or(4).max(4);
    let _ = writeln!(out, "{:<w$}  {:<11}  {:<9}  SUMMARY", "NAME", "KIND", "READ-ONLY");
    for (_, a) in catalog.actions() {
        let _ = writeln!(out, "{:<w$}  {:<11}  {:<9}  {}", a.name, kind_name(a.kind), if a.read_only { "yes" } else { "no" }, a.summary);
    }
    if !catalog.skipped.is_empty() {
        let _ = writeln!(out, "\nSKIPPED COMPONENTS");
        for (path, why) in &catalog.skipped {
            let _ = writeln!(out, "{}  {}", path.display(), one_line(why));
        }
    }
}

fn print_check(r: &crate::authoring::Report, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(r).expect("serialises"));
        return;
    }
    let _ = writeln!(out, "{}: ok ({} KiB, sha256 {})", r.file.display(), r.size.div_ceil(1024), r.sha256);
    for p in &r.passed {
        let _ = writeln!(out, "  ok    {p}");
    }
    for w in &r.warnings {
        let _ = writeln!(out, "  warn  {w}");
    }
    for a in &r.family.actions {
        let ops = if a.operations.is_empty() { "(no operations declared)".to_string() } else { a.operations.join(", ") };
        let _ = writeln!(out, "  action {:<32} {}", a.name, ops);
    }
}

fn print_describe(comp: &crate::runtime::ComponentFile, spec: &ActionSpec, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let v = json!({
            "name": spec.name, "summary": spec.summary, "kind": spec.kind, "read_only": spec.read_only,
            "family": comp.family.name, "component": comp.path,
            "params": spec.params, "output": spec.output, "operations": spec.operations, "schema": spec.json_schema(),
        });
        let _ = writeln!(out, "{}", serde_json::to_string_pretty(&v).unwrap());
        return;
    }
    let _ = writeln!(out, "{} — {}", spec.name, spec.summary);
    let _ = writeln!(out, "kind: {}   read-only: {}   family: {} {}", kind_name(spec.kind), spec.read_only, comp.family.name, comp.family.version);
    let _ = writeln!(out, "\nparams:");
    if spec.params.is_empty() {
        let _ = writeln!(out, "  (none)");
    }
    for p in &spec.params {
        let req = if p.required { " (required)" } else { "" };
        let def = p.default.as_ref().map(|d| format!(" [default: {d}]")).unwrap_or_default();
        let _ = writeln!(out, "  {:<16} {:<8}{req}{def}  {}", p.name, p.value_type.name(), p.description);
    }
    if !spec.operations.is_empty() {
        let _ = writeln!(out, "\nengine operations (no others are allowed): {}", spec.operations.join(", "));
    }
    if !spec.output.is_empty() {
        let _ = writeln!(out, "\noutput:");
        for o in &spec.output {
            let _ = writeln!(out, "  {o}");
        }
    }
    let _ = writeln!(out, "\nschema:\n{}", serde_json::to_string_pretty(&spec.json_schema()).unwrap());
}

pub fn print_result(r: &ActionResult, format: OutputFormat) {
    let mut out = std::io::stdout().lock();
    match format {
        OutputFormat::Json => {
            let _ = writeln!(out, "{}", serde_json::to_string(r).expect("result serialises"));
        }
        OutputFormat::Pretty => {
            let status = match r.status {
                crate::spec::Status::Success => "success",
                crate::spec::Status::Failed => "FAILED",
            };
            let _ = writeln!(out, "{status}: {}", r.message);
            for (k, v) in &r.summary {
                let _ = writeln!(out, "  {k}: {}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string()));
            }
            if !r.data.is_empty() {
                let _ = writeln!(out, "{}", serde_json::to_string_pretty(&r.data).unwrap());
            }
        }
    }
}
