"""``valis serve --workers N``: N worker processes on one port, sharing the cluster config.

Each worker is a full ``valis serve`` (its own runtime, its own Hypercorn) that binds the
port with ``SO_REUSEPORT``, so the kernel spreads connections over them. They share
nothing but Redis: N > 1 without cluster mode is refused, because two workers would
then answer one session at once and race on its memory.

The parent only supervises: it forwards SIGTERM/SIGINT to every worker (each drains and
exits 0), and exits with the worst exit code once all have ended. A worker that dies is
not restarted (a process manager above, or the load balancer's health checks on
``/readyz``, handle that).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Mapping

import valis_actors as va

from ._cluster import REDIS_URL_ENV, cluster_configured

__all__ = ["check_workers", "serve_workers"]

_MAX_WORKERS = 256


def check_workers(workers: int, config: va.Config, environ: Mapping[str, str] | None = None) -> None:
    """Refuse a worker count that cannot keep the promises.

    Raises:
        ConfigError: ``workers`` < 1 or too many, or > 1 without cluster mode.
    """
    if not 1 <= workers <= _MAX_WORKERS:
        raise va.ConfigError(f"--workers must be between 1 and {_MAX_WORKERS} (got {workers})")
    if workers > 1 and not cluster_configured(config, environ):
        raise va.ConfigError(
            f"--workers {workers} needs cluster mode: without it each worker would answer the same session "
            "at once and race on its memory. Add \"cluster\": {\"redis_url\": \"redis://127.0.0.1:6379/0\"} "
            f"to config.json (or set {REDIS_URL_ENV}), or run one worker"
        )


def serve_workers(
    workers: int, *, config_path: str | None, host: str, port: int, backend: str
) -> int:
    """Run ``workers`` ``valis serve`` processes on one port until a signal; the worst exit code."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Hold the port, bound but not listening (it receives no connection), so that port 0
    # picks one port for every worker; SO_REUSEPORT lets the workers' listeners share it.
    holder = socket.socket(family, socket.SOCK_STREAM)
    try:
        holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        holder.bind((host, port))
    except OSError as exc:
        holder.close()
        raise va.ConfigError(f"cannot listen on {host}:{port} ({exc.strerror}); pick another --port or --host") from None
    bound = holder.getsockname()[1]
    args = [sys.executable, "-m", "valis_actors.cli", "serve", "--host", host, "--port", str(bound),
            "--backend", backend, "--reuse-port"]
    if config_path is not None:
        args += ["--config", config_path]
    children = [subprocess.Popen(args, env={**os.environ, "VALIS_WORKER_INDEX": str(n)}) for n in range(workers)]
    print(f"valis serve: {workers} workers on http://{host}:{bound}/v1 (pids "
          f"{', '.join(str(c.pid) for c in children)})", file=sys.stderr)

    def forward(signum: int, frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        # A blocking wait, no polling: the signal handler runs during it (PEP 475 resumes it).
        for child in children:
            child.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        holder.close()
    return max((child.returncode or 0) for child in children)
