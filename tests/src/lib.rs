//! Test support for the end-to-end tests: a real PostgreSQL ([`pg`]), a real control plane
//! started in-process ([`app`]), a cuttable TCP link to the database ([`proxy`]), and real
//! control-plane and data-plane processes over mTLS ([`process`], [`cluster`]), and a
//! LicenseSpring client that signs requests as the SDKs do ([`licensespring`]).

pub mod app;
pub mod cluster;
pub mod data_plane;
pub mod licensespring;
pub mod pg;
pub mod process;
pub mod proxy;
