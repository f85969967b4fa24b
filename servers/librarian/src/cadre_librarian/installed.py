"""Installed dependencies (offline, read-only): lookups, reads and searches over the workspace's packages.

Which files a package owns, and where environments are found: `environments.py`. The package lists
are re-read when a site-packages or node_modules folder changes (one stat per folder on each lookup);
`await Installed.ready()` does the first scan (and any re-scan) in a worker thread."""

from __future__ import annotations

import json
import os
import re
import threading
from dataclasses import replace
from importlib import metadata
from pathlib import Path

from cadre_core.errors import clip
from cadre_core.files import is_secret_path, read_redacted, read_text
from cadre_librarian.environments import Package, interpreter_sites, normalize, scan_site, stamp, venv_sites
from cadre_librarian.sources import Excerpt, NotFoundError, SourceError, slice_lines
from cadre_librarian.windows import score_windows

MAX_FILE_BYTES = 2_000_000
ALSO_PER_FILE = 1
"""Besides a file's best span, how many more of its matching spans a search returns."""
SOURCE_SUFFIXES = (".py", ".pyi", ".js", ".mjs", ".cjs", ".ts")


class Installed:
    """Packages installed for the workspace: lookups by distribution or import name, reads and searches."""

    def __init__(self, roots: list[Path], *, environ: dict[str, str] | None = None):
        self.roots = [Path(r).resolve() for r in roots]
        self.environ = environ
        self._lock = threading.RLock()
        self._interpreter: list[Path] | None = None
        self._python: tuple[tuple[object, ...], dict[str, Package], str] | None = None
        self._node: tuple[tuple[object, ...], dict[str, Package]] | None = None

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
        found = venv_sites(self.roots, env)
        if found:
            return found
        if self._interpreter is None:
            self._interpreter = interpreter_sites(env)
        return self._interpreter, "python3 on PATH"

    @property
    def python(self) -> tuple[dict[str, Package], str]:
        """Python distributions by normalised name, and how site-packages was found."""
        with self._lock:
            sites, how = self._sites()
            key = (how, tuple((site, stamp(site)) for site in sites))
            if self._python is None or self._python[0] != key:
                found: dict[str, Package] = {}
                for site in sites:
                    for package in scan_site(site):
                        found.setdefault(normalize(package.name), package)
                self._python = (key, found, how)
            return self._python[1], self._python[2]

    def _node_key(self) -> tuple[object, ...]:
        stamps = []
        for root in self.roots:
            modules = root / "node_modules"
            stamps += [(modules, stamp(modules)), (modules, stamp(modules / ".package-lock.json"))]
            if stamps[-2][1] is not None:
                stamps += [(scope, stamp(scope)) for scope in sorted(modules.glob("@*"))]
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
                    data = json.loads(read_text(manifest))
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

    def has(self, name: str) -> bool:
        """True when `find(name)` would find a package."""
        try:
            self.find(name)
        except SourceError:
            return False
        return True

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
            f"'{clip(name)}' is not installed in the workspace ({how}; "
            f"node_modules in {', '.join(map(str, self.roots))})"
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
                if is_secret_path(inside) or is_secret_path(target.resolve().name):
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
        try:  # redacted whole, so a key body cut by the line range is still recognised
            source = read_redacted(real, max_bytes=MAX_FILE_BYTES)
        except OSError as exc:
            raise SourceError(f"'{path}' cannot be read: {exc.strerror or exc}; pass a source file") from exc
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
            data = json.loads(read_text(package.base / "package.json"))
        except (OSError, ValueError):
            return None
        repo = data.get("repository")
        urls = [repo.get("url", "") if isinstance(repo, dict) else str(repo or ""), str(data.get("homepage") or "")]
    else:
        dists: list[metadata.Distribution] = [metadata.PathDistribution(package.meta)] if package.meta else []
        dists = dists or list(metadata.distributions(path=[str(package.base)], name=package.name))
        for dist in dists[:1]:
            urls = [*(dist.metadata.get_all("Project-URL") or []), (dist.metadata.get_all("Home-page") or [""])[0]]
    for url in urls:
        if match := GITHUB_REPO.search(url):
            return f"{match.group(1)}/{match.group(2)}"
    return None
