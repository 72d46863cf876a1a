//! The tower layer that counts the requests served on the public routes for the usage report
//! (see [`crate::telemetry`]): one relaxed atomic add per request. A plain layer rather than
//! `axum::middleware::from_fn`, which boxes every request's future and clones the handlers'
//! state, work that showed in the verify profile.

use std::sync::Arc;
use std::task::{Context, Poll};

use tower::{Layer, Service};

use crate::link::Link;

/// Wraps a route so that every request to it is counted.
#[derive(Debug, Clone)]
pub struct CountRequests {
    link: Arc<Link>,
}

impl CountRequests {
    pub fn new(link: Arc<Link>) -> Self {
        Self { link }
    }
}

impl<S> Layer<S> for CountRequests {
    type Service = Counted<S>;

    fn layer(&self, inner: S) -> Counted<S> {
        Counted {
            inner,
            link: Arc::clone(&self.link),
        }
    }
}

/// A route whose requests are counted.
#[derive(Debug, Clone)]
pub struct Counted<S> {
    inner: S,
    link: Arc<Link>,
}

impl<S, R> Service<R> for Counted<S>
where
    S: Service<R>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, context: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(context)
    }

    fn call(&mut self, request: R) -> Self::Future {
        self.link.telemetry.count_request();
        self.inner.call(request)
    }
}
