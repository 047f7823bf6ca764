//! A running fleet link, and the Redis client it talks through.

use super::*;

/// A running fleet link. Dropping it stops its tasks (breakers keep working on local rules).
pub struct FleetLink {
    pub(super) shared: Arc<Shared>,
    pub(super) tasks: Vec<JoinHandle<()>>,
}

impl fmt::Debug for FleetLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FleetLink")
            .field("instance", &self.shared.instance)
            .field("status", &self.status())
            .finish()
    }
}

impl FleetLink {
    /// Whether the link is up and what it has done so far.
    pub fn status(&self) -> FleetStatus {
        self.shared.counters.status()
    }

    /// This instance's id, as its messages carry it.
    pub fn instance_id(&self) -> &str {
        &self.shared.instance
    }

    /// Stops the link's tasks now (as dropping it does).
    pub fn stop(self) {}
}

impl Drop for FleetLink {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
        Counters::flag(&self.shared.counters.connected, false);
        Counters::flag(&self.shared.counters.subscribed, false);
    }
}

/// The Redis client for the options' URL: over TLS for `rediss://` (feature `redis-tls`),
/// with the options' certificates if any.
pub(super) fn open_client(options: &FleetOptions) -> Result<redis::Client, FleetError> {
    let url = options.url.as_str();
    let tls_url = url
        .get(..9)
        .is_some_and(|s| s.eq_ignore_ascii_case("rediss://"));
    let certificates = options.tls.root.is_some() || options.tls.client.is_some();
    if certificates && !tls_url {
        return Err(FleetError::Tls(
            "TLS certificates were given for a URL that is not rediss://".to_owned(),
        ));
    }
    if tls_url && !cfg!(feature = "redis-tls") {
        return Err(FleetError::Tls(
            "a rediss:// URL needs hotbreaker's `redis-tls` feature".to_owned(),
        ));
    }
    #[cfg(feature = "redis-tls")]
    if tls_url {
        // rustls needs a process-wide crypto provider: install aws-lc-rs's unless the process
        // already chose one (then that one is used, and this does nothing).
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
        if certificates {
            let tls = redis::TlsCertificates {
                client_tls: options.tls.client.clone().map(|(client_cert, client_key)| {
                    redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }
                }),
                root_cert: options.tls.root.clone(),
            };
            return redis::Client::build_with_tls(url, tls)
                .map_err(|e| FleetError::Tls(format!("{e}")));
        }
    }
    redis::Client::open(url).map_err(|e| FleetError::Url(Box::new(e)))
}
