#!/usr/bin/env python3
"""Differential check of request framing: percore against h11, an independent
strict HTTP/1.1 parser (PyPI `h11`, >= 0.16, which checks the CRLF after chunk
data).

For each case (the seed corpus, then streams generated from a fixed seed) both
parsers say where each request of the stream ends and how the stream ends.
A **framing disagreement** -- a request both accept but end at different
offsets -- fails the check (exit 1). Accept/reject differences are counted by
kind and printed with an example each; README ("Fuzzing") lists the kinds that
are by design, with the RFC section that makes percore's answer right.

Usage: differential.py PATH_TO_FRAME_BINARY [CASES]   (binary: examples/frame.rs)
"""
import collections
import pathlib
import random
import struct
import subprocess
import sys

import h11

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_HEAD_BYTES = 2048  # percore::fuzz::LIMITS.max_head_bytes


def h11_outcome(data):
    """(request ends, end) as h11 reads the stream, one fresh connection per request."""
    ends, off = [], 0
    while True:
        if off == len(data):
            # Every byte framed: h11 would read an empty receive_data() as EOF.
            return ends, "needmore"
        conn = h11.Connection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
        conn.receive_data(data[off:])
        try:
            while True:
                ev = conn.next_event()
                if ev is h11.NEED_DATA:
                    return ends, "needmore"
                if isinstance(ev, h11.Request) and not keep_alive(ev):
                    return ends, "closed"
                if isinstance(ev, h11.EndOfMessage):
                    off = len(data) - len(conn.trailing_data[0])
                    ends.append(off)
                    break
        except h11.RemoteProtocolError as e:
            return ends, "refused %d" % e.error_status_hint


def keep_alive(req):
    tokens = set()
    for name, value in req.headers:
        if name == b"connection":
            tokens |= {t.strip().lower() for t in value.split(b",")}
    if req.http_version == b"1.0":
        return b"keep-alive" in tokens and b"close" not in tokens
    return b"close" not in tokens


def percore_outcomes(binary, cases):
    payload = b"".join(struct.pack("<I", len(c)) + c for c in cases)
    out = subprocess.run([binary], input=payload, capture_output=True, check=True).stdout
    result = []
    for line in out.decode().splitlines():
        ends, end = line.split("|")
        result.append(([int(e) for e in ends.split(",") if e], end))
    return result


PIECES = {
    "method": ["GET", "POST", "HEAD", "PUT"],
    "target": ["/api/health", "/a?b", "http://h/x", "*"],
    "version": ["HTTP/1.1", "HTTP/1.0"],
    "field": [
        "Host: x", "Connection: close", "Connection: keep-alive", "Content-Length: 5",
        "Content-Length: 0", "Content-Length: 5, 5", "Transfer-Encoding: chunked",
        "Transfer-Encoding: gzip, chunked", "Expect: 100-continue", "X: y",
    ],
    "chunk": [
        "5\r\nhello\r\n", "1;a=b\r\nx\r\n", '1;a="q"\r\nx\r\n', "1 ;a\r\nx\r\n",
        "1;a\nx\r\n", "1\nx\r\n", "1\r\nx\n", "1\r\nxy\r\n", "A\r\n0123456789\r\n",
    ],
    "last": ["0\r\n\r\n", "0\r\nT: 1\r\n\r\n", "0\r\n\n", "0;e\r\n\r\n", "0\r\nT: 1\n\r\n"],
}
NOISE = [b"\r\n", b"\n", b"\r", b" ", b";", b'"', b":", b"\t", b"0", b"a"]


def generate(rng):
    """1-3 requests from the pieces, with a few byte edits."""
    out = b""
    for _ in range(rng.randint(1, 3)):
        head = "%s %s %s\r\n" % (rng.choice(PIECES["method"]), rng.choice(PIECES["target"]),
                                 rng.choice(PIECES["version"]))
        head += "".join(f + "\r\n" for f in rng.sample(PIECES["field"], rng.randint(0, 3)))
        chunked = "chunked" in head
        out += (head + "\r\n").encode()
        if chunked:
            out += "".join(rng.choice(PIECES["chunk"]) for _ in range(rng.randint(0, 3))).encode()
            out += rng.choice(PIECES["last"]).encode()
        elif "Content-Length: 5" in head:
            out += b"hello"
    data = bytearray(out)
    for _ in range(rng.choice([0, 0, 1, 2])):
        at = rng.randrange(len(data) + 1)
        if rng.random() < 0.5:
            data[at:at] = rng.choice(NOISE)
        elif at < len(data):
            del data[at]
    return bytes(data)


def main():
    binary = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20000
    corpus = sorted(p.read_bytes() for p in (ROOT / "fuzz" / "corpus").iterdir())
    rng = random.Random(13)
    cases = corpus + [generate(rng) for _ in range(count)]
    ours = percore_outcomes(binary, cases)
    kinds = collections.Counter()
    examples = {}
    framing = 0
    for case, (p_ends, p_end) in zip(cases, ours):
        h_ends, h_end = h11_outcome(case)
        common = min(len(p_ends), len(h_ends))
        if p_ends[:common] != h_ends[:common]:
            framing += 1
            kind = "FRAMING: a request ends at different offsets"
        elif (p_ends, p_end) == (h_ends, h_end):
            continue
        else:
            p_state = p_end if len(p_ends) == common else "accepted"
            h_state = h_end if len(h_ends) == common else "accepted"
            kind = "request %d: percore %s, h11 %s" % (common + 1, p_state, h_state)
            kind = kind.replace("request 1", "request 1").split(": ", 1)[1]
        kinds[kind] += 1
        examples.setdefault(kind, case)
    print("differential: %d cases (%d corpus seeds), %d agree, %d framing disagreements"
          % (len(cases), len(corpus), len(cases) - sum(kinds.values()), framing))
    for kind, n in kinds.most_common():
        print("  %6d  %s   e.g. %r" % (n, kind, examples[kind][:160]))
    sys.exit(1 if framing else 0)


if __name__ == "__main__":
    main()
