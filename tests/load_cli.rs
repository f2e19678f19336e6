//! The `percore-load` binary as a user meets it: help for every subcommand,
//! exit code 2 on bad usage and on an unreachable server (with a message),
//! 0 against a healthy server with a JSON report, 99 against one made slow;
//! `max` on both engines counts what the server counts, and so does `seed`
//! while another client probes `/api/health` and scrapes the metrics.

mod common;

use common::{Client, Server};

use std::net::TcpListener;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const SUBCOMMANDS: [&str; 8] = [
    "seed", "health", "rate", "max", "stages", "sweep", "soak", "recovery",
];

fn load(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_percore-load"))
        .args(args)
        .env_remove("PERCORE_URL")
        .output()
        .expect("cannot run percore-load")
}

#[test]
fn every_subcommand_has_help() {
    for sub in SUBCOMMANDS {
        let out = load(&[sub, "--help"]);
        assert!(out.status.success(), "{sub} --help");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("--url"), "{sub} --help lists --url:\n{text}");
        assert!(text.contains("--max-p95-ms"), "{sub} --help lists criteria");
        assert_eq!(
            text.contains("--half-tolerance-ms"),
            sub == "health",
            "{sub} --help: the half tolerance is health's own flag"
        );
    }
}

#[test]
fn bad_usage_exits_2() {
    assert_eq!(load(&["seed", "--clients", "many"]).status.code(), Some(2));
    assert_eq!(load(&["nonsense"]).status.code(), Some(2));
    let out = load(&["rate", "--rate", "0", "--url", "http://127.0.0.1:9"]);
    assert_eq!(out.status.code(), Some(2));
    let out = load(&["seed", "--url", "ftp://x"]);
    assert_eq!(out.status.code(), Some(2));
    let out = load(&["health", "--half-tolerance-ms", "x"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn unreachable_server_exits_2_with_a_message() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let url = format!("http://127.0.0.1:{port}");
    let out = load(&["seed", "--url", &url, "--duration", "1s"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unreachable"), "{err}");
}

#[test]
fn healthy_server_exits_0_with_json_and_html() {
    let server = Server::start(&[], &[]);
    let dir = std::env::temp_dir().join(format!("percore-load-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (json, html) = (dir.join("r.json"), dir.join("r.html"));
    let url = format!("http://{}", server.addr());
    let out = load(&[
        "seed",
        "--url",
        &url,
        "--clients",
        "20",
        "--duration",
        "3s",
        "--json",
        json.to_str().expect("utf-8 path"),
        "--html",
        html.to_str().expect("utf-8 path"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("RESULT: PASS"), "{stdout}");
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json written")).expect("valid json");
    let requests = v["summary"]["requests"].as_u64().expect("summary.requests");
    assert!(requests > 0);
    assert_eq!(
        v["server_count"]["server_requests"].as_u64(),
        Some(requests)
    );
    assert!(v["timeline"].as_array().is_some_and(|t| t.len() == 3));
    assert!(v["server"].as_array().is_some_and(|s| !s.is_empty()));
    assert!(v["criteria"].as_array().is_some_and(|c| !c.is_empty()));
    let page = std::fs::read_to_string(&html).expect("html written");
    assert!(page.matches("<svg").count() >= 5, "five charts");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn slow_server_exits_99() {
    let server = Server::start(&[("CACHE_TTL_MS", "0"), ("ORIGIN_DELAY_MS", "600")], &[]);
    let url = format!("http://{}", server.addr());
    let out = load(&["seed", "--url", &url, "--clients", "20", "--duration", "3s"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(99), "{stdout}");
    assert!(stdout.contains("FAIL"), "{stdout}");
}

#[test]
fn max_agrees_with_the_server_count_on_both_engines() {
    let server = Server::start(&[], &[]);
    let url = format!("http://{}", server.addr());
    let dir = std::env::temp_dir().join(format!("percore-load-max-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for engine in ["epoll", "glommio"] {
        let json = dir.join(format!("{engine}.json"));
        let out = load(&[
            "max",
            "--url",
            &url,
            "--engine",
            engine,
            "--connections",
            "20",
            "--duration",
            "2s",
            "--json",
            json.to_str().expect("utf-8 path"),
        ]);
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{engine}: {stdout}");
        assert!(stdout.contains(&format!("({engine} engine)")), "{stdout}");
        let v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid json");
        let requests = v["summary"]["requests"].as_u64().expect("summary.requests");
        assert!(requests > 1000, "{engine}: {requests} requests");
        assert_eq!(v["summary"]["errors"].as_u64(), Some(0), "{engine}");
        assert_eq!(
            v["server_count"]["server_requests"].as_u64(),
            Some(requests),
            "{engine}: every request the server counted, and no other"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Health probes and metrics scrapes from another client during the run (a
/// container's HEALTHCHECK, a Prometheus scrape) land in the server's
/// `requests.total` but not in its data count: the run's count check, made
/// on `requests.byRoute.data`, still agrees.
#[test]
fn seed_count_agrees_while_another_client_probes_health() {
    let server = Server::start(&[], &[]);
    let addr = server.addr();
    let url = format!("http://{addr}");
    let stop = Arc::new(AtomicBool::new(false));
    let prober = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut client = Client::connect(addr);
            let mut sent = 0u32;
            // Bounded: the run lasts about 2 s; 20 ms apart, 500 is 10 s.
            while !stop.load(Ordering::Relaxed) && sent < 500 {
                let path =
                    ["/api/health", "/metrics", "/api/health", "/dashboard"][sent as usize % 4];
                assert_eq!(client.get(path).status, 200, "{path}");
                sent += 1;
                thread::sleep(Duration::from_millis(20));
            }
            sent
        })
    };
    let dir = std::env::temp_dir().join(format!("percore-load-probed-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("r.json");
    let out = load(&[
        "seed",
        "--url",
        &url,
        "--clients",
        "10",
        "--duration",
        "2s",
        "--json",
        json.to_str().expect("utf-8 path"),
    ]);
    stop.store(true, Ordering::Relaxed);
    let probes = prober.join().expect("prober");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        probes >= 50,
        "the prober ran through the run: {probes} requests"
    );
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&json).expect("json")).expect("valid json");
    let requests = v["summary"]["requests"].as_u64().expect("summary.requests");
    assert!(requests > 0);
    assert_eq!(
        v["server_count"]["server_requests"].as_u64(),
        Some(requests),
        "{stdout}"
    );
    assert_eq!(v["server_count"]["agrees"], true);
    assert_eq!(v["server_count"]["counter"], "requests.byRoute.data delta");
    assert!(
        stdout.contains("(requests.byRoute.data delta): agrees"),
        "{stdout}"
    );
    // The probes were counted, in their own classes.
    let metrics = Client::connect(addr).get("/api/metrics").json();
    let by_route = &metrics["requests"]["byRoute"];
    assert!(
        by_route["health"].as_u64().unwrap_or(0) >= u64::from(probes / 2),
        "{by_route}"
    );
    assert!(
        by_route["other"].as_u64().unwrap_or(0) >= u64::from(probes / 4),
        "{by_route}"
    );
    let sum: u64 = ["data", "health", "metrics", "other"]
        .iter()
        .map(|k| by_route[*k].as_u64().expect("every class"))
        .sum();
    assert_eq!(
        Some(sum),
        metrics["requests"]["total"].as_u64(),
        "{by_route}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
