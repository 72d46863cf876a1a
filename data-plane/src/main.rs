//! `data-plane` binary: a placeholder until the cluster work lands. Data planes will hold every
//! license in memory, kept in sync by the control plane over mTLS websockets, and answer
//! verify / validate without a database (DESIGN §5-7).

fn main() -> std::process::ExitCode {
    eprintln!(
        "data-plane {}: not implemented yet; run the control plane, which serves \
         POST /api/licenses/verify and /api/licenses/validate from the database",
        env!("CARGO_PKG_VERSION")
    );
    std::process::ExitCode::from(2)
}
