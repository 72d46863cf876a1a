//! `data-plane` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use data_plane::DataPlane;
use data_plane::cli::DataPlaneArgs;
use license_shared::logging::{self, LogTarget};
use license_shared::shutdown;

#[tokio::main]
async fn main() -> ExitCode {
    let args = DataPlaneArgs::parse();
    logging::init(args.log_format, LogTarget::Stdout);
    let result = async {
        let data_plane = DataPlane::build(args).await?;
        data_plane.run_until_stopped(shutdown::signal()).await
    };
    match result.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "data plane failed");
            ExitCode::FAILURE
        }
    }
}
