"""The one list of Cadre's servers: each server's distribution advertises the fields of a `ServerInfo` (a
plain dict in its `about.py`) under the `cadre.servers` entry point group, and the app (`up`, `install`,
`call`, `eval`, `doctor`) reads them here.

Nothing is imported at import time; `installed()` reads the entry points once and loads only the small
`about` modules, never a server.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache

from cadre_core.errors import CadreError, clip

GROUP = "cadre.servers"


@dataclass(frozen=True)
class ServerInfo:
    """What the app needs to know about one server, without importing it."""

    name: str
    """Short name: `cadre call oracle`, the `/oracle/mcp` path of `cadre up`."""
    module: str
    """The module whose `create_server(root=...)` builds the MCP server."""
    tool: str
    """The primary tool, the one the default role answers through."""
    role: str
    """The default role (a `[roles.<role>]` table in cadre.toml)."""
    script: str
    """The console script, which is also the MCP server's name: `cadre-oracle`."""
    description: str
    """One line for the MCP Registry's server.json."""
    other_roles: dict[str, str] = field(default_factory=dict)
    """Further roles this server answers, each through one tool: role -> tool."""
    distribution: str = ""
    """The distribution that advertises it (filled in from the entry point)."""

    @property
    def package(self) -> str:
        """The import package, runnable as `python -m <package>`."""
        return self.module.partition(".")[0]

    @property
    def roles(self) -> dict[str, str]:
        """Every role this server answers: role -> tool, the default role first."""
        return {self.role: self.tool, **self.other_roles}


@cache
def installed() -> dict[str, ServerInfo]:
    """Every installed server by short name, sorted by name."""
    from importlib.metadata import entry_points

    found: dict[str, ServerInfo] = {}
    for point in entry_points(group=GROUP):
        fields = point.load()
        info: ServerInfo | TypeError
        try:
            info = ServerInfo(**fields)
        except TypeError as exc:
            info = exc
        if not isinstance(info, ServerInfo) or info.name != point.name:
            raise CadreError(
                f"entry point '{point.name} = {point.value}' in group {GROUP} is not the fields of a ServerInfo "
                f"named '{point.name}' ({info}); fix that distribution's about.py or pyproject.toml"
            )
        found[info.name] = replace(info, distribution=point.dist.name if point.dist else info.script)
    return dict(sorted(found.items()))


def lookup(name: str, hint: str = "") -> ServerInfo:
    """The server called `name` (`oracle` or `cadre-oracle`); a `CadreError` listing the installed ones if none."""
    servers = installed()
    info = servers.get(name.removeprefix("cadre-"))
    if info is None:
        raise CadreError(f"unknown server '{clip(name)}'; use one of {', '.join(servers) or '(none installed)'}{hint}")
    return info
