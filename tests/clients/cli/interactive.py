"""redis-cli at its prompt, in a pseudo-terminal (as a person types), plain or with -3 (RESP3).

usage: interactive.py PORT PREFIX [-3]
Prints a transcript of what redis-cli showed for each command typed (its prompt and echo removed); the
test compares it with the transcript against redis-server. Exits non-zero if redis-cli does not answer
within 10 s."""
import os
import pty
import re
import select
import sys
import time

port, prefix = sys.argv[1], sys.argv[2]
extra = sys.argv[3:]
prompt = f"127.0.0.1:{port}> ".encode()
pid, fd = pty.fork()
if pid == 0:
    # A terminal linenoise does not drive character by character: each line is echoed once, then answered.
    os.environ["TERM"] = "dumb"
    os.execvp("redis-cli", ["redis-cli", "-h", "127.0.0.1", "-p", port, *extra])

buf = b""


def read_until_prompt():
    global buf
    deadline = time.time() + 10
    while prompt not in buf:
        left = deadline - time.time()
        if left <= 0:
            sys.exit(f"no prompt from redis-cli; have {buf!r}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            chunk = os.read(fd, 65536)
            # redis-cli asks the terminal for the cursor position; answer as a terminal would.
            if b"\x1b[6n" in chunk:
                os.write(fd, b"\x1b[1;1R")
            buf += chunk
    out, _, buf = buf.partition(prompt)
    return out


read_until_prompt()
commands = [
    "PING",
    f"SET {prefix}:s v",
    f"GET {prefix}:s",
    f"HSET {prefix}:h a 1",
    f"HGETALL {prefix}:h",
    f"SADD {prefix}:set x",
    f"SMEMBERS {prefix}:set",
    f"ZADD {prefix}:z 1.5 one 2.25 two",
    f"ZRANGE {prefix}:z 0 -1 WITHSCORES",
    f"GET {prefix}:missing",
    "CLIENT SETNAME checklist",
    "CLIENT GETNAME",
    "NOSUCHCOMMAND x",
    f"LPUSH {prefix}:s x",
    "PING",
]
for command in commands:
    os.write(fd, command.encode() + b"\r")
    out = read_until_prompt().decode(errors="replace")
    # Drop terminal control sequences and the echoed command line (with redis-cli's hints).
    out = re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", out).replace("\r", "")
    lines = [l for l in out.split("\n") if l.strip() and not l.startswith(command.split()[0]) and prefix not in l]
    print(f"## {command.split()[0]}")
    print("\n".join(lines))
os.write(fd, b"quit\r")
os.waitpid(pid, 0)
