//! `bench-baseline`: the yardstick for the data plane's verify throughput. A bare axum server
//! with one handler, `POST /api/licenses/verify`, that ignores the request and answers a fixed
//! JSON body (the bytes of a real data-plane verify answer, so both send the same amount), on
//! the same tokio runtime and axum version as the data plane. Whatever the data plane is slower
//! by is the cost of its own work: parsing the request, the store lookup, `evaluate`, encoding
//! the answer, its middleware.
//!
//! `bench-baseline --listen 127.0.0.1:8200 --body-file answer.json`; with port 0 it prints the
//! address it got as a JSON line, `{"message":"baseline listening","addr":…}`.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::post;
use clap::Parser;

/// The log line that tells where the baseline listens (field `addr`).
const BASELINE_LISTENING: &str = "baseline listening";

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
    // Where it listens, as the cluster's binaries say it (one JSON line): with `--listen
    // 127.0.0.1:0` the runner learns the port from this line.
    let addr = listener.local_addr().context("the bound address")?;
    println!(
        "{}",
        serde_json::json!({ "message": BASELINE_LISTENING, "addr": addr.to_string() })
    );
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
