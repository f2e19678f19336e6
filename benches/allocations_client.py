#!/usr/bin/env python3
"""Exact request counts for benches/allocations.sh.

Sends COUNT requests of one kind to percore and reads every response before
it returns, so the allocations counted around it belong to exactly COUNT
requests (or connections). Speed does not matter here: only the server's
allocations are counted.

Usage: allocations_client.py PORT KIND WARM COUNT [SYNC_DIR]

WARM requests of the kind first, on the same connection (connect: WARM
connections); then, with SYNC_DIR, the client creates SYNC_DIR/ready and
waits for SYNC_DIR/go before it sends the COUNT counted requests, so that
the counter sees no connection set-up and no warm-up.

Kinds:
  hit        GET /api/data/client-1 on one keep-alive connection
  miss       GET /api/data/miss-<i>, i cycling over MISS_IDS ids: with the
             server's CACHE_CAPACITY below MISS_IDS every lookup misses
  health     GET /api/health
  metrics    GET /api/metrics
  pipelined  16 requests for /api/data/client-1 sent in one write, then the
             16 responses read (COUNT rounded down to a multiple of 16)
  split      each request written in 3 parts, 5 ms apart (TCP_NODELAY), so
             the server reads it in 3 reads
  connect    COUNT new connections, one request each, closed by the client
  idle       no request: sleeps COUNT ms (the background allocations of an
             idle server over that time)
"""

import os
import socket
import sys
import time

MISS_IDS = 4096
PIPELINE = 16


def request(path):
    return f"GET {path} HTTP/1.1\r\nHost: bench\r\n\r\n".encode()


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


class Reader:
    """Reads whole responses (Content-Length framed) from one connection."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def response(self):
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = self.buf[:end].decode("latin-1")
                status = head.split(" ", 2)[1]
                length = 0
                for line in head.split("\r\n")[1:]:
                    name, _, value = line.partition(":")
                    if name.strip().lower() == "content-length":
                        length = int(value.strip())
                total = end + 4 + length
                if len(self.buf) >= total:
                    self.buf = self.buf[total:]
                    if status != "200":
                        sys.exit(f"unexpected status {status}")
                    return
            chunk = self.sock.recv(65536)
            if not chunk:
                sys.exit("connection closed by the server")
            self.buf += chunk


def sync(sync_dir):
    """Tells the script the warm-up is over; waits until it counts."""
    if sync_dir is None:
        return
    open(os.path.join(sync_dir, "ready"), "w").close()
    while not os.path.exists(os.path.join(sync_dir, "go")):
        time.sleep(0.01)


def connections(port, count):
    for _ in range(count):
        s = connect(port)
        s.sendall(request("/api/data/client-1"))
        Reader(s).response()
        s.close()


def requests(s, r, kind, count, first):
    if kind == "pipelined":
        batch = request("/api/data/client-1") * PIPELINE
        for _ in range(count // PIPELINE):
            s.sendall(batch)
            for _ in range(PIPELINE):
                r.response()
        return
    path = {"hit": "/api/data/client-1", "health": "/api/health",
            "metrics": "/api/metrics", "split": "/api/data/client-1"}
    for i in range(first, first + count):
        if kind == "miss":
            s.sendall(request(f"/api/data/miss-{i % MISS_IDS}"))
        elif kind == "split":
            req = request(path[kind])
            for part in (req[:5], req[5:20], req[20:]):
                s.sendall(part)
                time.sleep(0.005)
        else:
            s.sendall(request(path[kind]))
        r.response()


def main():
    port, kind = int(sys.argv[1]), sys.argv[2]
    warm, count = int(sys.argv[3]), int(sys.argv[4])
    sync_dir = sys.argv[5] if len(sys.argv) > 5 else None
    if kind == "idle":
        sync(sync_dir)
        time.sleep(count / 1000)
    elif kind == "connect":
        connections(port, warm)
        sync(sync_dir)
        connections(port, count)
    else:
        s = connect(port)
        r = Reader(s)
        requests(s, r, kind, max(warm, 1), 0)
        sync(sync_dir)
        requests(s, r, kind, count, warm)
        s.close()


if __name__ == "__main__":
    main()
