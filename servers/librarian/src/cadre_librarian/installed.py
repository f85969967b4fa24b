"""Installed dependencies (offline, read-only): Python site-packages and node_modules of the workspace.

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
store), except at a secret file (`.env`, keys, ...).

The package lists are re-read when a site-packages or node_modules folder changes (one stat per folder
on each lookup); `await Installed.ready()` does the first scan (and any re-scan) in a worker thread."""

from __future__ import annotations

import ast
import csv
import json
import os
import posixpath
import re
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field, replace
from functools import cached_property
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlsplit

from cadre_core.files import is_secret_file, is_text_file, read_text
from cadre_librarian.sources import Excerpt, NotFoundError, SourceError, slice_lines
from cadre_librarian.windows import score_windows

VENV_DIRS = (".venv", "venv", "env", ".env")
INTERPRETER_TIMEOUT_S = 5.0
MAX_FILE_BYTES = 2_000_000
ALSO_PER_FILE = 1
"""Besides a file's best span, how many more of its matching spans a search returns."""
SOURCE_SUFFIXES = (".py", ".pyi", ".js", ".mjs", ".cjs", ".ts")
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

    def source_files(self):
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
        roots: list[Path] = []
        loose: list[Path] = []

        def walk(rel: str) -> None:
            if rel not in self.shared:
                roots.append(self.base / rel)
                return
            prefix = rel + "/"
            children = sorted({r[len(prefix) :].split("/", 1)[0] for r in self.record if r.startswith(prefix)})
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

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "ecosystem": self.ecosystem, "location": str(self.base)}


def _venv_sites(roots: list[Path], env) -> tuple[list[Path], str] | None:
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
    return _venv_sites(roots, env) or (_interpreter_sites(env), "python3 on PATH")


def _interpreter_sites(env) -> list[Path]:
    code = "import json, site, sys; print(json.dumps([p for p in sys.path if p.endswith('-packages')]))"
    try:
        out = subprocess.run(
            ["python3", "-c", code], capture_output=True, text=True, timeout=INTERPRETER_TIMEOUT_S, env=dict(env)
        )
        return [Path(p) for p in json.loads(out.stdout or "[]") if Path(p).is_dir()]
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return [Path(p) for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]


def _stamp(path: Path) -> int | None:
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
        if isinstance(target, ast.Name) and target.id == "MAPPING" and getattr(node, "value", None) is not None:
            try:
                value = ast.literal_eval(node.value)
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


class Installed:
    """Packages installed for the workspace: lookups by distribution or import name, reads and searches."""

    def __init__(self, roots: list[Path], *, environ: dict[str, str] | None = None):
        self.roots = [Path(r).resolve() for r in roots]
        self.environ = environ
        self._lock = threading.RLock()
        self._interpreter: list[Path] | None = None
        self._python: tuple[tuple, dict[str, Package], str] | None = None
        self._node: tuple[tuple, dict[str, Package]] | None = None

    async def ready(self) -> Installed:
        """Scans (or re-scans) in a worker thread, so the lookups that follow do not block the event loop."""
        import anyio

        await anyio.to_thread.run_sync(self.refresh, abandon_on_cancel=True)
        return self

    def refresh(self) -> None:
        """Re-reads the package lists if their folders changed since the last look."""
        self.python  # noqa: B018
        self.node  # noqa: B018

    def _sites(self) -> tuple[list[Path], str]:
        env = os.environ if self.environ is None else self.environ
        found = _venv_sites(self.roots, env)
        if found:
            return found
        if self._interpreter is None:
            self._interpreter = _interpreter_sites(env)
        return self._interpreter, "python3 on PATH"

    @property
    def python(self) -> tuple[dict[str, Package], str]:
        """Python distributions by normalised name, and how site-packages was found."""
        with self._lock:
            sites, how = self._sites()
            key = (how, tuple((site, _stamp(site)) for site in sites))
            if self._python is None or self._python[0] != key:
                found: dict[str, Package] = {}
                for site in sites:
                    for package in scan_site(site):
                        found.setdefault(normalize(package.name), package)
                self._python = (key, found, how)
            return self._python[1], self._python[2]

    def _node_key(self) -> tuple:
        stamps = []
        for root in self.roots:
            modules = root / "node_modules"
            stamps += [(modules, _stamp(modules)), (modules, _stamp(modules / ".package-lock.json"))]
            if stamps[-2][1] is not None:
                stamps += [(scope, _stamp(scope)) for scope in sorted(modules.glob("@*"))]
        return tuple(stamps)

    @property
    def node(self) -> dict[str, Package]:
        """node_modules packages by name."""
        with self._lock:
            key = self._node_key()
            if self._node is None or self._node[0] != key:
                self._node = (key, self._scan_node())
            return self._node[1]

    def _scan_node(self) -> dict[str, Package]:
        found: dict[str, Package] = {}
        for root in self.roots:
            modules = root / "node_modules"
            if not modules.is_dir():
                continue
            manifests = [*modules.glob("*/package.json"), *modules.glob("@*/*/package.json")]
            for manifest in sorted(manifests):
                try:
                    data = json.loads(manifest.read_text("utf-8"))
                except (OSError, ValueError):
                    continue
                if not isinstance(data, dict):
                    continue
                name = str(data.get("name") or manifest.parent.name)
                found.setdefault(
                    name, Package(name, str(data.get("version", "unknown")), "node", manifest.parent, (".",))
                )
        return found

    def packages(self, contains: str = "") -> list[Package]:
        """Every installed package (Python, then node), optionally filtered by a name substring."""
        everything = [*self.python[0].values(), *self.node.values()]
        needle = normalize(contains) if contains else ""
        return sorted((p for p in everything if needle in normalize(p.name)), key=lambda p: (p.ecosystem, p.name))

    def find(self, name: str) -> Package:
        """A package by distribution name, node name, or Python import name (`yaml` -> PyYAML,
        `google.auth` -> google-auth)."""
        name = name.strip()
        python, how = self.python
        node = self.node
        if name in node:
            return node[name]
        if normalize(name) in python:
            return python[normalize(name)]
        if owner := self._module_owner(name):
            return owner
        near = [p.name for p in self.packages(name[:4])][:5]
        hint = f"; installed names like it: {', '.join(near)}" if near else ""
        raise NotFoundError(
            f"'{name}' is not installed in the workspace ({how}; node_modules in {', '.join(map(str, self.roots))})"
            f"{hint}. Pass an installed package name, or owner/repo to read it on GitHub"
        )

    def _module_owner(self, module: str) -> Package | None:
        dotted = [p for p in module.split(".") if p]
        if not dotted or not all(p.isidentifier() for p in dotted):
            return None
        python = list(self.python[0].values())
        for depth in range(len(dotted), 0, -1):
            rel = "/".join(dotted[:depth])
            for package in python:
                if package.owns_rel(rel) or package.owns_rel(rel + ".py") or package.owns_rel(rel + ".pyi"):
                    return package
        return None

    def owner_of(self, path: Path, besides: Package | None = None) -> Package | None:
        """The Python distribution that owns `path`, other than `besides`."""
        for package in self.python[0].values():
            if package is not besides and package.owns(path):
                return package
        return None

    def resolve(self, package: Package, path: str) -> Path:
        """A path inside the package (links not followed): relative to site-packages (`httpx/_client.py`),
        to one of its folders (`_client.py`), or absolute."""
        if not path or path.strip() in (".", "/"):
            raise SourceError(f"pass a file path inside {package.name}, e.g. {self._example_or_none(package)}")
        if os.path.isabs(path) and package.rel(path) is not None:
            rel = package.rel(path) or ""
        else:
            rel = path.replace("\\", "/").lstrip("/")
        candidates = [package.base / rel, *(d / rel for d in package.dirs)]
        for candidate in candidates:
            inside = package.rel(candidate)
            if inside not in (None, ".") and package.owns_rel(inside) and candidate.exists():
                target = Path(os.path.normpath(package.base / inside))
                if is_secret_file(target.name) or is_secret_file(target.resolve().name):
                    raise SourceError(f"'{path}' is a secret file and is not readable here")
                return target
        if ".." in Path(rel).parts and not any(package.owns(c) for c in candidates):
            raise SourceError(f"'{path}' is outside {package.name}; pass a path inside the package")
        for candidate in candidates:
            if candidate.exists() and (other := self.owner_of(candidate, package)):
                raise SourceError(
                    f"'{path}' belongs to {other.name} {other.version}, not {package.name} (they share a folder); "
                    f"read it with target {other.name}"
                )
        if any(c.exists() and package.rel(c) not in (None, ".") for c in candidates):
            raise SourceError(
                f"'{path}' is in {package.name}'s folder but not among the files {package.name} installed; "
                f"pass one of its files, e.g. {self._example_or_none(package)}"
            )
        example = self._example(package)
        if example is None:
            raise NotFoundError(
                f"'{path}' is not a file of {package.name} {package.version}; {self._no_source(package)}"
            )
        raise NotFoundError(f"'{path}' is not a file of {package.name} {package.version}; e.g. {example}")

    def relative(self, package: Package, path: Path) -> str:
        """`path` as the package's citations name it (relative to site-packages or the package folder)."""
        rel = package.rel(path)
        if rel is None:
            try:
                rel = Path(path).resolve().relative_to(package.base.resolve()).as_posix()
            except ValueError:
                raise SourceError(f"'{path}' is outside {package.name}; pass a path inside the package") from None
        return rel

    def read(self, name: str, path: str, start_line: int = 1, end_line: int | None = None) -> Excerpt:
        """Lines of one installed file, with the package's version."""
        package = self.find(name)
        real = self.resolve(package, path)
        if real.is_dir():
            entries = sorted(
                c.name + ("/" if c.is_dir() else "")
                for c in real.iterdir()
                if c.name != "__pycache__" and package.owns(real / c.name)
            )
            raise SourceError(
                f"'{path}' is a folder of {package.name}; pass a file, e.g. one of: {', '.join(entries[:15])}"
            )
        size = real.stat().st_size
        if size > MAX_FILE_BYTES or not is_text_file(real, size):
            raise SourceError(f"'{path}' is binary or larger than {MAX_FILE_BYTES:,} bytes; pass a source file")
        source = read_text(real)
        start, end, text = slice_lines(source, start_line, end_line)
        total = source.count("\n") + (0 if source.endswith("\n") or not source else 1)
        return replace(self.excerpt(package, real, start, end, text), extra={"total_lines": total})

    def excerpt(
        self, package: Package, real: Path, start: int, end: int, text: str, score: float | None = None
    ) -> Excerpt:
        """An excerpt of `real` (a path under the package, links not resolved) with a file:// URL."""
        return Excerpt(
            source="local",
            package_or_repo=package.name,
            version_or_ref=package.version,
            path=self.relative(package, real),
            start_line=start,
            end_line=end,
            text=text,
            url=f"{Path(os.path.abspath(real)).as_uri()}#L{start}-L{end}",
            score=score,
        )

    def _example(self, package: Package) -> str | None:
        """A real source file of the package (the shallowest), or None when it has none here."""
        best: tuple[int, str] | None = None
        for count, file in enumerate(package.source_files()):
            if count > 5000:
                break
            if file.name.endswith(SOURCE_SUFFIXES):
                rel = package.rel(file)
                if rel and (best is None or (rel.count("/"), rel) < best):
                    best = (rel.count("/"), rel)
        return best[1] if best else None

    def _example_or_none(self, package: Package) -> str:
        return self._example(package) or f"(none: {self._no_source(package)})"

    def _no_source(self, package: Package) -> str:
        return (
            f"{package.name} has no source files here (compiled or data files only, or an install this reader "
            "cannot follow); read its repository on GitHub with owner/repo"
        )


def search_package(installed: Installed, name: str, query: str, limit: int = 8) -> list[Excerpt]:
    """The package's best-matching code spans for `query`: the Search engine over each folder it owns
    (a folder shared with other distributions is split), only files the package owns."""
    from cadre_search.engine import engine_for

    package = installed.find(name)
    roots, loose = package.search_roots()
    found: list[Excerpt] = []
    for top in roots:
        result = engine_for(top.resolve()).search(query, limit=limit)
        for hit in result.hits:
            path = top / hit.path
            if not package.owns(path):
                continue
            source = read_text(path)
            spans = [(hit.start_line, hit.end_line, hit.score)]
            spans += [(a["start_line"], a["end_line"], hit.score * 0.9) for a in hit.also[:ALSO_PER_FILE]]
            for first, last, score in spans:
                start, end, text = slice_lines(source, first, last, max_lines=60)
                found.append(installed.excerpt(package, path, start, end, text, score=score))
    for file in loose:
        try:
            if not file.name.endswith(SOURCE_SUFFIXES) or file.stat().st_size > MAX_FILE_BYTES:
                continue
            lines = read_text(file).split("\n")
        except OSError:
            continue
        for score, start, end in score_windows(lines, query)[:2]:
            text = "\n".join(lines[start - 1 : end])
            found.append(installed.excerpt(package, file, start, end, text, score=score))
    found.sort(key=lambda e: -(e.score or 0))
    return found[:limit]


GITHUB_REPO = re.compile(r"github\.com[/:]([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?(?:[/#?]|$)")


def source_repo(package: Package) -> str | None:
    """`owner/repo` on GitHub from the package's metadata (Project-URL, Home-page, package.json repository)."""
    urls: list[str] = []
    if package.ecosystem == "node":
        try:
            data = json.loads((package.base / "package.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None
        repo = data.get("repository")
        urls = [repo.get("url", "") if isinstance(repo, dict) else str(repo or ""), str(data.get("homepage") or "")]
    else:
        dists = [metadata.PathDistribution(package.meta)] if package.meta else []
        dists = dists or list(metadata.distributions(path=[str(package.base)], name=package.name))
        for dist in dists[:1]:
            urls = [*(dist.metadata.get_all("Project-URL") or []), dist.metadata.get("Home-page") or ""]
    for url in urls:
        if match := GITHUB_REPO.search(url):
            return f"{match.group(1)}/{match.group(2)}"
    return None
