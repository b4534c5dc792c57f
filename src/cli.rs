//! The command line: `ragd` serves; the subcommands are for operators.

use clap::{Parser, Subcommand};

/// ragd: one binary that puts LLMs behind an API, with RAG, users, limits and metrics.
///
/// Configuration comes from the environment (or a .env file in the working directory);
/// `ragd config check` shows what is in effect.
#[derive(Debug, Parser)]
#[command(name = "ragd", version, about, long_about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API, the web UI and the docs (the default).
    Serve,
    /// Create or update the database schema, then exit.
    Migrate,
    /// Exit 0 when the ragd at HOST:PORT answers /health (for container health checks).
    Healthcheck,
    /// Ingest files (or directories) for a user through the same pipeline as uploads, with a
    /// progress bar and a summary of failures; exits non-zero when any file failed.
    Ingest {
        /// Files or directories to ingest.
        #[arg(required = true)]
        paths: Vec<std::path::PathBuf>,
        /// The owner's email (the account must exist).
        #[arg(long)]
        user: String,
        /// Descend into subdirectories.
        #[arg(long, short)]
        recursive: bool,
    },
    /// Manage accounts (no server needed; works on the configured database).
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Inspect the configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate the configuration and print the effective values, secrets redacted.
    Check,
    /// Print a commented .env.example with every variable, its meaning and default.
    Example,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; the password is read from standard input.
    Create {
        #[arg(long)]
        email: String,
        /// Read the password from standard input (the only way: arguments are visible to
        /// other users in the process list).
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Give the account the `admin` role.
        #[arg(long)]
        admin: bool,
    },
    /// List every account: id, email, role, creation time.
    List,
    /// Delete an account and everything it owns.
    Delete {
        /// The account's email.
        email: String,
    },
}
