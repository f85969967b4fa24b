"""A fixture workspace with a virtualenv and node_modules holding small, realistic packages."""

from __future__ import annotations

from pathlib import Path

RETRY_PY = '''"""Retries with exponential backoff."""

import time
import warnings

DEFAULT_ATTEMPTS = 3


class Retry:
    """How often to retry and how long to wait between attempts."""

    def __init__(self, attempts: int = DEFAULT_ATTEMPTS, backoff_factor: float = 0.5):
        self.attempts = attempts
        self.backoff_factor = backoff_factor

    def sleep_for(self, attempt: int) -> float:
        """Seconds to wait before `attempt`: backoff_factor * 2 ** (attempt - 1)."""
        return self.backoff_factor * (2 ** (attempt - 1))


def retry_call(func, retry: Retry | None = None):
    retry = retry or Retry()
    for attempt in range(1, retry.attempts + 1):
        try:
            return func()
        except ConnectionError:
            if attempt == retry.attempts:
                raise
            time.sleep(retry.sleep_for(attempt))


def old_retry(func):
    """Deprecated since 1.2: use retry_call."""
    warnings.warn("old_retry is deprecated; use retry_call", DeprecationWarning, stacklevel=2)
    return retry_call(func)
'''

CLIENT_PY = """from fakelib.retry import Retry, retry_call


class Client:
    def __init__(self, retry: Retry | None = None):
        self.retry = retry or Retry()

    def get(self, url):
        return retry_call(lambda: self._send(url), self.retry)

    def _send(self, url):
        raise ConnectionError(url)
"""

USER_PY = '''"""A package that uses fakelib."""

from fakelib.retry import Retry


def make_client():
    policy = Retry(attempts=5, backoff_factor=0.1)
    return policy
'''


def _dist(site: Path, name: str, version: str, files: dict[str, str], urls: list[str] = ()) -> None:
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Project-URL: {u}" for u in urls]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    record = [*files, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("\n".join(f"{r},," for r in record) + "\n")


def make_env(root: Path) -> Path:
    """`root` with .venv (fakelib 1.2.0, fakeuser 0.1.0, tinymod 2.0) and node_modules (left-pad 1.3.0)."""
    venv = root / ".venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.0\n")
    _dist(site, "fakelib", "1.2.0",
          {"fakelib/__init__.py": '"""fakelib: HTTP with retries."""\n__version__ = "1.2.0"\n',
           "fakelib/retry.py": RETRY_PY, "fakelib/client.py": CLIENT_PY},
          ["Source, https://github.com/acme/fakelib"])  # fmt: skip
    _dist(site, "fakeuser", "0.1.0", {"fakeuser/__init__.py": USER_PY})
    _dist(site, "tinymod", "2.0", {"tinymod.py": "def pad_left(text, width):\n    return text.rjust(width)\n"})
    pkg = root / "node_modules" / "left-pad"
    pkg.mkdir(parents=True)
    (pkg / "package.json").write_text(
        '{"name": "left-pad", "version": "1.3.0", "repository": {"url": "git+https://github.com/left-pad/left-pad.git"}}'
    )
    (pkg / "index.js").write_text(
        "module.exports = function leftPad(str, len, ch) {\n  return str.padStart(len, ch);\n};\n"
    )
    (root / "app.py").write_text("import fakelib\n")
    return root
