"""Installed dependencies (offline, read-only): Python site-packages and node_modules of the workspace."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cached_property
from importlib import metadata
from pathlib import Path

from cadre_core.files import is_text_file, read_text
from cadre_librarian.sources import Excerpt, NotFoundError, SourceError, slice_lines
from cadre_librarian.windows import score_windows

VENV_DIRS = (".venv", "venv", "env", ".env")
INTERPRETER_TIMEOUT_S = 5.0
MAX_FILE_BYTES = 2_000_000
ALSO_PER_FILE = 1
"""Besides a file's best span, how many more of its matching spans a search returns."""


def normalize(name: str) -> str:
    """PEP 503 normalised package name (`Foo_Bar.baz` -> `foo-bar-baz`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Package:
    """One installed package; `parts` are the files and folders under `base` that belong to it."""

    name: str
    version: str
    ecosystem: str
    """`python` or `node`."""
    base: Path
    """site-packages for Python, the package's own folder for node."""
    parts: tuple[str, ...]

    @property
    def dirs(self) -> list[Path]:
        return [self.base / p for p in self.parts if (self.base / p).is_dir()]

    @property
    def files(self) -> list[Path]:
        return [self.base / p for p in self.parts if (self.base / p).is_file()]

    def owns(self, path: Path) -> bool:
        """True when `path` (resolved) is one of the package's files or inside its folders."""
        for part in self.parts:
            top = (self.base / part).resolve()
            if path == top or top in path.parents:
                return True
        return False

    def describe(self) -> dict:
        return {"name": self.name, "version": self.version, "ecosystem": self.ecosystem, "location": str(self.base)}


def python_site_dirs(roots: list[Path], environ: dict[str, str] | None = None) -> tuple[list[Path], str]:
    """The workspace's site-packages folders and how they were found.

    Order: a virtualenv folder in a workspace root (`.venv`, `venv`, ...), then `VIRTUAL_ENV` (an
    activated environment kept elsewhere), else the `python3` on PATH."""
    env = os.environ if environ is None else environ
    venvs = [root / name for root in roots for name in VENV_DIRS]
    venvs += [Path(env["VIRTUAL_ENV"])] if env.get("VIRTUAL_ENV") else []
    for venv in venvs:
        if (venv / "pyvenv.cfg").is_file():
            sites = sorted(venv.glob("lib/python3*/site-packages")) + sorted(venv.glob("Lib/site-packages"))
            if sites:
                return sites, f"virtualenv {venv}"
    return _interpreter_sites(env), "python3 on PATH"


def _interpreter_sites(env) -> list[Path]:
    code = "import json, site, sys; print(json.dumps([p for p in sys.path if p.endswith('-packages')]))"
    try:
        out = subprocess.run(
            ["python3", "-c", code], capture_output=True, text=True, timeout=INTERPRETER_TIMEOUT_S, env=dict(env)
        )
        return [Path(p) for p in json.loads(out.stdout or "[]") if Path(p).is_dir()]
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return [Path(p) for p in sys.path if p.endswith("-packages") and Path(p).is_dir()]


def _python_parts(dist: metadata.Distribution) -> tuple[str, ...]:
    tops: dict[str, None] = {}
    for file in dist.files or []:
        first = file.parts[0] if file.parts else ""
        if not first or first == ".." or first.endswith((".dist-info", ".egg-info", ".pth")) or first == "__pycache__":
            continue
        tops[first] = None
    return tuple(tops)


class Installed:
    """Packages installed for the workspace: lookups by distribution or import name, reads and searches."""

    def __init__(self, roots: list[Path], *, environ: dict[str, str] | None = None):
        self.roots = [Path(r).resolve() for r in roots]
        self.environ = environ

    @cached_property
    def python(self) -> tuple[dict[str, Package], str]:
        sites, how = python_site_dirs(self.roots, self.environ)
        found: dict[str, Package] = {}
        for site in sites:
            for dist in metadata.distributions(path=[str(site)]):
                name = dist.metadata["Name"] or ""
                if not name or normalize(name) in found:
                    continue
                package = Package(name, dist.version or "unknown", "python", site, _python_parts(dist))
                found[normalize(name)] = package
        return found, how

    @cached_property
    def node(self) -> dict[str, Package]:
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
                name = data.get("name") or manifest.parent.name
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
        """A package by distribution name, node name, or Python import name (`yaml` -> PyYAML)."""
        name = name.strip()
        python, how = self.python
        if name in self.node:
            return self.node[name]
        if normalize(name) in python:
            return python[normalize(name)]
        top = name.split(".")[0]
        for package in python.values():
            if top in package.parts or f"{top}.py" in package.parts:
                return package
        near = [p.name for p in self.packages(name[:4])][:5]
        hint = f"; installed names like it: {', '.join(near)}" if near else ""
        raise NotFoundError(
            f"'{name}' is not installed in the workspace ({how}; node_modules in {', '.join(map(str, self.roots))})"
            f"{hint}. Pass an installed package name, or owner/repo to read it on GitHub"
        )

    def resolve(self, package: Package, path: str) -> Path:
        """A path inside the package: relative to site-packages (`httpx/_client.py`) or to its folder."""
        if not path or path in (".", "/"):
            raise SourceError(f"pass a file path inside {package.name}, e.g. {self._example(package)}")
        rel = path.lstrip("/")
        candidates = [package.base / rel, *(d / rel for d in package.dirs)]
        for candidate in candidates:
            real = candidate.resolve()
            if package.owns(real) and real.exists():
                return real
        if any(not package.owns(c.resolve()) for c in candidates[:1]) and ".." in Path(rel).parts:
            raise SourceError(f"'{path}' is outside {package.name}; pass a path inside the package")
        raise NotFoundError(
            f"'{path}' is not a file of {package.name} {package.version}; e.g. {self._example(package)}"
        )

    def relative(self, package: Package, real: Path) -> str:
        return real.relative_to(package.base.resolve()).as_posix()

    def read(self, name: str, path: str, start_line: int = 1, end_line: int | None = None) -> Excerpt:
        """Lines of one installed file, with the package's version."""
        package = self.find(name)
        real = self.resolve(package, path)
        if real.is_dir():
            entries = sorted(c.name + ("/" if c.is_dir() else "") for c in real.iterdir() if c.name != "__pycache__")
            raise SourceError(
                f"'{path}' is a folder of {package.name}; pass a file, e.g. one of: {', '.join(entries[:15])}"
            )
        size = real.stat().st_size
        if size > MAX_FILE_BYTES or not is_text_file(real, size):
            raise SourceError(f"'{path}' is binary or larger than {MAX_FILE_BYTES:,} bytes; pass a source file")
        start, end, text = slice_lines(read_text(real), start_line, end_line)
        return self.excerpt(package, real, start, end, text)

    def excerpt(
        self, package: Package, real: Path, start: int, end: int, text: str, score: float | None = None
    ) -> Excerpt:
        return Excerpt(
            source="local",
            package_or_repo=package.name,
            version_or_ref=package.version,
            path=self.relative(package, real),
            start_line=start,
            end_line=end,
            text=text,
            url=f"{real.as_uri()}#L{start}-L{end}",
            score=score,
        )

    def _example(self, package: Package) -> str:
        for top in package.dirs:
            for child in sorted(top.iterdir()):
                if child.is_file() and child.suffix in (".py", ".js", ".ts", ".mjs", ".cjs"):
                    return self.relative(package, child.resolve())
        return package.parts[0] if package.parts else "index.js"


def search_package(installed: Installed, name: str, query: str, limit: int = 8) -> list[Excerpt]:
    """The package's best-matching code spans for `query` (Search engine over each of its folders)."""
    from cadre_search.engine import engine_for

    package = installed.find(name)
    found: list[Excerpt] = []
    for top in package.dirs:
        result = engine_for(top.resolve()).search(query, limit=limit)
        for hit in result.hits:
            real = (top / hit.path).resolve()
            source = read_text(real)
            spans = [(hit.start_line, hit.end_line, hit.score)]
            spans += [(a["start_line"], a["end_line"], hit.score * 0.9) for a in hit.also[:ALSO_PER_FILE]]
            for first, last, score in spans:
                start, end, text = slice_lines(source, first, last, max_lines=60)
                found.append(installed.excerpt(package, real, start, end, text, score=score))
    for file in package.files:
        if file.suffix in (".py", ".pyi", ".js", ".mjs", ".cjs", ".ts") and file.stat().st_size <= MAX_FILE_BYTES:
            lines = read_text(file).split("\n")
            for score, start, end in score_windows(lines, query)[:2]:
                text = "\n".join(lines[start - 1 : end])
                found.append(installed.excerpt(package, file.resolve(), start, end, text, score=score))
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
        for dist in metadata.distributions(path=[str(package.base)], name=package.name):
            urls = [*(dist.metadata.get_all("Project-URL") or []), dist.metadata.get("Home-page") or ""]
            break
    for url in urls:
        if match := GITHUB_REPO.search(url):
            return f"{match.group(1)}/{match.group(2)}"
    return None
