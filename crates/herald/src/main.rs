//! `herald`: the webhook platform's one binary.
//!
//! - `herald serve`: run the server (API, storage, and — as they land — delivery).
//! - `herald openapi`: print the API's OpenAPI 3.1 document.
//! - `herald verify`: check a saved webhook request's signature (`verify_cmd`).
//! - `herald admin-key create`: a new admin key, made in the store (`herald::admin_key`).

#![forbid(unsafe_code)]

mod verify_cmd;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use herald::app::{App, shutdown_on_signals};
use herald::config::{Config, ServeArgs};

#[derive(Debug, Parser)]
#[command(
    name = "herald",
    version,
    about = "Herald: a self-hosted webhook platform."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once at start; every server setting is a flag"
)]
enum Command {
    /// Run the Herald server. Settings layer: defaults, then --config file, then HERALD_*
    /// environment variables, then these flags.
    Serve(ServeArgs),
    /// Print the OpenAPI 3.1 document of the API to standard output.
    Openapi,
    /// Check a saved webhook request (headers, blank line, body) against a secret, as a
    /// receiver would; print `valid` or the check that failed.
    Verify(verify_cmd::VerifyArgs),
    /// Admin keys made on the server's machine, straight in its database.
    #[command(subcommand)]
    AdminKey(AdminKeyCommand),
}

#[derive(Debug, Subcommand)]
enum AdminKeyCommand {
    /// Create a new admin API key and print it (for an operator who lost every admin key).
    /// On SQLite, stop the server first: it holds the data directory. On PostgreSQL, it works
    /// while Herald runs.
    Create(AdminKeyArgs),
}

#[derive(Debug, clap::Args)]
struct AdminKeyArgs {
    /// The server's TOML configuration file, to read its data_dir or database_url from.
    #[arg(long, env = "HERALD_CONFIG", value_name = "FILE")]
    config: Option<std::path::PathBuf>,
    /// The server's SQLite data folder [default: ./herald-data].
    #[arg(long, env = "HERALD_DATA_DIR", value_name = "DIR")]
    data_dir: Option<std::path::PathBuf>,
    /// The server's database instead: postgres://user@host/db or sqlite://path.
    #[arg(
        long,
        env = "HERALD_DATABASE_URL",
        value_name = "URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// The new key's name, as the key list shows it.
    #[arg(long, default_value = "recovery admin", value_name = "NAME")]
    name: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Openapi => {
            let doc = serde_json::to_string_pretty(&herald_api::openapi())?;
            // Whoever stopped reading had what they wanted.
            let _ = write_stdout(&doc);
            Ok(())
        }
        Command::Verify(args) => {
            let report = verify_cmd::run(&args);
            if let Some(out) = &report.stdout {
                let _ = write_stdout(out);
            }
            if let Some(err) = &report.stderr {
                eprintln!("{err}");
            }
            std::process::exit(report.exit_code)
        }
        Command::AdminKey(AdminKeyCommand::Create(args)) => create_admin_key(args).await,
    }
}

async fn create_admin_key(args: AdminKeyArgs) -> anyhow::Result<()> {
    let config = Config::load(&ServeArgs {
        config: args.config,
        data_dir: args.data_dir,
        database_url: args.database_url,
        ..ServeArgs::default()
    })?;
    let token = herald::admin_key::create(&config.store_target()?, &args.name).await?;
    // The key is in the store whether or not it is seen: say so if it could not be shown.
    write_stdout(&format!(
        "Created an admin API key. It is shown only this once; keep it safe:\n\n    {}\n",
        token.expose()
    ))
    .context("printing the new admin key (it was created; run this again for another)")
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    herald::telemetry::init(&config.log);
    // Listen for signals before anything else, so a SIGTERM during start-up stops us cleanly.
    let shutdown = shutdown_on_signals();
    tracing::debug!(?config, "configuration");
    if let Some(limit) = herald::serve::raise_open_files_limit() {
        // Each connection holds a descriptor, and so do outbound connections and the database.
        let wanted = config.max_connections as u64 + 2 * config.global_concurrency as u64 + 64;
        if limit < wanted {
            tracing::warn!(
                limit,
                max_connections = config.max_connections,
                "the open-files limit is below max_connections plus room for outbound \
                 connections; lower max_connections or raise the hard limit (ulimit -Hn)"
            );
        }
    }
    let app = App::build(&config).await?;
    if let Some(first) = app.first_admin_key().filter(|k| k.generated) {
        let shown = write_stdout(&format!(
            "\nCreated the first admin API key. It is shown only this once; keep it safe:\n\n    {}\n",
            first.token.expose()
        ));
        if let Err(error) = shown {
            tracing::error!(
                %error,
                "the first admin API key could not be printed (standard output is gone); \
                 make another with `herald admin-key create` while Herald is stopped"
            );
        }
    }
    // Serving does not depend on anyone reading this line.
    let _ = write_stdout(&format!("Herald listening on http://{}", app.local_addr()));
    app.run(shutdown).await
}

/// The CLI's own output (not logs): what a user asked to see. A reader that went away
/// (`herald openapi | head`, a closed terminal) is not Herald's failure: `println!` would panic
/// on the broken pipe (Rust ignores SIGPIPE, so the write fails instead of killing the
/// process); here the error is returned for the callers that care, and a server carries on.
fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{text}")?;
    out.flush()
}
