"""Helpers for tests and benchmarks that run `cadre up` as a real process."""

from __future__ import annotations

import socket
import subprocess
import time


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on at `host` right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def base_url(host: str, port: int) -> str:
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def wait_until_healthy(proc: subprocess.Popen[str] | subprocess.Popen[bytes], base: str, timeout: float = 60.0) -> bool:
    """Poll `base`/healthz until it answers 200 (True), or `proc` exits or `timeout` passes (False)."""
    import httpx2

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if httpx2.get(f"{base}/healthz", timeout=1).status_code == 200:
                return True
        except httpx2.HTTPError:
            time.sleep(0.1)
    return False
