//! `control-plane` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use control_plane::Application;
use control_plane::cli::{Cli, Command, TokensCommand};
use control_plane::db::{self, tokens};
use license_shared::logging::{self, LogTarget};
use license_shared::shutdown;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse_with_default();
    let target = match cli.command {
        Command::Serve(_) => LogTarget::Stdout,
        _ => LogTarget::Stderr,
    };
    logging::init(cli.log_format, target);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "control plane failed");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => {
            let app = Application::build(*args).await?;
            app.run_until_stopped(shutdown::signal()).await
        }
        Command::Migrate(database) => {
            let pool = db::connect(&database).await?;
            db::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Tokens(args) => {
            let pool = db::connect(&args.database).await?;
            db::migrate(&pool).await?;
            run_tokens(&pool, args.command).await
        }
        Command::GenCert(args) => control_plane::gencert::run(&args),
        Command::GenSigningKey(args) => control_plane::signing::generate_key_file(&args),
    }
}

async fn run_tokens(pool: &sqlx::PgPool, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create { name, read_only } => {
            let created = match tokens::create(pool, &name, read_only).await {
                Err(error) if db::violated_constraint(&error).is_some() => {
                    anyhow::bail!("a token named {name:?} already exists")
                }
                other => other?,
            };
            println!("{}", created.token);
            eprintln!(
                "created {} token {:?} (id {}); it is shown only once",
                if read_only { "read-only" } else { "read-write" },
                created.record.name,
                created.record.id
            );
        }
        TokensCommand::List => {
            for token in tokens::list(pool).await? {
                println!(
                    "{}\t{}\t{}\t{}",
                    token.id,
                    token.name,
                    if token.read_only {
                        "read-only"
                    } else {
                        "read-write"
                    },
                    token.created_at.to_rfc3339()
                );
            }
        }
        TokensCommand::Revoke { name } => {
            if tokens::revoke_by_name(pool, &name).await? {
                eprintln!("revoked token {name:?}");
            } else {
                anyhow::bail!("no token named {name:?}");
            }
        }
    }
    Ok(())
}
