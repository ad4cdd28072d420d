#!/usr/bin/env python3
"""Generates common/src/command/redis_7_0.rs: Redis's command table (COMMAND INFO and COMMAND DOCS of every
command and subcommand) as Rust data, read from the installed redis-server over a raw RESP3 connection.

    python3 scripts/gen_command_table.py            # starts a temporary redis-server on a free port
    python3 scripts/gen_command_table.py --port N   # or reads an already running one

Run it when the reference redis-server changes; the generated file is committed, and
`common/tests/command_table_vs_redis.rs` checks that what we list still matches the server.
"""

import argparse
import os
import socket
import subprocess
import sys
import time

OUT = os.path.join(os.path.dirname(__file__), "..", "common", "src", "command", "redis_7_0.rs")


class Conn:
    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.buf = b""

    def send(self, *args):
        out = b"*%d\r\n" % len(args)
        for a in args:
            a = a.encode() if isinstance(a, str) else a
            out += b"$%d\r\n%s\r\n" % (len(a), a)
        self.sock.sendall(out)
        return self.read()

    def line(self):
        while b"\r\n" not in self.buf:
            self.buf += self.sock.recv(1 << 20)
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n + 2:
            self.buf += self.sock.recv(1 << 20)
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def read(self):
        """One reply as (type char, value): aggregates keep their RESP3 type."""
        line = self.line()
        t, rest = chr(line[0]), line[1:]
        if t in "+-":
            return (t, rest)
        if t == ":":
            return (t, int(rest))
        if t in "$=":
            n = int(rest)
            data = None if n < 0 else self.exact(n)
            return (t, data[4:] if t == "=" else data)
        if t in "*~>":
            return (t, [self.read() for _ in range(int(rest))])
        if t == "%":
            return (t, [(self.read(), self.read()) for _ in range(int(rest))])
        if t == "_":
            return (t, None)
        raise ValueError("unexpected reply type %r" % t)


def encode(v):
    """RESP3 bytes of a parsed reply."""
    t, x = v
    if t in "+-":
        return t.encode() + x + b"\r\n"
    if t == ":":
        return b":%d\r\n" % x
    if t == "$":
        return b"$-1\r\n" if x is None else b"$%d\r\n%s\r\n" % (len(x), x)
    if t in "*~>":
        return t.encode() + b"%d\r\n" % len(x) + b"".join(encode(i) for i in x)
    if t == "%":
        return b"%%%d\r\n" % len(x) + b"".join(encode(k) + encode(val) for k, val in x)
    if t == "_":
        return b"_\r\n"
    raise ValueError(t)


def rust_bytes(b):
    out = []
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif c == 0x22:
            out.append('\\"')
        elif c == 0x0D:
            out.append("\\r")
        elif c == 0x0A:
            out.append("\\n")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\x%02x" % c)
    return 'b"' + "".join(out) + '"'


def rust_str(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def ident(name):
    return name.upper().replace("|", "__").replace("-", "_")


def text(v):
    return v[1].decode()


def as_map(v):
    return {text(k): val for k, val in v[1]}


def key_spec_rust(spec):
    m = as_map(spec)
    flags = ", ".join(rust_str(text(f)) for f in m["flags"][1])
    bs = as_map(m["begin_search"])
    bs_type, bs_spec = text(bs["type"]), as_map(bs["spec"])
    if bs_type == "index":
        begin = "BeginSearch::Index(%d)" % bs_spec["index"][1]
    elif bs_type == "keyword":
        begin = "BeginSearch::Keyword { keyword: %s, start_from: %d }" % (
            rust_str(text(bs_spec["keyword"])), bs_spec["startfrom"][1])
    else:
        begin = "BeginSearch::Unknown"
    fk = as_map(m["find_keys"])
    fk_type, fk_spec = text(fk["type"]), as_map(fk["spec"])
    if fk_type == "range":
        find = "FindKeys::Range { last_key: %d, key_step: %d, limit: %d }" % (
            fk_spec["lastkey"][1], fk_spec["keystep"][1], fk_spec["limit"][1])
    elif fk_type == "keynum":
        find = "FindKeys::KeyNum { key_num_index: %d, first_key: %d, key_step: %d }" % (
            fk_spec["keynumidx"][1], fk_spec["firstkey"][1], fk_spec["keystep"][1])
    else:
        find = "FindKeys::Unknown"
    return "KeySpec { flags: &[%s], begin_search: %s, find_keys: %s }" % (flags, begin, find)


def emit(out, info, docs):
    """One command (and, recursively, its subcommands) as `pub static NAME: RedisCommand`."""
    t, fields = info
    name = text(fields[0])
    subs = fields[9][1]
    doc_pairs = [(k, v) for k, v in docs[1] if text(k) != "subcommands"]
    sub_docs = {}
    for k, v in docs[1]:
        if text(k) == "subcommands":
            sub_docs = {text(sk): sv for sk, sv in v[1]}
    doc = as_map(docs)
    # The entry as redis-server writes it, with its subcommands taken out (they are listed only when we
    # implement them); the DOCS map likewise.
    bare_info = (t, fields[:9] + [(fields[9][0], [])])
    bare_docs = ("%", doc_pairs)
    sub_idents = []
    for sub in subs:
        sub_name = text(sub[1][0])
        emit(out, sub, sub_docs[sub_name])
        sub_idents.append(ident(sub_name))
    out.append("pub static %s: RedisCommand = RedisCommand {" % ident(name))
    out.append("    name: %s," % rust_str(name))
    out.append("    arity: %d," % fields[1][1])
    out.append("    flags: &[%s]," % ", ".join(rust_str(text(f)) for f in fields[2][1]))
    out.append("    first_key: %d," % fields[3][1])
    out.append("    last_key: %d," % fields[4][1])
    out.append("    step: %d," % fields[5][1])
    out.append("    acl_categories: &[%s]," % ", ".join(rust_str(text(f)) for f in fields[6][1]))
    out.append("    key_specs: &[%s]," % ", ".join(key_spec_rust(s) for s in fields[8][1]))
    out.append("    group: %s," % rust_str(text(doc["group"])))
    out.append("    since: %s," % rust_str(text(doc["since"])))
    out.append("    summary: %s," % rust_str(text(doc["summary"])))
    out.append("    subcommands: &[%s]," % ", ".join("&" + s for s in sub_idents))
    out.append("    info_resp3: %s," % rust_bytes(encode(bare_info)))
    out.append("    docs_resp3: %s," % rust_bytes(encode(bare_docs)))
    out.append("};")
    return ident(name)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int)
    args = ap.parse_args()
    server = None
    port = args.port
    if port is None:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        server = subprocess.Popen(["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
                                  stdout=subprocess.DEVNULL)
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port)).close()
                break
            except OSError:
                time.sleep(0.01)
    try:
        c = Conn(port)
        c.send("HELLO", "3")
        info_text = c.send("INFO", "server")[1].decode(errors="replace")
        version = next(l.split(":")[1].strip() for l in info_text.splitlines() if l.startswith("redis_version:"))
        names = sorted(text(n) for n in c.send("COMMAND", "LIST")[1] if "|" not in text(n))
        out = [
            "//! Redis %s's command table: `COMMAND INFO` and `COMMAND DOCS` of every command and subcommand, as" % version,
            "//! redis-server replies in RESP3. Generated by `scripts/gen_command_table.py`; do not edit by hand.",
            "#![allow(clippy::all)]",
            "",
            "use super::spec::{BeginSearch, FindKeys, KeySpec, RedisCommand};",
            "",
            "/// The redis-server release this table was read from.",
            "pub const VERSION: &str = %s;" % rust_str(version),
            "",
        ]
        tops = []
        for name in names:
            (_, [info]) = c.send("COMMAND", "INFO", name)
            docs_map = c.send("COMMAND", "DOCS", name)
            (_, [(_, docs)]) = docs_map
            tops.append(emit(out, info, docs))
            out.append("")
        out.append("/// Every top-level command, in name order.")
        out.append("pub static ALL: &[&RedisCommand] = &[%s];" % ", ".join("&" + t for t in tops))
        with open(OUT, "w") as f:
            f.write("\n".join(out) + "\n")
        print("wrote %s: %d commands from redis-server %s" % (OUT, len(tops), version))
    finally:
        if server:
            server.terminate()
            server.wait()


if __name__ == "__main__":
    sys.exit(main())
