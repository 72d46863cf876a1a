//! `bench-baseline`: the yardstick for the data plane's verify throughput. A bare axum server
//! with one handler, `POST /api/licenses/verify`, that ignores the request and answers a fixed
//! JSON body (the bytes of a real data-plane verify answer, so both send the same amount), on
//! the same tokio runtime and axum version as the data plane. Whatever the data plane is slower
//! by is the cost of its own work: parsing the request, the store lookup, `evaluate`, encoding
//! the answer, its middleware.
//!
//! `bench-baseline --listen 127.0.0.1:8200 --body-file answer.json`

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::post;
use clap::Parser;

/// Command line.
#[derive(Debug, Parser)]
#[command(about = "Bare axum server answering fixed JSON, the verify-throughput baseline")]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8200")]
    listen: SocketAddr,
    /// File holding the JSON answer.
    #[arg(long)]
    body_file: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let body = Bytes::from(
        std::fs::read(&args.body_file)
            .with_context(|| format!("reading {}", args.body_file.display()))?,
    );
    let app = Router::new().route(
        "/api/licenses/verify",
        post(move || {
            let body = body.clone();
            async move { ([(CONTENT_TYPE, "application/json")], body).into_response() }
        }),
    );
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let mut terminate =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = async {
                    match terminate.as_mut() {
                        Some(signal) => { signal.recv().await; }
                        None => std::future::pending::<()>().await,
                    }
                } => {}
            }
        })
        .await?;
    Ok(())
}
