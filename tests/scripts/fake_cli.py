"""A stand-in for an LLM command-line tool, for the desktop_commander tests.

Usage: python fake_cli.py MODE [ARGS...] [PROMPT]

    echo              print "echo: " + stdin
    arg               print "echo: " + the last argument
    stream            print "héllo wörld " + stdin in small pieces, split inside UTF-8 characters
    fail              print a long stderr ending in "FATAL: model not loaded", exit 3
    fail-after-output print part of an answer, then fail like ``fail``
    hang PIDFILE      start a grandchild, write both pids to PIDFILE, print a little, sleep
    silent            print nothing, exit 0
    env NAME          print the environment variable NAME
    leak NAME         print the environment variable NAME on stderr, exit 1
    big N             print N bytes
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def main() -> int:
    mode = sys.argv[1]
    out = sys.stdout.buffer
    if mode == "echo":
        out.write(b"echo: " + sys.stdin.buffer.read())
    elif mode == "arg":
        out.write(b"echo: " + sys.argv[-1].encode())
    elif mode == "stream":
        data = "héllo wörld ".encode() + sys.stdin.buffer.read()
        for index in range(0, len(data), 3):  # 3-byte pieces cut through 2-byte characters
            out.write(data[index : index + 3])
            out.flush()
            time.sleep(0.005)
    elif mode in ("fail", "fail-after-output"):
        if mode == "fail-after-output":
            out.write(b"partial answer")
            out.flush()
            time.sleep(0.05)
        sys.stderr.write("loading model...\n" * 200 + "FATAL: model not loaded\n")
        return 3
    elif mode == "hang":
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        with open(sys.argv[2], "w") as file:
            file.write(f"{os.getpid()} {child.pid}\n")
        out.write(b"thinking")
        out.flush()
        time.sleep(60)
    elif mode == "silent":
        pass
    elif mode == "env":
        out.write(os.environ[sys.argv[2]].encode())
    elif mode == "leak":
        sys.stderr.write(f"auth failed for token {os.environ[sys.argv[2]]}\n")
        return 1
    elif mode == "big":
        out.write(b"x" * int(sys.argv[2]))
    else:
        sys.stderr.write(f"unknown mode {mode!r}\n")
        return 2
    out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
