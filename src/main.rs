//! The `ragd` binary: parse the command line, read the configuration, run the command.

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;
use ragd::app::{App, shutdown_signal};
use ragd::cli::{Cli, Command, ConfigCommand};
use ragd::config::Settings;
use ragd::{store, telemetry};

mod malloc_arenas;

fn main() -> ExitCode {
    malloc_arenas::limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("ragd: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run_cli())
}

async fn run_cli() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::from_env() {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("ragd: {err}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command.unwrap_or(Command::Serve), settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("ragd: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> Result<(), String> {
    match command {
        Command::Serve => serve(settings).await,
        Command::Healthcheck => ragd::app::probe_health(&settings).await,
        Command::Migrate => {
            let store = store::connect(&settings).await.map_err(|e| e.to_string())?;
            eprintln!("ragd: {} schema is up to date", store.backend());
            Ok(())
        }
        Command::Ingest {
            paths,
            user,
            recursive,
        } => {
            let report = ragd::ingest_command::run(settings, &paths, &user, recursive).await?;
            ragd::ingest_command::write_summary(&mut std::io::stdout().lock(), &report)
                .map_err(|e| e.to_string())?;
            match report.failures.len() {
                0 => Ok(()),
                failed => Err(format!("{failed} file(s) failed")),
            }
        }
        Command::User { command } => {
            let mut out = std::io::stdout().lock();
            ragd::user_command::run(settings, command, &mut std::io::stdin().lock(), &mut out).await
        }
        Command::Config {
            command: ConfigCommand::Example,
        } => {
            let mut out = std::io::stdout().lock();
            write!(out, "{}", ragd::config::env_example()).map_err(|e| e.to_string())
        }
        Command::Config {
            command: ConfigCommand::Check,
        } => {
            let rows = settings.describe();
            let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
            let mut out = std::io::stdout().lock();
            for (name, value) in rows {
                writeln!(out, "{name:width$}  {value}").map_err(|e| e.to_string())?;
            }
            writeln!(out, "configuration is valid").map_err(|e| e.to_string())
        }
    }
}

async fn serve(settings: Settings) -> Result<(), String> {
    telemetry::init_logging(&settings);
    let app = App::build(settings).await.map_err(|e| e.to_string())?;
    let address = app.local_addr().map_err(|e| e.to_string())?;
    let state = app.state();
    tracing::info!(
        address = %address,
        url = %format!("http://{address}/"),
        database = state.store.backend(),
        cache = if state.settings.redis_url.is_some() { "redis" } else { "memory" },
        "ragd listening"
    );
    app.serve_until(shutdown_signal())
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!("ragd stopped");
    Ok(())
}
