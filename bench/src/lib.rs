//! The benchmark suite of the license cluster (issue 6, DESIGN §9): the pieces behind
//! `scripts/bench` (a throwaway PostgreSQL, the processes under test, `wrk`, a byte-counting
//! proxy, SQL seeding, the results table) and synthetic entities for the criterion
//! micro-benchmarks in `benches/`.

pub mod cluster;
pub mod micro;
pub mod pg;
pub mod process;
pub mod profile;
pub mod proxy;
pub mod report;
pub mod seed;
pub mod stats;
pub mod suite;
pub mod synthetic;
pub mod wrk;
