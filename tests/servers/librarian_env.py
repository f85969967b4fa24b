"""A fixture workspace with a virtualenv and node_modules holding small, realistic packages."""

from __future__ import annotations

import json
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


def add_dist(
    site: Path,
    name: str,
    version: str,
    files: dict[str, str],
    urls: list[str] = (),
    *,
    record: bool = True,
    info_files: dict[str, str] | None = None,
) -> Path:
    """Writes `files` into site-packages and a .dist-info for them (RECORD unless `record=False`)."""
    for rel, text in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    meta += [f"Project-URL: {u}" for u in urls]
    (info / "METADATA").write_text("\n".join(meta) + "\n")
    for rel, text in (info_files or {}).items():
        (info / rel).write_text(text)
    if record:
        listed = [
            *files,
            f"{info.name}/METADATA",
            f"{info.name}/RECORD",
            *(f"{info.name}/{r}" for r in info_files or {}),
        ]
        (info / "RECORD").write_text("\n".join(f"{r},," for r in listed) + "\n")
    return info


def make_env(root: Path) -> Path:
    """`root` with .venv (fakelib 1.2.0, fakeuser 0.1.0, tinymod 2.0) and node_modules (left-pad 1.3.0)."""
    venv = root / ".venv"
    site = venv / "lib" / "python3.11" / "site-packages"
    site.mkdir(parents=True)
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\nversion = 3.11.0\n")
    add_dist(site, "fakelib", "1.2.0",
          {"fakelib/__init__.py": '"""fakelib: HTTP with retries."""\n__version__ = "1.2.0"\n',
           "fakelib/retry.py": RETRY_PY, "fakelib/client.py": CLIENT_PY},
          ["Source, https://github.com/acme/fakelib"])  # fmt: skip
    add_dist(site, "fakeuser", "0.1.0", {"fakeuser/__init__.py": USER_PY})
    add_dist(site, "tinymod", "2.0", {"tinymod.py": "def pad_left(text, width):\n    return text.rjust(width)\n"})
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


def make_tricky_env(root: Path) -> Path:
    """`make_env` plus the layouts that break naive readers:

    - nsa-one 1.0 and nsa-two 2.0 share the namespace folder `nsa/` (like google-auth and google-genai);
    - symlib 0.5 is a symlink view (Nix, Bazel, Spack): `symlib/core.py` links into `root/store`, and
      `symlib/creds.pem` links at a key there;
    - editpkg 0.2 is an editable install (uv / PEP 660 `.pth` path line, direct_url.json) of `root/editsrc/src`;
    - finderpkg 0.3 is a setuptools editable install (an `__editable__` finder with a MAPPING) of `root/fsrc`;
    - norecord 1.1 has no RECORD (top_level.txt only); binonly 4.0 installed a compiled module only."""
    make_env(root)
    site = root / ".venv/lib/python3.11/site-packages"
    add_dist(site, "nsa-one", "1.0", {"nsa/one/__init__.py": "", "nsa/one/clock.py": NSA_ONE})
    add_dist(
        site, "nsa-two", "2.0", {"nsa/two/__init__.py": "", "nsa/two/deadline.py": NSA_TWO, "nsa/util.py": NSA_TWO}
    )

    store = root / "store"
    store.mkdir()
    (store / "core.py").write_text(SYMLIB_CORE)
    (store / "creds.pem").write_text("-----BEGIN PRIVATE KEY-----\n")
    add_dist(site, "symlib", "0.5", {"symlib/__init__.py": "from symlib.core import Pool\n"})
    (site / "symlib/core.py").symlink_to(store / "core.py")
    (site / "symlib/creds.pem").symlink_to(store / "creds.pem")
    record = site / "symlib-0.5.dist-info/RECORD"
    record.write_text(record.read_text() + "symlib/core.py,,\nsymlib/creds.pem,,\n")

    src = root / "editsrc"
    (src / "src/editpkg").mkdir(parents=True)
    (src / "src/editpkg/__init__.py").write_text("")
    (src / "src/editpkg/core.py").write_text("def edited():\n    return 'live source'\n")
    (src / "tests").mkdir()
    (src / "tests/test_core.py").write_text("")
    (site / "_editable_impl_editpkg.pth").write_text(f"{src / 'src'}\n")
    info = add_dist(site, "editpkg", "0.2", {}, info_files={"direct_url.json": json.dumps(
        {"url": (src).as_uri(), "dir_info": {"editable": True}})})  # fmt: skip
    (info / "RECORD").write_text((info / "RECORD").read_text() + "_editable_impl_editpkg.pth,,\n")

    fsrc = root / "fsrc/finderpkg"
    fsrc.mkdir(parents=True)
    (fsrc / "__init__.py").write_text("def found():\n    return 'mapped'\n")
    (site / "__editable__.finderpkg-0.3.pth").write_text(
        "import __editable___finderpkg_0_3_finder; __editable___finderpkg_0_3_finder.install()\n"
    )
    (site / "__editable___finderpkg_0_3_finder.py").write_text(
        f"import sys\nMAPPING: dict[str, str] = {{'finderpkg': {str(fsrc)!r}}}\nNAMESPACES = {{}}\n"
    )
    info = add_dist(site, "finderpkg", "0.3", {})
    listed = "__editable__.finderpkg-0.3.pth,,\n__editable___finderpkg_0_3_finder.py,,\n"
    (info / "RECORD").write_text((info / "RECORD").read_text() + listed)

    add_dist(site, "norecord", "1.1", {"norecord/__init__.py": "VALUE = 1\n"}, record=False,
          info_files={"top_level.txt": "norecord\n"})  # fmt: skip
    add_dist(site, "binonly", "4.0", {"binonly/_core.so": "\x00ELF"})
    return root


NSA_ONE = """def tick(retry=0):
    \"\"\"One clock tick; a retry adds one.\"\"\"
    return 1 + retry
"""

NSA_TWO = '''"""Retry deadline handling."""

RETRY_DEADLINE = 30.0


def retry_deadline(deadline=RETRY_DEADLINE):
    """The retry deadline in seconds."""
    return deadline
'''

SYMLIB_CORE = """class Pool:
    def __init__(self, size):
        self.size = size


def make_pool():
    return Pool(size=4)
"""
