//! `herald`: the webhook platform's one binary.
//!
//! - `herald serve`: run the server (API, storage, and — as they land — delivery).
//! - `herald openapi`: print the API's OpenAPI 3.1 document.
//! - `herald verify`: check a saved webhook request's signature (`verify_cmd`).

#![forbid(unsafe_code)]

mod verify_cmd;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Serve(args) => serve(args).await,
        Command::Openapi => {
            let doc = serde_json::to_string_pretty(&herald_api::openapi())?;
            write_stdout(&doc);
            Ok(())
        }
        Command::Verify(args) => {
            let report = verify_cmd::run(&args);
            if let Some(out) = &report.stdout {
                write_stdout(out);
            }
            if let Some(err) = &report.stderr {
                eprintln!("{err}");
            }
            std::process::exit(report.exit_code)
        }
    }
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let config = Config::load(&args)?;
    herald::telemetry::init(&config.log);
    // Listen for signals before anything else, so a SIGTERM during start-up stops us cleanly.
    let shutdown = shutdown_on_signals();
    tracing::debug!(?config, "configuration");
    let app = App::build(&config).await?;
    if let Some(first) = app.first_admin_key().filter(|k| k.generated) {
        write_stdout(&format!(
            "\nCreated the first admin API key. It is shown only this once; keep it safe:\n\n    {}\n",
            first.token.expose()
        ));
    }
    write_stdout(&format!("Herald listening on http://{}", app.local_addr()));
    app.run(shutdown).await
}

/// The CLI's own output (not logs): what a user asked to see.
#[allow(clippy::print_stdout)]
fn write_stdout(text: &str) {
    println!("{text}");
}
