"""File access confined to the workspace roots, with symlinks resolved."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from cadre_core.errors import WorkspaceError


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

    def __init__(self, roots: list[Path]):
        if not roots:
            raise WorkspaceError("no workspace root; start the server with --root DIR or from the project folder")
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        for root in self.roots:
            if not root.is_dir():
                raise WorkspaceError(
                    f"workspace root {root} is not a readable directory; fix --root or the host's roots"
                )

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
        candidate = Path(text).expanduser()
        if not candidate.is_absolute():
            candidate = self.primary / candidate
        try:
            real = candidate.resolve()
        except (OSError, RuntimeError) as exc:
            raise WorkspaceError(f"cannot resolve '{text}': {exc}") from exc
        if not any(real == root or real.is_relative_to(root) for root in self.roots):
            shown = ", ".join(str(r) for r in self.roots)
            raise WorkspaceError(f"'{text}' is outside the workspace roots ({shown}); pass a path inside them")
        return real

    def relative(self, path: Path) -> str:
        """`path` relative to the root that holds it."""
        for root in self.roots:
            if path == root or path.is_relative_to(root):
                return str(path.relative_to(root)) or "."
        return str(path)
