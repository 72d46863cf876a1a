//! End-to-end tests of the control plane's HTTP API on a real PostgreSQL. One binary, so one
//! throwaway PostgreSQL server serves every test; each test gets its own database.

mod activations;
mod auth;
mod craft;
mod credentials;
mod customers;
mod database;
mod kong;
mod licenses;
mod products;
mod public;
mod revisions;
