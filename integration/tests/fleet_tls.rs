//! The fleet link over TLS (`rediss://`, feature `redis-tls`) against a real redis-server
//! listening on TLS only, with a CA and a server certificate made at run time: instances that
//! trust the CA link up and hear each other's trips; one that trusts only the system's roots
//! never connects (the server's certificate is checked). Skipped (loudly) without
//! redis-server, unless `HOTBREAKER_REQUIRE_REDIS=1`.

#[path = "support/fleet.rs"]
mod fleet;
#[path = "support/redis_server.rs"]
mod redis_server;

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use hotbreaker::State;
use hotbreaker::fleet::{Fleet, FleetError, FleetOptions};
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use fleet::{Instance, local_trip};
use redis_server::{binary_or_skip, eventually, free_port};

/// A CA, and a certificate for 127.0.0.1 that it signed: (CA PEM, server PEM, server key PEM).
fn certificates() -> (String, String, String) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    (ca.pem(), server.pem(), server_key.serialize_pem())
}

/// redis-server on TLS only, at `port`, killed on drop.
struct TlsRedis(Child, std::path::PathBuf);

impl Drop for TlsRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn tls_redis(binary: &Path, port: u16, ca: &str, cert: &str, key: &str) -> TlsRedis {
    let dir = std::env::temp_dir().join(format!("hotbreaker-tls-redis-{port}"));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, pem) in [("ca.pem", ca), ("server.pem", cert), ("server.key", key)] {
        std::fs::write(dir.join(name), pem).unwrap();
    }
    let child = Command::new(binary)
        .args(["--port", "0", "--tls-port", &port.to_string()])
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .arg("--tls-cert-file")
        .arg(dir.join("server.pem"))
        .arg("--tls-key-file")
        .arg(dir.join("server.key"))
        .arg("--tls-ca-cert-file")
        .arg(dir.join("ca.pem"))
        .args(["--tls-auth-clients", "no"])
        .arg("--dir")
        .arg(&dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn redis-server");
    let server = TlsRedis(child, dir);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "redis-server (TLS) did not listen in 10 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    server
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fleet_links_over_tls_and_checks_the_server() {
    let Some(binary) = binary_or_skip("a_fleet_links_over_tls_and_checks_the_server") else {
        return;
    };
    let (ca, cert, key) = certificates();
    let port = free_port();
    let _redis = tls_redis(&binary, port, &ca, &cert, &key);
    let url = format!("rediss://127.0.0.1:{port}");
    let a = Instance::new(&url, local_trip(), |o| o.tls_root_certificate(ca.clone()));
    let b = Instance::new(&url, local_trip(), |o| o.tls_root_certificate(ca.clone()));
    // Trusts the system's roots only: the server's certificate is not signed by one of them.
    let stranger = Instance::new(&url, local_trip(), |o| o);
    for i in [&a, &b, &stranger] {
        i.registry.get_or_create("db");
    }
    assert!(
        eventually(15, || a.link.status().up() && b.link.status().up()).await,
        "{:?}",
        a.link.status()
    );
    b.calls("db", 3, true);
    assert!(eventually(10, || a.state("db") == Some(State::Open)).await);
    let s = stranger.link.status();
    assert!(
        eventually(10, || stranger.link.status().flush_errors >= 2).await,
        "{s:?}"
    );
    let s = stranger.link.status();
    assert!(!s.connected && !s.subscribed && s.flushes == 0, "{s:?}");
    assert_eq!(stranger.state("db"), Some(State::Closed));
}

#[test]
fn certificates_without_rediss_or_garbage_are_clear_errors() {
    let e = Fleet::new(
        FleetOptions::new("redis://127.0.0.1:6379", "checkout").tls_root_certificate("x"),
    )
    .unwrap_err();
    assert!(matches!(e, FleetError::Tls(_)), "{e}");
    assert!(e.to_string().contains("not rediss://"), "{e}");
    let e = Fleet::new(
        FleetOptions::new("rediss://127.0.0.1:6379", "checkout")
            .tls_root_certificate("not a certificate"),
    );
    // A root that holds no certificate is refused at once, or leaves the link unable to
    // connect; either way nothing panics.
    if let Err(e) = e {
        assert!(matches!(e, FleetError::Tls(_)), "{e}");
    }
}
