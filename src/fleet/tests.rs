use super::*;

#[test]
fn options_are_checked_with_clear_errors() {
    let bad = Fleet::new(FleetOptions::new("not a url", "checkout")).unwrap_err();
    assert!(bad.to_string().contains("invalid Redis URL"), "{bad}");
    for prefix in ["", "a{b", "a b", "x|y"] {
        let e = Fleet::new(FleetOptions::new("redis://127.0.0.1:1", prefix)).unwrap_err();
        assert!(matches!(e, FleetError::Prefix(_)), "{prefix:?}: {e}");
    }
    let e = Fleet::new(FleetOptions::new("redis://127.0.0.1:1", "checkout").instance_id("a b"))
        .unwrap_err();
    assert!(e.to_string().contains("instance name"), "{e}");
    let f = Fleet::new(FleetOptions::new("redis://127.0.0.1:1", "checkout")).unwrap();
    assert_eq!(f.instance_id().len(), 16 + 1 + 8);
    let e = f.start(Arc::new(Registry::default())).unwrap_err();
    assert!(matches!(e, FleetError::NoRuntime));
    let long = "n".repeat(56);
    let e = Fleet::new(FleetOptions::new("redis://127.0.0.1:1", "c").instance_id(long));
    assert!(matches!(e, Err(FleetError::InstanceId(_))));
}

#[test]
fn keys_are_checked_with_clear_errors() {
    let base = || FleetOptions::new("redis://127.0.0.1:1", "checkout");
    let e = Fleet::new(base().signing_key(vec![1; 31])).unwrap_err();
    assert!(matches!(e, FleetError::Key(_)), "{e}");
    assert!(e.to_string().contains("at least 32"), "{e}");
    let e = Fleet::new(base().signing_key(vec![1; 32]).accept_key("short")).unwrap_err();
    assert!(matches!(e, FleetError::Key(_)), "{e}");
    let e = Fleet::new(base().accept_key(vec![1; 32])).unwrap_err();
    assert!(e.to_string().contains("needs a signing_key"), "{e}");
    assert!(Fleet::new(base().signing_key(vec![1; 32]).accept_key(vec![2; 40])).is_ok());
    let e = base()
        .signing_key_from_env("HOTBREAKER_TEST_KEY_THAT_IS_NEVER_SET")
        .unwrap_err();
    assert!(e.to_string().contains("is not set"), "{e}");
    // A variable every test environment has: its text becomes the key.
    let path = std::env::var("PATH").unwrap_or_default();
    if let Ok(options) = base().signing_key_from_env("PATH") {
        assert_eq!(options.signing_key.map(|k| k.len()), Some(path.len()));
    }
    let shown = format!(
        "{:?}",
        base().signing_key("a secret key of thirty-two bytes!")
    );
    assert!(!shown.contains("secret"), "{shown}");
}

#[test]
fn a_tls_url_needs_its_feature() {
    let r = Fleet::new(FleetOptions::new("rediss://127.0.0.1:1", "checkout"));
    if cfg!(feature = "redis-tls") {
        assert!(r.is_ok(), "{r:?}");
    } else {
        let e = r.unwrap_err();
        assert!(matches!(e, FleetError::Tls(_)), "{e}");
        assert!(e.to_string().contains("`redis-tls` feature"), "{e}");
    }
}

/// A fixed name is suffixed at each start: a restarted instance (generations from 0 again)
/// is a new sender, and two instances given one name by mistake are two.
#[test]
fn a_fixed_name_is_a_new_sender_at_each_start() {
    let options = FleetOptions::new("redis://127.0.0.1:1", "checkout").instance_id("web-1");
    let (a, b) = (
        Fleet::new(options.clone()).unwrap(),
        Fleet::new(options).unwrap(),
    );
    for f in [&a, &b] {
        assert!(f.instance_id().starts_with("web-1."), "{}", f.instance_id());
        assert!(message::valid_instance(f.instance_id()));
    }
    assert_ne!(a.instance_id(), b.instance_id());
    let max = FleetOptions::new("redis://127.0.0.1:1", "c").instance_id("n".repeat(55));
    assert!(message::valid_instance(
        Fleet::new(max).unwrap().instance_id()
    ));
}

/// A registry serves one link, the one whose `watch` returned it: anything else is an
/// error at start, not a link that publishes nothing.
#[test]
fn a_registry_serves_one_link() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _entered = runtime.enter();
    let options = FleetOptions::new("redis://127.0.0.1:1", "checkout");
    let (first, second) = (
        Fleet::new(options.clone()).unwrap(),
        Fleet::new(options.clone()).unwrap(),
    );
    let registry = Arc::new(first.watch(Registry::default()));
    let e = second.start(registry.clone()).unwrap_err();
    assert!(e.to_string().contains("watch()"), "{e}");
    let link = first.start(registry.clone()).expect("its own registry");
    // A second link that watched the same registry after the first: refused.
    let third = Fleet::new(options).unwrap();
    let e = third.start(registry.clone()).unwrap_err();
    assert!(matches!(e, FleetError::Registry(_)), "{e}");
    drop(link);
    let unwatched = Fleet::new(FleetOptions::new("redis://127.0.0.1:1", "c")).unwrap();
    let e = unwatched.start(Arc::new(Registry::default())).unwrap_err();
    assert!(matches!(e, FleetError::Registry(_)), "{e}");
}

#[test]
fn backoff_doubles_to_its_cap() {
    let max = Duration::from_secs(2);
    assert_eq!(backoff(1, max), Duration::from_millis(50));
    assert_eq!(backoff(3, max), Duration::from_millis(200));
    assert_eq!(backoff(40, max), max);
    assert_eq!(backoff(0, max), Duration::from_millis(50));
    assert_eq!(backoff(u32::MAX, max), max);
}

#[test]
fn rules_by_name_fall_back_to_the_default() {
    let named = FleetRule::failure_rate(0.2);
    let o = FleetOptions::new("redis://x", "checkout").rule("db", named);
    assert_eq!(o.rule_for("db"), Some(named));
    assert_eq!(o.rule_for("cache"), None);
    let d = FleetRule::failure_rate(0.9);
    let o = o.default_rule(d);
    assert_eq!(o.rule_for("cache"), Some(d));
    assert_eq!(o.channel(), "checkout:events");
    assert_eq!(o.members_key(), "checkout:instances");
}
