"""File access confined to the workspace roots, with symlinks resolved.

Over stdio a server trusts its host's roots (or `--root`, or the cwd). Over HTTP (`cadre up`) it serves a
fixed set of workspaces, and a client's roots only select among them (`ServedWorkspaces`).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from urllib.parse import unquote, urlparse

from cadre_core.errors import WorkspaceError, clip

HOST_ROOT_HINT = (
    "add `--root DIR` (a project folder) to this server's entry in the host's config, "
    "or run `cadre install <host> --root DIR`"
)


def roots_from_uris(uris: list[str]) -> list[Path]:
    """Local directories from MCP root URIs (`file://...`); other schemes are ignored."""
    roots = []
    for uri in uris:
        parsed = urlparse(str(uri))
        if parsed.scheme == "file":
            roots.append(Path(unquote(parsed.path)))
    return roots


class Workspace:
    """The roots a server may read, and the one check every path goes through."""

    def __init__(self, roots: Sequence[Path], *, hint: str = HOST_ROOT_HINT):
        """Refuses a missing root, and `/`, the home folder or a folder above it (never crawl the disk);
        `hint` says how to set the root instead."""
        if not roots:
            raise WorkspaceError("no workspace root; start the server with --root DIR or from the project folder")
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        for root in self.roots:
            if not root.is_dir():
                raise WorkspaceError(
                    f"workspace root {root} is not a readable directory; fix --root or the host's roots"
                )
            if what := too_broad(root):
                raise WorkspaceError(f"the workspace would be {root} ({what}), which Cadre never reads; {hint}")

    @property
    def primary(self) -> Path:
        return self.roots[0]

    def resolve(self, path: str | Path) -> Path:
        """The real path of `path` (relative paths are taken from the first root).

        Raises `WorkspaceError` when it, or a symlink on the way, leads outside every root.
        """
        text = str(path)
        if "\x00" in text:
            raise WorkspaceError("path contains a NUL byte; pass a plain file path")
        try:
            candidate = Path(text).expanduser()  # RuntimeError for ~user of no such user
            if not candidate.is_absolute():
                candidate = self.primary / candidate
            real = candidate.resolve()
        except (OSError, RuntimeError) as exc:
            raise WorkspaceError(f"cannot resolve '{clip(text)}': {getattr(exc, 'strerror', None) or exc}") from exc
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            shown = ", ".join(str(r) for r in self.roots)
            raise WorkspaceError(f"'{clip(text)}' is outside the workspace roots ({shown}); pass a path inside them")
        return real

    def relative(self, path: Path) -> str:
        """`path` relative to the root that holds it."""
        for root in self.roots:
            if path == root or path.is_relative_to(root):
                return str(path.relative_to(root)) or "."
        return str(path)


def too_broad(root: Path) -> str | None:
    """Why `root` (a real path) is no workspace: the filesystem root, the home folder or a folder above it."""
    if root == Path(root.anchor):
        return "the filesystem root"
    home = Path.home().resolve()
    if root == home:
        return "your home folder"
    if home.is_relative_to(root):
        return "a folder holding your home folder"
    return None


def normalise_remote(url: str) -> str | None:
    """`host/owner/repo` (lower case, no scheme, user, port or `.git`) of a git remote URL, or None.

    `https://github.com/Acme/Cadre.git`, `git@github.com:acme/cadre` and `ssh://git@github.com:22/acme/cadre`
    all give `github.com/acme/cadre`; a local path gives its last two components."""
    text = url.strip().rstrip("/").removesuffix(".git").casefold()
    if not text:
        return None
    web = re.fullmatch(r"[a-z][a-z0-9+.-]*://(?:[^@/]*@)?([^/:]+)(?::\d*)?/(.+)", text)
    scp = re.fullmatch(r"(?:[^@/]+@)?([^/:]+):(?!/)(.+)", text)  # git@host:owner/repo
    found = web or scp
    host, path = found.groups() if found else ("", text)
    parts = [p for p in path.split("/") if p]
    if not parts:
        return None
    return "/".join([host, *parts[-2:]] if host else parts[-2:])


class ServedWorkspace:
    """One workspace `cadre up` serves: its real path, display name and git remote (read once, lazily)."""

    def __init__(self, path: Path, name: str):
        self.path, self.name = path, name

    @cached_property
    def remote(self) -> str | None:
        """The normalised URL of the `origin` remote, or None (not a git checkout, no origin, no git)."""
        try:
            done = subprocess.run(
                ["git", "-C", str(self.path), "remote", "get-url", "origin"],
                capture_output=True, text=True, timeout=5, check=False,
            )  # fmt: skip
        except (OSError, subprocess.SubprocessError):
            return None
        return normalise_remote(done.stdout) if done.returncode == 0 else None


class ServedWorkspaces:
    """The fixed workspaces of a server over HTTP. A client's MCP roots select among them, never add one.

    Each client root (`file://` URI, optional name) picks the workspace that matches it best, in this order:
    1. real path: the root, resolved on this machine, is a workspace or lies inside one;
    2. folder name: the root's path ends with a workspace's listed name (`app`, or `b/app` when two folders are
       called `app`), or its name is that name; else its last component (or name) equals a folder name;
    3. git remote: that component or name equals the repository name (or `owner/repo`, or the whole URL) of a
       workspace's `origin` remote, so `/home/alice/cadre` finds a checkout of `github.com/acme/cadre`.
    Comparisons ignore case. When no root matches, the only workspace is used; with several, it is an error
    that lists their names. No file outside the chosen workspaces is read, whatever the roots say.
    """

    def __init__(self, paths: Sequence[Path], *, hint: str):
        real = list(dict.fromkeys(Workspace(paths, hint=hint).roots))  # checks each; duplicates dropped
        self.workspaces = [ServedWorkspace(p, n) for p, n in zip(real, _display_names(real), strict=True)]

    @property
    def names(self) -> list[str]:
        return [w.name for w in self.workspaces]

    def select(self, client_roots: Sequence[tuple[str, str | None]]) -> Workspace:
        """The workspace(s) the client's `(uri, name)` roots select (see the class docstring)."""
        chosen: list[Path] = []
        for uri, name in client_roots:
            match = self._match(str(uri), name)
            if match is not None and match.path not in chosen:
                chosen.append(match.path)
        if not chosen and len(self.workspaces) == 1:
            chosen = [self.workspaces[0].path]
        if not chosen:
            names = ", ".join(self.names)
            given = (
                f"the client's {len(client_roots)} root(s) match none of this server's workspaces ({names})"
                if client_roots
                else f"the client sent no roots (over HTTP they come only with MCP 2026-07-28), and this server "
                f"has several workspaces ({names})"
            )
            raise WorkspaceError(
                f"{given}; open one of them in the client: a folder of the same name or a checkout of the same "
                "git repository"
            )
        return Workspace(chosen)

    def _match(self, uri: str, name: str | None) -> ServedWorkspace | None:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            return None
        path = unquote(parsed.path)
        if inside := [w for w in self.workspaces if _is_within(path, w.path)]:
            return max(inside, key=lambda w: len(w.path.parts))  # the innermost of nested workspaces
        labels = {s.casefold() for s in (Path(path).name, (name or "").strip()) if s}
        parts = Path(path).parts

        def named(w: ServedWorkspace) -> bool:  # the listed name: `app`, or `b/app` when two are called `app`
            depth = w.name.count("/") + 1
            return w.name.casefold() in {"/".join(parts[-depth:]).casefold(), (name or "").strip().casefold()}

        tiers: tuple[Callable[[ServedWorkspace], bool], ...] = (
            named,
            lambda w: w.path.name.casefold() in labels,
            lambda w: w.remote is not None and any(_names_remote(label, w.remote) for label in labels),
        )
        for tier in tiers:
            found = [w for w in self.workspaces if tier(w)]
            if len(found) > 1:
                raise WorkspaceError(
                    f"a client root matches several workspaces ({', '.join(w.name for w in found)}); open a "
                    "folder whose path ends with one of those names, or give the server's workspaces distinct "
                    "folder names"
                )
            if found:
                return found[0]
        return None


def _is_within(path: str, root: Path) -> bool:
    """True when `path` (a client's, maybe hostile) resolves on this machine to `root` or inside it."""
    try:
        real = Path(path).resolve()
    except (OSError, ValueError, RuntimeError):
        return False
    return real == root or real.is_relative_to(root)


def _names_remote(label: str, remote: str) -> bool:
    """True when `label` names the repository of the normalised `remote`: `repo`, `owner/repo` or the URL."""
    wanted = normalise_remote(label) if ("/" in label or ":" in label) else label.removesuffix(".git")
    if not wanted:
        return False
    return remote == wanted or remote.endswith("/" + wanted)


def _display_names(paths: list[Path]) -> list[str]:
    """Each path's folder name, with parent folders added until the names are distinct."""
    depth = 1
    while True:
        names = ["/".join(p.parts[-depth:]) for p in paths]
        if len(set(names)) == len(names) or depth >= max(len(p.parts) for p in paths):
            return names
        depth += 1
