"""Runs a command inside a loopback-only network namespace, with chosen loopback ports piped to Unix sockets.

``unshare -rn python -m tests.loopback_runner --forward PORT=PATH ... -- COMMAND`` brings ``lo`` up, listens on
each ``127.0.0.1:PORT`` inside the namespace and pipes every connection to the Unix socket at ``PATH`` (a path
in the file system crosses network namespaces), then runs the command and exits with its code. The test process,
outside, serves each socket with ``claude_code_harness.unix_to_tcp`` to its real listener (a stand-in model API,
the collector): the command reaches exactly those, and nothing else is routable.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

from tests.claude_code_harness import run_forwarded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--forward", action="append", default=[], help="PORT=UNIX_SOCKET_PATH")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    return run_forwarded(args.forward, args.command)


if __name__ == "__main__":
    sys.exit(main())
