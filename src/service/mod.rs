//! tower middleware (feature `tower`): [`BreakerLayer`] and [`BreakerService`].
//!
//! `BreakerService::call` asks the breaker for a permit. Rejected, it answers at once with
//! [`Error::Rejected`](crate::Error::Rejected) (carrying `retry_after`) or with the layer's
//! [fallback](BreakerLayer::fallback); let through, it calls the inner service and returns a
//! future that classifies the response when it completes and records the outcome. Dropping that
//! future records nothing (a cancelled request is not a Failure) and gives a half-open slot back.
//! No `Box`, no lock, no allocation per call beyond what the inner service does.
//!
//! ```
//! use std::sync::Arc;
//! use hotbreaker::{Breaker, service::BreakerLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let breaker = Arc::new(Breaker::builder().build().unwrap());
//! let mut service = ServiceBuilder::new()
//!     .layer(BreakerLayer::new(breaker.clone()))
//!     .service(service_fn(|n: u32| async move { Ok::<_, std::io::Error>(n * 2) }));
//! assert_eq!(service.ready().await.unwrap().call(21).await.unwrap(), 42);
//! assert_eq!(breaker.metrics().successes, 1);
//! # }
//! ```

mod fallback;
mod layer;
mod response;

pub use fallback::{Fallback, NoFallback};
pub use layer::{BreakerLayer, BreakerService};
pub use response::ResponseFuture;
