"""The librarian's sources for one server: installed packages per workspace, GitHub, clones and pages.

Network backends open on first use, so a server that never leaves the installed packages never
imports an HTTP client or touches the network."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cadre_librarian.installed import Installed
from cadre_librarian.sources import Excerpt


class Library:
    def __init__(
        self,
        *,
        github: Any = None,
        clones: Any = None,
        web: Any = None,
        environ: dict[str, Any] | None = None,
        allow_private_urls: bool = False,
        storage_url: str | None = None,
    ):
        """`storage_url`: the shared PostgreSQL (`[storage] url`) that also holds the GitHub response cache."""
        self._github, self._clones, self._web = github, clones, web
        self.environ = environ
        self.allow_private_urls = allow_private_urls
        self.storage_url = storage_url
        self._installed: dict[tuple[Path, ...], Installed] = {}

    def installed(self, roots: list[Path]) -> Installed:
        """The packages installed for these workspace roots (looked up once per roots)."""
        key = tuple(Path(r).resolve() for r in roots)
        if key not in self._installed:
            self._installed[key] = Installed(list(key), environ=self.environ)
        return self._installed[key]

    @property
    def github(self) -> Any:
        if self._github is None:
            from cadre_librarian.github import GitHub

            self._github = GitHub.from_env(self.environ, cache_url=self.storage_url)
        return self._github

    @property
    def clones(self) -> Any:
        if self._clones is None:
            from cadre_librarian.clones import Clones

            self._clones = Clones()
        return self._clones

    @property
    def web(self) -> Any:
        if self._web is None:
            from cadre_librarian.web import Web

            self._web = Web(allow_private=self.allow_private_urls)
        return self._web

    @property
    def has_github_token(self) -> bool:
        return bool(self.github.has_token)

    async def aclose(self) -> None:
        for backend in (self._github, self._web):
            if backend is not None:
                await backend.aclose()
        if self._clones is not None:
            self._clones.close()


def release_excerpt(repo: str, release: dict[str, Any]) -> Excerpt:
    """A release's notes as a citable excerpt (path `releases/<tag>`)."""
    body = (release.get("body") or "").strip() or "(no release notes)"
    lines = body.split("\n")
    return Excerpt(
        source="github",
        package_or_repo=repo,
        version_or_ref=release.get("tag"),
        path=f"releases/{release.get('tag')}",
        start_line=1,
        end_line=len(lines),
        text="\n".join(lines),
        url=release.get("url"),
    )
