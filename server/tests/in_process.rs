//! The library entry point: `run` on a port-0 listener, stopped by its shutdown future.

mod common;

use ledger_server::Config;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_until_its_shutdown_future_completes() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = Config::new(tmp.path().join("data"));
    config.pbkdf2_iterations = 10_000;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(ledger_server::run(listener, config, async {
        let _ = stopped.await;
    }));
    let a = addr.clone();
    let r = tokio::task::spawn_blocking(move || common::request(&a, "GET", "/health", &[], b""))
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(
        std::net::TcpStream::connect(&addr).is_err(),
        "still accepting after shutdown"
    );
}

#[tokio::test]
async fn run_refuses_a_pbkdf2_count_below_the_minimum() {
    let tmp = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = Config::new(tmp.path().join("data"));
    config.pbkdf2_iterations = 9_999;
    assert!(ledger_server::run(listener, config, async {})
        .await
        .is_err());
}
