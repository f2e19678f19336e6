#!/usr/bin/env python3
"""Loads percore's /dashboard in headless Chromium under load and checks that
the figures the page shows match /api/metrics and the load that was sent.

Python standard library only. Chromium is driven through the DevTools
protocol over a pipe (--remote-debugging-pipe: JSON messages ended by NUL on
fds 3 and 4), so the page runs in real time: --dump-dom with
--virtual-time-budget would fast-forward the page's one-second polling
timers and measure rates over milliseconds.

  scripts/dashboard_browser.py                          # the check (CI)
  scripts/dashboard_browser.py --screenshot docs/dashboard.png
                                                        # a picture under a healthy load
  scripts/dashboard_browser.py --cost --seconds 30      # what 0, 1, 10 open pages cost

The check runs the server with every request a cache miss that waits 20 ms
(--cache-ttl-ms 0 --origin-delay-ms 20), an open-loop load of 200 requests/s
and 50 requests for an unknown path, so every figure has a known value:
about 200 requests/s split over the shards, latency percentiles near 20 ms,
a hit rate of 0 % (red badge), errors well above 0.1 % (red badge), p95 and
p99 under their limits (green badges). Then it stops the server (the page
must say so) and starts a new one on the same port (the page must resume).
"""

import argparse
import base64
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request


# ---- the DevTools protocol over a pipe ------------------------------------


class Browser:
    """A headless Chromium with one page, driven over --remote-debugging-pipe."""

    def __init__(self, chromium, width, height):
        self.profile = tempfile.mkdtemp(prefix="percore-chromium-")
        cmd_read, self.cmd_write = os.pipe()  # we write; Chromium reads fd 3
        self.events_read, events_write = os.pipe()  # Chromium writes fd 4
        args = [
            chromium,
            "--headless",
            "--remote-debugging-pipe",
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-gpu",
            "--disable-extensions",
            "--hide-scrollbars",
            "--user-data-dir=" + self.profile,
            f"--window-size={width},{height}",
            "about:blank",
        ]
        if os.geteuid() == 0:
            args.insert(1, "--no-sandbox")  # Chromium refuses to sandbox as root

        def wire_fds():
            # Moved above 9 first: dup2 onto the fd itself would keep its
            # close-on-exec flag, and one pipe may already sit on 3 or 4.
            high_read = fcntl.fcntl(cmd_read, fcntl.F_DUPFD, 10)
            high_write = fcntl.fcntl(events_write, fcntl.F_DUPFD, 10)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.proc = subprocess.Popen(
            args,
            preexec_fn=wire_fds,
            close_fds=False,  # our other fds are close-on-exec (PEP 446)
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(cmd_read)
        os.close(events_write)
        self.messages = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.next_id = 0
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call(
            "Target.attachToTarget", {"targetId": target, "flatten": True}
        )["sessionId"]
        self.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            self.session,
        )

    def _read(self):
        buf = b""
        while True:
            chunk = os.read(self.events_read, 1 << 16)
            if not chunk:
                self.messages.put(None)
                return
            buf += chunk
            while b"\0" in buf:
                msg, buf = buf.split(b"\0", 1)
                self.messages.put(json.loads(msg))

    def call(self, method, params=None, session=None, timeout_s=30):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.cmd_write, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no answer to {method} within {timeout_s} s")
            reply = self.messages.get(timeout=left)
            if reply is None:
                raise RuntimeError("Chromium closed its DevTools pipe")
            if reply.get("id") == self.next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})

    def goto(self, url):
        self.call("Page.navigate", {"url": url}, self.session)

    def eval(self, expression):
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True},
            self.session,
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"page error: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path):
        data = self.call("Page.captureScreenshot", {"format": "png"}, self.session)
        with open(path, "wb") as f:
            f.write(base64.b64decode(data["data"]))

    def close(self):
        try:
            self.call("Browser.close", timeout_s=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# What the page shows: every element with a raw value in data-v (figures,
# badges), plus the badges' verdicts and the state and banner texts.
PAGE_STATE = """JSON.stringify({
  values: Object.fromEntries([...document.querySelectorAll('[data-v]')]
    .map(e => [e.id, e.dataset.v === '' ? null : Number(e.dataset.v)])),
  pass: Object.fromEntries([...document.querySelectorAll('.badge')]
    .map(e => [e.id, e.dataset.pass])),
  state: document.getElementById('state').textContent,
  banner: document.getElementById('banner').hidden ? '' :
          document.getElementById('banner').textContent,
})"""


def page_state(browser):
    return json.loads(browser.eval(PAGE_STATE))


# ---- the server and the load ------------------------------------------------


class Server:
    def __init__(self, bin_dir, port, args):
        self.proc = subprocess.Popen(
            [os.path.join(bin_dir, "percore"), "--host", "127.0.0.1", "--port", str(port)]
            + args,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        deadline = time.monotonic() + 10
        self.addr = None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening addr=(\S+)", line)
            if m:
                self.addr = m.group(1)
                break
        if not self.addr:
            self.proc.kill()
            raise RuntimeError("percore did not start")
        # Keep draining its output so it never blocks on a full pipe.
        threading.Thread(target=self.proc.stdout.read, daemon=True).start()
        self.port = int(self.addr.rsplit(":", 1)[1])
        self.url = "http://" + self.addr

    def get(self, path):
        try:
            with urllib.request.urlopen(self.url + path, timeout=5) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def metrics(self):
        status, body = self.get("/api/metrics")
        assert status == 200, f"/api/metrics answered {status}"
        return json.loads(body)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=30)

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def wait_for(what, predicate, timeout_s, browser):
    deadline = time.monotonic() + timeout_s
    state = None
    while time.monotonic() < deadline:
        try:
            state = page_state(browser)
        except RuntimeError as e:  # the page is still loading
            state = str(e)
            time.sleep(0.25)
            continue
        if predicate(state):
            return state
        time.sleep(0.25)
    raise AssertionError(f"page never showed {what} within {timeout_s} s; last state: {state}")


# ---- checks -------------------------------------------------------------------

failures = []


def check(ok, what):
    print(("ok   " if ok else "FAIL ") + what)
    if not ok:
        failures.append(what)


def near(actual, expected, rel, absolute=0.0):
    return actual is not None and abs(actual - expected) <= max(rel * abs(expected), absolute)


def cpu_seconds(m):
    return m["cpu"]["userSeconds"] + m["cpu"]["systemSeconds"]


def run_check(args, chromium):
    rate, window_s, not_found = 200, 8, 50
    server = Server(args.bin, 0, ["--workers", "2", "--cache-ttl-ms", "0", "--origin-delay-ms", "20"])
    browser = Browser(chromium, 1280, 1500)
    load = None
    try:
        status, page = server.get("/dashboard")
        check(status == 200 and page.startswith(b"<!doctype html>"), "GET /dashboard is the page")
        browser.goto(f"{server.url}/dashboard?window={window_s}")
        wait_for("two readings", lambda s: s["values"].get("badge-p95") is not None, 10, browser)

        load_json = os.path.join(tempfile.gettempdir(), f"percore-dashboard-load-{os.getpid()}.json")
        load = subprocess.Popen(
            [os.path.join(args.bin, "percore-load"), "rate", "--url", server.url,
             "--rate", str(rate), "--connections", "20", "--duration", "20s",
             "--no-server-metrics", "--json", load_json],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        # The page's window (window_s) lies wholly inside the load, and
        # holds the 404s.
        time.sleep(5)
        before = server.metrics()
        time.sleep(1)
        for _ in range(not_found):
            server.get("/nope")
        time.sleep(window_s - 1)
        page = page_state(browser)
        after = server.metrics()
        dt = after["process"]["uptime"] - before["process"]["uptime"]
        v, passes = page["values"], page["pass"]
        print(json.dumps(page, indent=1, sort_keys=True))

        # Requests/s: the load's rate (plus the page's and this script's own
        # polls), split over the shards, and what /api/metrics counted.
        server_rps = (after["requests"]["total"] - before["requests"]["total"]) / dt
        check(near(v.get("rps-window"), rate, 0.15, 5), f"window req/s {v.get('rps-window')} ≈ {rate}")
        check(near(v.get("rps-window"), server_rps, 0.1, 5),
              f"window req/s {v.get('rps-window')} ≈ /api/metrics over the same time {server_rps:.1f}")
        shard_sum = sum(x for k, x in v.items() if k.startswith("shard-rps-") and x is not None)
        check(near(shard_sum, v.get("rps-window") or 0, 0.02, 1), f"shards' req/s sum to the total ({shard_sum:.1f})")
        check(len([k for k in v if k.startswith("shard-restarts-")]) == 2, "two shards listed")
        check(all(v[k] == 0 for k in v if k.startswith("shard-restarts-")), "no restarts")

        # Latency: every data request waits 20 ms on the origin.
        for key in ["badge-p95", "badge-p99"]:
            check(v.get(key) is not None and 19 <= v[key] <= 40, f"{key} {v.get(key)} ms is the 20 ms origin delay")
        check(v.get("lat-p50") is not None and 19 <= v["lat-p50"] <= 30, f"p50 of the last second {v.get('lat-p50')} ms ≈ 20")
        check(passes.get("badge-p95") == "true" and passes.get("badge-p99") == "true", "p95, p99 badges green")

        # Cache: every request is a miss.
        check(v.get("badge-hit") == 0 and passes.get("badge-hit") == "false", "hit rate 0 %, badge red")
        check(v.get("hit-all") == 100 * after["cache"]["hitRate"], "hit rate since start = /api/metrics cache.hitRate")

        # Status: the 404s are errors, counted exactly.
        check(v.get("status-total-404") == not_found == after["requests"]["byStatus"].get("404"),
              f"404s since start {v.get('status-total-404')} = sent {not_found} = /api/metrics")
        check(v.get("status-win-404") == not_found, "the 404s are in the window")
        expected_pct = 100 * not_found / ((v.get("rps-window") or 1) * window_s)
        check(near(v.get("badge-errors"), expected_pct, 0.2),
              f"errors {v.get('badge-errors')} % ≈ 404s / responses in the window {expected_pct:.2f} %")
        check(passes.get("badge-errors") == "false", "errors badge red")
        check(v.get("status-total-all") <= after["requests"]["total"]
              and v.get("status-total-all") >= before["requests"]["total"], "total responses between two /api/metrics readings")

        # Resources: the same figures as /api/metrics.
        check(v.get("fds-limit") == after["fds"]["limit"], "fd limit = /api/metrics fds.limit")
        check(near(v.get("fds"), after["fds"]["open"], 0, 6), f"open fds {v.get('fds')} ≈ {after['fds']['open']}")
        check(near(v.get("rss"), after["memory"]["rss"], 0.1), f"RSS {v.get('rss')} ≈ {after['memory']['rss']}")
        check(near(v.get("conns"), after["connections"]["active"], 0, 3),
              f"connections {v.get('conns')} ≈ {after['connections']['active']}")
        server_cpu = 100 * (cpu_seconds(after) - cpu_seconds(before)) / dt
        check(near(v.get("badge-cpu"), server_cpu, 0.3, 5),
              f"window CPU {v.get('badge-cpu')} % ≈ /api/metrics over the same time {server_cpu:.1f} % (100 % = one core)")
        # Steal: per second, so only its presence and range can be checked.
        check("stealSeconds" in after.get("machine", {}) and v.get("steal") is not None
              and 0 <= v["steal"] <= 100,
              f"steal {v.get('steal')} % of the machine shown, from /api/metrics machine")
        check(v.get("server") == after["process"]["pid"], "pid shown")
        check(page["state"] == "live" and page["banner"] == "", "live, no banner")
        load.wait(timeout=30)
        with open(load_json) as f:
            sent = json.load(f)
        os.unlink(load_json)
        print(f"load: {json.dumps(sent.get('summary', sent))[:300]}")

        # The server goes away: the page says so, then resumes with a new one.
        port = server.port
        check(server.stop() == 0, "server drained and exited 0")
        state = wait_for("a failure message", lambda s: s["state"] != "live" and s["banner"] != "", 5, browser)
        print(f"after SIGTERM: {state['state']}: {state['banner']}")
        check(state["state"] in ("draining", "unreachable"), f"state says {state['state']}")
        server = Server(args.bin, port, ["--workers", "2"])
        state = wait_for("the new server", lambda s: s["state"] == "live" and s["values"].get("server") == server.proc.pid, 6, browser)
        check("restarted" in state["banner"], f"banner after resuming: {state['banner']}")
    finally:
        if load and load.poll() is None:
            load.kill()
        browser.close()
        server.kill()


def run_screenshot(args, chromium):
    """A picture of the page under the seed's kind of load (healthy figures)."""
    server = Server(args.bin, 0, ["--workers", "2"])
    browser = Browser(chromium, 1400, 1240)
    load = None
    try:
        browser.goto(f"{server.url}/dashboard?span=120")
        load = subprocess.Popen(
            [os.path.join(args.bin, "percore-load"), "stages", "--url", server.url,
             "--stages", "30s:100,60s:100,30s:300", "--think", "20ms", "--no-server-metrics"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        time.sleep(args.seconds)
        browser.screenshot(args.screenshot)
        print(json.dumps(page_state(browser), indent=1, sort_keys=True))
        print("wrote", args.screenshot)
    finally:
        if load and load.poll() is None:
            load.kill()
        browser.close()
        server.kill()


def server_cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cost(args, chromium):
    """What open dashboards cost an otherwise idle server: phases of
    args.seconds with 0, 1 and 10 pages open, alternating, twice. The server
    CPU comes from /proc (no request of its own); the metrics requests are
    counted from /api/metrics before and after each phase (those two
    readings are subtracted)."""
    server = Server(args.bin, 0, ["--workers", "2"])
    browser = Browser(chromium, 1280, 1500)
    pages = []
    try:
        print(f"{'dashboards':>10} {'seconds':>8} {'metrics req/s':>14} {'server CPU %':>13} "
              f"{'CPU ms per metrics request':>27}")
        for count in [0, 1, 10, 0, 1, 10]:
            while len(pages) < count:
                pages.append(browser.call("Target.createTarget", {"url": server.url + "/dashboard"})["targetId"])
            while len(pages) > count:
                browser.call("Target.closeTarget", {"targetId": pages.pop()})
            time.sleep(3)  # pages loaded and polling
            m0 = server.metrics()
            c0, t0 = server_cpu_seconds(server.proc.pid), time.monotonic()
            time.sleep(args.seconds)
            c1, t1 = server_cpu_seconds(server.proc.pid), time.monotonic()
            m1 = server.metrics()
            dt = t1 - t0
            metrics_rps = (m1["requests"]["total"] - m0["requests"]["total"] - 1) / dt
            cpu_pct = 100 * (c1 - c0) / dt
            per = f"{1000 * (c1 - c0) / (metrics_rps * dt):.2f}" if metrics_rps > 0.5 else "-"
            print(f"{count:>10} {dt:>8.1f} {metrics_rps:>14.2f} {cpu_pct:>13.2f} {per:>27}")
    finally:
        browser.close()
        server.kill()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--bin", default=os.path.join(here, "..", "target", "release"),
                   help="directory holding percore and percore-load")
    p.add_argument("--chromium", default=None, help="Chromium binary (default: chromium on PATH)")
    p.add_argument("--screenshot", help="write a PNG of the page under load instead of checking")
    p.add_argument("--seconds", type=float, default=100,
                   help="load time before the screenshot; with --cost, seconds per phase")
    p.add_argument("--cost", action="store_true",
                   help="measure what 0, 1 and 10 open dashboards cost an idle server")
    args = p.parse_args()
    chromium = args.chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        sys.exit("chromium not found (Debian: apt-get install chromium)")
    if args.screenshot:
        run_screenshot(args, chromium)
        return
    if args.cost:
        run_cost(args, chromium)
        return
    run_check(args, chromium)
    if failures:
        print(f"{len(failures)} check(s) failed")
        sys.exit(1)
    print("dashboard: every check passed")


if __name__ == "__main__":
    main()
