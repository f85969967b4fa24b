"""Team registry files: MCP Registry `server.json` (schema 2025-12-11) out, host installs in."""

from __future__ import annotations

import json
import sys
from functools import cache
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from cadre_app.install import KEY_VARS, ServerEntry
from cadre_core.errors import CadreError
from cadre_core.servers import installed, lookup

SCHEMA_URL = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"
NAMESPACE = "io.github.cadre-ai"
KEY_NOTES = {
    "OPENAI_API_KEY": "OpenAI API key",
    "ANTHROPIC_API_KEY": "Anthropic API key",
    "GEMINI_API_KEY": "Google Gemini API key",
}
TOKEN_VAR = "CADRE_TOKEN"  # noqa: S105 - the name of an env var, not a secret


@cache
def schema() -> dict[str, Any]:
    text = resources.files("cadre_app").joinpath("data/server.schema.2025-12-11.json").read_text("utf-8")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def validate(document: Any, label: str) -> None:
    """Raise a `CadreError` naming the first schema violation and where it is."""
    import jsonschema

    errors = sorted(jsonschema.Draft7Validator(schema()).iter_errors(document), key=lambda e: list(e.path))
    if errors:
        first = errors[0]
        where = "/".join(str(p) for p in first.absolute_path) or "(top level)"
        raise CadreError(f"{label} is not a valid server.json (schema 2025-12-11) at {where}: {first.message}")


def server_json(server: str, *, remote_url: str | None = None) -> dict[str, Any]:
    """The registry document for one Cadre server."""
    info = lookup(server)
    package = info.distribution
    try:
        package_version = version(package)
    except PackageNotFoundError:
        package_version = "0.1.0"
    document: dict[str, Any] = {
        "$schema": SCHEMA_URL,
        "name": f"{NAMESPACE}/{info.name}",
        "title": f"Cadre {info.name.capitalize()}",
        "description": info.description,
        "version": package_version,
        "packages": [
            {
                "registryType": "pypi",
                "identifier": package,
                "version": package_version,
                "runtimeHint": "uvx",
                "transport": {"type": "stdio"},
                "environmentVariables": [
                    {"name": var, "description": KEY_NOTES[var], "isRequired": False, "isSecret": True}
                    for var in KEY_VARS
                ],
            }
        ],
    }
    if remote_url:
        document["remotes"] = [
            {
                "type": "streamable-http",
                "url": f"{remote_url.rstrip('/')}/{info.name}/mcp",
                "headers": [
                    {
                        "name": "Authorization",
                        "description": "Bearer token for the team deployment",
                        "isRequired": True,
                        "isSecret": True,
                        "value": "Bearer {token}",
                        "variables": {
                            "token": {
                                "description": f"team token (env {TOKEN_VAR})",
                                "isRequired": True,
                                "isSecret": True,
                            }
                        },
                    }
                ],
            }
        ]
    validate(document, f"the generated server.json for {info.name}")
    return document


def export(out_dir: Path, servers: list[str], *, remote_url: str | None = None) -> list[Path]:
    """Write `<out>/<server>/server.json` for each server."""
    written = []
    for server in servers:
        path = out_dir / server / "server.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(server_json(server, remote_url=remote_url), indent=2) + "\n", "utf-8")
        written.append(path)
    return written


def entry_from(document: dict[str, Any], label: str, *, prefer_remote: bool = False) -> ServerEntry:
    """How to run a registry server on this machine: the local console script, uvx, or its remote."""
    validate(document, label)
    name = document["name"].rsplit("/", 1)[-1]
    entry_name = name if name.startswith("cadre-") else f"cadre-{name}" if name in installed() else name
    remotes = [r for r in document.get("remotes", []) if r.get("type") == "streamable-http"]
    packages = [p for p in document.get("packages", []) if p.get("transport", {}).get("type") == "stdio"]
    if remotes and (prefer_remote or not packages):
        remote = remotes[0]
        secret_headers = {h["name"]: TOKEN_VAR for h in remote.get("headers", []) if h.get("isSecret")}
        return ServerEntry(entry_name, "", url=remote["url"], header_vars=secret_headers, key_vars=())
    if not packages:
        raise CadreError(f"{label} has neither a stdio package nor a streamable-http remote to install")
    package = packages[0]
    env = package.get("environmentVariables", [])
    key_vars = tuple(v["name"] for v in env if v.get("isSecret") or "value" not in v)
    literal = {v["name"]: v["value"] for v in env if "value" in v and not v.get("isSecret")}
    literal |= {v["name"]: v["value"] for v in env if "value" in v and v.get("isSecret")}
    identifier = package["identifier"]
    local = Path(sys.executable).parent / identifier
    if local.exists():
        command, args = str(local), []
    elif package.get("registryType") == "pypi":
        pinned = f"{identifier}=={package['version']}" if package.get("version") else identifier
        command, args = "uvx", ["--from", pinned, identifier]
    else:
        raise CadreError(f"{label}: only pypi packages can be installed here (got {package.get('registryType')})")
    return ServerEntry(entry_name, command, args, key_vars=key_vars, literal_env=literal)


def load(path: Path) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads(path.read_text("utf-8"))
        return data
    except OSError as exc:
        raise CadreError(f"cannot read {path}: {exc.strerror}") from exc
    except ValueError as exc:
        raise CadreError(f"{path} is not valid JSON ({exc})") from None
