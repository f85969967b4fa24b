"""What every source hands back: excerpts a person can open, and the errors sources raise."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cadre_core.errors import CadreError
from cadre_core.redact import redact

Kind = Literal["local", "github", "web"]


class SourceError(CadreError):
    """A source could not answer (network, limits, not found); the message says what to change."""


class NotFoundError(SourceError):
    """The package, repository, file, ref or page does not exist (or is not visible)."""


class NetworkError(SourceError):
    """The network failed: a timeout, a refused or dropped connection, or a server error (5xx) after a retry."""


class TooLargeError(SourceError):
    """The file is over what the source reads in one reply (a clone can still read it)."""


class RateLimitedError(SourceError):
    """GitHub's rate limit is spent; `reset_at` is when it refills (epoch seconds)."""

    def __init__(self, message: str, *, reset_at: float | None = None):
        self.reset_at = reset_at
        super().__init__(message)


@dataclass(frozen=True)
class Excerpt:
    """Lines `start_line..end_line` (1-based, inclusive) of one file in a package, repository or page."""

    source: Kind
    package_or_repo: str
    version_or_ref: str | None
    path: str
    start_line: int
    end_line: int
    text: str
    """The lines themselves, without numbers, joined by newlines."""
    url: str | None = None
    """Where a person can open it: a GitHub blob URL with #L anchors, a page URL, or a file:// path."""
    score: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        """Every excerpt is redacted as it is made: whatever reads it (a model, the host) sees no secret."""
        object.__setattr__(self, "text", redact(self.text, filename=self.path)[0])

    def citation(self) -> dict[str, Any]:
        """The citation fields of the librarian's answers."""
        return {
            "source": self.source,
            "package_or_repo": self.package_or_repo,
            "version_or_ref": self.version_or_ref,
            "path": self.path,
            "start_line": self.start_line,
            "end_line": self.end_line,
            "url": self.url,
        }

    def numbered(self) -> str:
        """The text with right-aligned line numbers, as tools show it."""
        lines = self.text.split("\n")
        width = len(str(self.start_line + len(lines) - 1))
        return "\n".join(f"{n:>{width}}  {line}" for n, line in enumerate(lines, start=self.start_line))

    def header(self) -> str:
        """`[github] owner/repo@ref path:10-20` — one line that names the excerpt."""
        at = f"@{self.version_or_ref}" if self.version_or_ref else ""
        return f"[{self.source}] {self.package_or_repo}{at} {self.path}:{self.start_line}-{self.end_line}"

    def with_lines(self, start_line: int, end_line: int, text: str, url: str | None = None) -> Excerpt:
        return replace(self, start_line=start_line, end_line=end_line, text=text, url=url or self.url)


def slice_lines(
    text: str, start_line: int = 1, end_line: int | None = None, *, max_lines: int = 400
) -> tuple[int, int, str]:
    """Clamp a 1-based inclusive line range to `text` (at most `max_lines` lines); returns (start, end, lines)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    total = max(len(lines), 1)
    start = min(max(1, start_line), total)
    end = total if end_line is None else min(max(start, end_line), total)
    end = min(end, start + max_lines - 1)
    return start, end, "\n".join(lines[start - 1 : end])
