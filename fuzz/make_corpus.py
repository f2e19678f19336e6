#!/usr/bin/env python3
"""Seed corpus for the fuzzers: every request written in tests/ and in the
unit tests of src/http/, as raw bytes, one file each (fuzz/corpus/).

Takes each Rust string or byte-string literal that holds a request line, a
header line or a chunk line (it contains CR LF or "HTTP/"), undoes its escapes
and writes it out. Literals that are format strings keep their `{}` as bytes:
still a request-shaped seed. Run again after adding tests; idempotent.
"""
import hashlib
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
OUT = ROOT / "fuzz" / "corpus"
SOURCES = sorted((ROOT / "tests").rglob("*.rs")) + sorted((ROOT / "src" / "http").rglob("*.rs"))
LITERAL = re.compile(rb'b?"((?:[^"\\]|\\.|\\\n)*)"', re.S)
ESCAPE = re.compile(rb"\\(x[0-9a-fA-F]{2}|\n\s*|.)", re.S)
SIMPLE = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"0": b"\0", b"\\": b"\\", b'"': b'"', b"'": b"'"}


def unescape(body: bytes) -> bytes:
    def one(m):
        e = m.group(1)
        if e.startswith(b"x"):
            return bytes([int(e[1:], 16)])
        if e.startswith(b"\n"):
            return b""  # line continuation
        return SIMPLE.get(e, b"\\" + e)

    return ESCAPE.sub(one, body)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    seen = 0
    for src in SOURCES:
        for m in LITERAL.finditer(src.read_bytes()):
            data = unescape(m.group(1))
            if b"\r\n" not in data and b"HTTP/" not in data:
                continue
            name = hashlib.sha1(data).hexdigest()[:16]
            (OUT / name).write_bytes(data)
            seen += 1
    print(f"{seen} literals, {len(list(OUT.iterdir()))} distinct seeds in {OUT.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
