//! The benchmark suite of the license cluster (issue 6, DESIGN §9): the pieces behind
//! `scripts/bench` (the processes under test, `wrk`, SQL seeding, the results table; the
//! throwaway PostgreSQL, process handling and the byte-counting proxy come from the
//! workspace's `test-support` crate) and synthetic entities for the criterion micro-benchmarks
//! in `benches/`.

pub mod cluster;
pub mod micro;
pub mod profile;
pub mod report;
pub mod sections;
pub mod seed;
pub mod sessions;
pub mod stats;
pub mod suite;
pub mod synthetic;
pub mod wrk;
