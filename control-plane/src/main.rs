//! `control-plane` binary: parses the command line and hands over to the library.

use control_plane::cli::{Cli, Command, TokensCommand};
use control_plane::{Application, db, shutdown, telemetry, tokens};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_with_default();
    telemetry::init(cli.log_format);
    match cli.command {
        Command::Serve(args) => {
            let app = Application::build(args).await?;
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
    }
}

async fn run_tokens(pool: &sqlx::PgPool, command: TokensCommand) -> anyhow::Result<()> {
    match command {
        TokensCommand::Create { name, read_only } => {
            let created = tokens::create(pool, &name, read_only).await?;
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
