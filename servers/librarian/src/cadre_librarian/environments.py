"""Where the workspace's packages are installed and which files each one owns.

Which files belong to a package:
- A Python distribution owns the files its RECORD lists (installed-files.txt for old eggs), so
  distributions sharing a namespace folder (`google/auth`, `google/genai`) never mix. One without a
  file list owns its top-level names (top_level.txt, else its own name).
- An editable install owns its source folder, found from its `.pth` path line, setuptools'
  `__editable__` finder mapping, or `direct_url.json` (`dir_info.editable`).
- A node package owns its folder.

Paths are judged before symlinks are resolved: a path belongs to a package when, normalised without
following links, it is listed in RECORD or lies inside the package's folders; `..` that leaves the
package is refused. Such a link may point anywhere (Nix, Bazel and Spack views link every file into a
store), except at a secret file (`.env`, keys, ...)."""

from __future__ import annotations

import ast
import csv
import json
import os
import posixpath
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

VENV_DIRS = (".venv", "venv", "env", ".env")
INTERPRETER_TIMEOUT_S = 5.0
_SKIP_WALK = {"node_modules", "__pycache__"}


def normalize(name: str) -> str:
    """PEP 503 normalised package name (`Foo_Bar.baz` -> `foo-bar-baz`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """One installed package; `parts` are the top-level files and folders under `base` that belong to it."""

    name: str
    version: str
    ecosystem: str
    """`python` or `node`."""
    base: Path
    """site-packages for Python (an editable install's source folder), the package's own folder for node."""
    parts: tuple[str, ...]
    record: frozenset[str] | None = None
    """The files (posix, relative to `base`) the distribution's RECORD lists; None when it has no list."""
    meta: Path | None = None
    """The `.dist-info` / `.egg-info` of a Python distribution."""
    shared: frozenset[str] = field(default_factory=frozenset)
    """Folders (relative to `base`) that other distributions also have files in (namespace packages)."""
    editable: bool = False

    @property
    def dirs(self) -> list[Path]:
        return [self.base / p for p in self.parts if (self.base / p).is_dir()]

    @property
    def files(self) -> list[Path]:
        return [self.base / p for p in self.parts if (self.base / p).is_file()]

    @cached_property
    def record_dirs(self) -> frozenset[str]:
        """Every folder that holds a RECORD file (`google`, `google/auth`, ...)."""
        dirs: set[str] = set()
        for rel in self.record or ():
            parent = posixpath.dirname(rel)
            while parent and parent not in dirs:
                dirs.add(parent)
                parent = posixpath.dirname(parent)
        return frozenset(dirs)

    def rel(self, path: Path | str) -> str | None:
        """`path` relative to `base` (posix), normalised without following symlinks; None when outside."""
        try:
            rel = os.path.relpath(os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(self.base)))
        except ValueError:  # another drive
            return None
        rel = Path(rel).as_posix()
        if rel == ".." or rel.startswith("../") or os.path.isabs(rel):
            return None
        return rel

    def owns_rel(self, rel: str) -> bool:
        if self.record is not None:
            return rel in self.record or rel in self.record_dirs
        return any(p == "." or rel == p or rel.startswith(p + "/") for p in self.parts)

    def owns(self, path: Path) -> bool:
        """True when `path` (not resolved) is one of the package's files or folders."""
        rel = self.rel(path)
        if rel is None:
            return False
        return self.parts == (".",) if rel == "." else self.owns_rel(rel)

    def source_files(self) -> Iterator[Path]:
        """The package's files (paths under `base`, links not resolved), in a stable order."""
        if self.record is not None:
            for rel in sorted(self.record):
                yield self.base / rel
            return
        for part in self.parts:
            top = self.base / part
            if top.is_file():
                yield top
                continue
            for folder, subdirs, names in os.walk(top):
                subdirs[:] = sorted(d for d in subdirs if d not in _SKIP_WALK)
                for name in sorted(names):
                    yield Path(folder, name)

    def search_roots(self) -> tuple[list[Path], list[Path]]:
        """Folders to index whole, and single files to score, covering what the package owns: a folder
        shared with another distribution is split into the owned folders and files inside it."""
        if self.record is None:
            return self.dirs, self.files
        record = self.record
        roots: list[Path] = []
        loose: list[Path] = []

        def walk(rel: str) -> None:
            if rel not in self.shared:
                roots.append(self.base / rel)
                return
            prefix = rel + "/"
            children = sorted({r[len(prefix) :].split("/", 1)[0] for r in record if r.startswith(prefix)})
            for child in children:
                if f"{prefix}{child}" in self.record_dirs:
                    walk(f"{prefix}{child}")
                else:
                    loose.append(self.base / prefix / child)

        for part in self.parts:
            if part in self.record_dirs:
                walk(part)
            elif (self.base / part).is_file():
                loose.append(self.base / part)
        return [r for r in roots if r.is_dir()], loose

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version, "ecosystem": self.ecosystem, "location": str(self.base)}


def venv_sites(roots: list[Path], env: Mapping[str, str]) -> tuple[list[Path], str] | None:
    venvs = [root / name for root in roots for name in VENV_DIRS]
    venvs += [Path(os.path.abspath(env["VIRTUAL_ENV"]))] if env.get("VIRTUAL_ENV") else []
    for venv in venvs:
        if (venv / "pyvenv.cfg").is_file():
            sites = sorted(venv.glob("lib/python3*/site-packages")) + sorted(venv.glob("Lib/site-packages"))
            if sites:
                return sites, f"virtualenv {venv}"
    return None


def python_site_dirs(roots: list[Path], environ: dict[str, str] | None = None) -> tuple[list[Path], str]:
    """The workspace's site-packages folders and how they were found.

    Order: a virtualenv folder in a workspace root (`.venv`, `venv`, ...), then `VIRTUAL_ENV` (an
    activated environment kept elsewhere), else the `python3` on PATH."""
    env = os.environ if environ is None else environ
    return venv_sites(roots, env) or (interpreter_sites(env), "python3 on PATH")


def interpreter_sites(env: Mapping[str, str]) -> list[Path]:
    code = "import json, site, sys; print(json.dumps([p for p in sys.path if p.endswith('-packages')]))"
    try:
        out = subprocess.run(
            ["python3", "-c", code], capture_output=True, text=True, timeout=INTERPRETER_TIMEOUT_S, env=dict(env)
        )
        return [Path(p) for p in json.loads(out.stdout or "[]") if Path(p).is_dir()]
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return [Path(p) for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]


def stamp(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


# -- Python distributions ---------------------------------------------------------------------------


def _listed_files(dist: metadata.PathDistribution, meta: Path) -> list[str] | None:
    """The distribution's file list relative to site-packages (RECORD, else installed-files.txt)."""
    if (text := dist.read_text("RECORD")) is not None:
        return [row[0] for row in csv.reader(text.splitlines()) if row]
    if (text := dist.read_text("installed-files.txt")) is not None:
        return [posixpath.join(meta.name, line.strip()) for line in text.splitlines() if line.strip()]
    return None


def _owned(listed: list[str]) -> tuple[frozenset[str], list[str]]:
    """Source files (normalised, inside site-packages, no metadata or caches) and the top-level .pth files."""
    owned: set[str] = set()
    pth: list[str] = []
    for raw in listed:
        rel = posixpath.normpath(raw.replace("\\", "/"))
        if rel.startswith(("../", "/")) or rel in ("..", "."):
            continue
        first = rel.split("/", 1)[0]
        if first.endswith((".dist-info", ".egg-info")) or "__pycache__" in rel.split("/"):
            continue
        if "/" not in rel and rel.endswith(".pth"):
            pth.append(rel)
            continue
        if "/" not in rel and rel.startswith("__editable__"):  # setuptools' editable finder module
            continue
        owned.add(rel)
    return frozenset(owned), pth


def _tops(owned: frozenset[str]) -> tuple[str, ...]:
    return tuple(sorted({rel.split("/", 1)[0] for rel in owned}))


def _import_names(root: Path, dist: metadata.PathDistribution, name: str) -> tuple[str, ...]:
    """Top-level modules of `name` in a source folder: top_level.txt, its own name, else the packages there."""

    def present(top: str) -> bool:
        return (root / top).is_dir() or (root / f"{top}.py").is_file()

    listed = [t.strip() for t in (dist.read_text("top_level.txt") or "").splitlines() if t.strip()]
    own = {name.replace("-", "_").replace(".", "_"), name.replace("-", "_").replace(".", "_").lower()}
    for names in (listed, sorted(own)):
        found = [t if (root / t).is_dir() else f"{t}.py" for t in names if present(t)]
        if found:
            return tuple(found)
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return ()
    skip = {"tests", "test", "docs", "examples", "setup.py", "conftest.py", "noxfile.py"}
    return tuple(
        e.name
        for e in entries
        if e.name not in skip
        and not e.name.startswith((".", "_"))
        and ((e.is_dir() and (Path(e.path) / "__init__.py").is_file()) or (e.is_file() and e.name.endswith(".py")))
    )


def _finder_mapping(site: Path, pth_text: str) -> dict[str, str]:
    """setuptools' `__editable__` finder: `MAPPING = {'pkg': '/src/pkg'}` in the module the .pth imports."""
    match = re.search(r"import (__editable___[\w.]+_finder)", pth_text)
    if not match:
        return {}
    try:
        tree = ast.parse((site / f"{match.group(1)}.py").read_text("utf-8"))
    except (OSError, SyntaxError, ValueError):
        return {}
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
        value_node = getattr(node, "value", None)
        if isinstance(target, ast.Name) and target.id == "MAPPING" and isinstance(value_node, ast.expr):
            try:
                value = ast.literal_eval(value_node)
            except ValueError:
                return {}
            return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
    return {}


def _editable_source(
    site: Path, dist: metadata.PathDistribution, name: str, pth: list[str]
) -> tuple[Path, tuple[str, ...]] | None:
    """The source folder and top-level names of an editable install."""
    if not pth:
        stem = name.replace("-", "_").lower()
        pth = [p.name for p in sorted(site.glob("*.pth")) if stem in p.stem.lower().replace("-", "_")]
    roots: list[Path] = []
    for file in pth:
        try:
            text = (site / file).read_text("utf-8")
        except OSError:
            continue
        mapping = _finder_mapping(site, text)
        if mapping:
            folders = [Path(p) for p in mapping.values()]
            base = folders[0].parent
            parts = tuple(f.name for f in folders if f.parent == base and f.exists())
            if parts:
                return base, parts
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith(("#", "import ", "import\t")):
                folder = Path(line) if os.path.isabs(line) else site / line
                if folder.is_dir():
                    roots.append(folder)
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    url = str(direct.get("url") or "") if isinstance(direct, dict) else ""
    if url.startswith("file:"):
        project = Path(unquote(urlsplit(url).path))
        roots += [project / "src", project]
    for root in roots:
        if root.is_dir() and (parts := _import_names(root, dist, name)):
            return root, parts
    return None


def _python_package(site: Path, meta: Path) -> Package | None:
    dist = metadata.PathDistribution(meta)
    try:
        name = dist.metadata["Name"] or ""
        version = dist.version or "unknown"
    except (OSError, ValueError):
        return None
    if not name:
        return None
    listed = _listed_files(dist, meta)
    record, pth = _owned(listed) if listed is not None else (None, [])
    try:
        direct = json.loads(dist.read_text("direct_url.json") or "{}")
    except ValueError:
        direct = {}
    editable = isinstance(direct, dict) and bool((direct.get("dir_info") or {}).get("editable"))
    if editable or not record:
        source = _editable_source(site, dist, name, pth)
        if source:
            return Package(name, version, "python", source[0], source[1], None, meta, editable=True)
    if record is not None:
        return Package(name, version, "python", site, _tops(record), record, meta)
    return Package(name, version, "python", site, _import_names(site, dist, name), None, meta)


def _with_shared(packages: list[Package]) -> list[Package]:
    """Marks the folders that more than one distribution has files in."""
    claims = Counter(top for p in packages if p.record is not None for top in p.parts if top in p.record_dirs)
    tops = {top for top, n in claims.items() if n > 1}
    if not tops:
        return packages
    counts = Counter(d for p in packages if p.record is not None for d in p.record_dirs if d.split("/", 1)[0] in tops)
    shared = frozenset(d for d, n in counts.items() if n > 1)
    return [replace(p, shared=shared & p.record_dirs) if p.record is not None and shared & p.record_dirs else p
            for p in packages]  # fmt: skip


def scan_site(site: Path) -> list[Package]:
    """Every distribution in one site-packages folder (the first of a name wins)."""
    try:
        entries = sorted(e.name for e in os.scandir(site) if e.name.endswith((".dist-info", ".egg-info")))
    except OSError:
        return []
    found: dict[str, Package] = {}
    for entry in entries:
        package = _python_package(site, site / entry)
        if package and normalize(package.name) not in found:
            found[normalize(package.name)] = package
    return _with_shared(list(found.values()))


# -- the workspace's packages -------------------------------------------------------------------------
