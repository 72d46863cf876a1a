//! Test support for the end-to-end tests: a real PostgreSQL ([`pg`]), a real control plane
//! started in-process ([`app`]), and a cuttable TCP link to the database ([`proxy`]).

pub mod app;
pub mod pg;
pub mod proxy;
