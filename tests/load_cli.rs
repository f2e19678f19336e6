//! The `percore-load` binary as a user meets it: help for every subcommand,
//! exit code 2 on bad usage and on an unreachable server (with a message),
//! 0 against a healthy server with a JSON report, 99 against one made slow;
//! `max` on both engines counts what the server counts.

mod common;

use common::Server;

use std::net::TcpListener;
use std::process::{Command, Output};

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
