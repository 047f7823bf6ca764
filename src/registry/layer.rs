//! A registry breaker's tower layer (features `http` and `tokio`).

use crate::breaker::Breaker;
use crate::http::HttpClassifier;
use crate::registry::Registry;
use crate::registry::unknown_breaker::UnknownBreaker;
use crate::service::BreakerLayer;

impl Registry {
    /// The tower layer of the breaker `name`, looked up as [`breaker`](Registry::breaker) does
    /// (so a strict registry refuses a name it has no configuration for), over a
    /// [`leak`](Registry::leak)ed `&'static Breaker` (no reference count per call), with the
    /// HTTP classifier (5xx and transport errors fail) and its configuration's `call_timeout`
    /// as each call's deadline; its `failure_statuses` (5xx by default) say which statuses are
    /// Failures. Add `.classify(..)` for another client (reqwest's, tonic's) and
    /// `.fallback(http::Unavailable::new())` to answer rejections with a 503, and
    /// `.telemetry(CallTelemetry::new(name))` (features `tracing`, `metrics`) for a span and a
    /// duration sample per call (see [`telemetry`](crate::telemetry)). Call it once per
    /// name at start-up: the `call_timeout` and `failure_statuses` are those in force then, and each call keeps a
    /// handle of a few bytes alive.
    ///
    /// # Errors
    /// [`UnknownBreaker`] in strict mode, for a name without a configuration.
    ///
    /// # Examples
    /// ```
    /// use hotbreaker::{Registry, http::Unavailable};
    ///
    /// let registry = Registry::from_toml("[breakers.inventory]\ncall_timeout = \"300ms\"")?;
    /// let layer = registry.layer("inventory")?.fallback(Unavailable::new());
    /// # let _ = layer;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn layer(
        &self,
        name: &str,
    ) -> Result<BreakerLayer<&'static Breaker, HttpClassifier>, UnknownBreaker> {
        let config = self.breaker(name)?.config();
        let statuses = config.failure_statuses.unwrap_or_default();
        let timeout = config.call_timeout;
        let layer =
            BreakerLayer::new(self.leak(name)).classify(HttpClassifier::failing_in(statuses));
        Ok(match timeout {
            Some(timeout) => layer.timeout(timeout),
            None => layer,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::time::Duration;

    use tower::{Layer, Service, ServiceExt};

    use crate::error::Error;
    use crate::http::Unavailable;
    use crate::registry::Registry;

    #[tokio::test(start_paused = true)]
    async fn the_layer_takes_the_timeout_from_the_file_and_follows_strict_mode() {
        let registry = Registry::from_toml(
            "strict = true\n[breakers.slow]\ncall_timeout = \"300ms\"\nconsecutive_failures = 1",
        )
        .unwrap();
        assert!(
            registry.layer("slwo").is_err(),
            "strict: a typo is an error"
        );
        let layer = registry.layer("slow").unwrap();
        let hangs = tower::service_fn(|_: ()| async {
            tokio::time::sleep(Duration::from_secs(3_600)).await; // the paused clock jumps
            Ok::<_, Infallible>(http::Response::new(String::new()))
        });
        let mut service = layer.layer(hangs);
        let answer = service.ready().await.unwrap().call(()).await;
        assert!(matches!(answer, Err(Error::Timeout(t)) if t == Duration::from_millis(300)));
        // The timeout was a Failure: the breaker opened, and a fallback answers 503.
        let mut answered = registry
            .layer("slow")
            .unwrap()
            .fallback(Unavailable::new())
            .layer(tower::service_fn(|_: ()| async {
                Ok::<_, Infallible>(http::Response::new(String::from("ok")))
            }));
        let response = answered.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::SERVICE_UNAVAILABLE);
        assert!(response.headers().contains_key("retry-after"));
    }

    #[tokio::test]
    async fn the_layer_takes_the_failure_statuses_from_the_file() {
        let registry = Registry::from_toml(
            "[breakers.limited]\nconsecutive_failures = 1\nfailure_statuses = [\"5xx\", 429]\n\
             [breakers.plain]\nconsecutive_failures = 1",
        )
        .unwrap();
        let answering = |status: u16| {
            tower::service_fn(move |_: ()| async move {
                let mut response = http::Response::new(String::new());
                *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
                Ok::<_, Infallible>(response)
            })
        };
        // The default, 5xx: a 429 is a Success and leaves the breaker Closed.
        let mut plain = registry.layer("plain").unwrap().layer(answering(429));
        plain.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!(registry.get("plain").unwrap().state(), crate::State::Closed);
        // The file's list: a 429 is a Failure and opens it.
        let mut limited = registry.layer("limited").unwrap().layer(answering(429));
        limited.ready().await.unwrap().call(()).await.unwrap();
        assert_eq!(registry.get("limited").unwrap().state(), crate::State::Open);
        let effective = registry.get("plain").unwrap().effective_config();
        assert_eq!(effective.failure_statuses.unwrap().to_string(), "5xx");
    }
}
