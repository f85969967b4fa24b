"""`cadre call SERVER TOOL`: try a tool through a real MCP client, over stdio or streamable HTTP."""

from __future__ import annotations

import json
import os
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from cadre_core.errors import CadreError, single_failure
from cadre_core.servers import lookup

TOKEN_ENV = "CADRE_TOKEN"  # noqa: S105 - the name of the variable, not a token
TOKEN_HINT = f"set {TOKEN_ENV} or pass --token-file"


def parse_arguments(text: str | None) -> dict[str, Any]:
    """The tool arguments from `--json`; a clear error when they are not a JSON object."""
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        example = """--json '{"query": "retry"}'"""
        raise CadreError(f"--json is not valid JSON ({exc}); pass an object, e.g. {example}") from None
    if not isinstance(value, dict):
        raise CadreError('--json must be a JSON object of tool arguments, e.g. \'{"query": "retry"}\'')
    return value


def bearer_token(token_file: Path | None) -> str | None:
    """The token for `--url`: the first line of `--token-file`, else `$CADRE_TOKEN`, else None."""
    if token_file is not None:
        try:
            token = token_file.read_text("utf-8").strip().splitlines()[0:1]
        except OSError as exc:
            raise CadreError(f"cannot read --token-file {token_file}: {exc.strerror}") from None
        if not token or not token[0].strip():
            raise CadreError(f"--token-file {token_file} is empty; put the bearer token on its first line")
        return token[0].strip()
    return os.environ.get(TOKEN_ENV, "").strip() or None


def target(args: Any, stack: ExitStack, statuses: list[int]) -> Any:
    """The transport: streamable HTTP to `--url` (with a bearer token when one is set), or the server spawned
    over stdio with the caller's whole environment; its stderr shows only with `--verbose`.

    HTTP error statuses are appended to `statuses`: the SDK turns a 401 into a generic error."""
    if args.url:
        from mcp.client.streamable_http import streamable_http_client
        from mcp.shared._httpx_utils import create_mcp_http_client

        token = bearer_token(args.token_file)
        headers = {"Authorization": f"Bearer {token}"} if token else None
        http = create_mcp_http_client(headers=headers)

        async def record(response: Any) -> None:
            if response.status_code >= 400:
                statuses.append(response.status_code)

        http.event_hooks["response"].append(record)
        return streamable_http_client(args.url, http_client=http)
    from mcp import StdioServerParameters
    from mcp.client.stdio import stdio_client

    server = lookup(args.server, hint=" (or --url)")
    root = args.call_root or args.root
    extra = ["--root", str(root)] if root else []
    # The SDK passes only HOME, PATH and a few more unless given `env`: keys, base URLs, CADRE_* and XDG_*
    # would never reach the server, and its ledger would land where `cadre cost` does not look.
    params = StdioServerParameters(command=sys.executable, args=["-m", server.package, *extra], env=dict(os.environ))
    errlog = sys.stderr if args.verbose else stack.enter_context(open(os.devnull, "w"))  # noqa: SIM115
    return stdio_client(params, errlog=errlog)


async def call(args: Any) -> tuple[bool, Any]:
    """(is_error, payload) of one tool call."""
    from mcp import Client

    arguments = parse_arguments(args.json)

    async def show_progress(progress: float, total: float | None, message: str | None) -> None:
        if sys.stderr.isatty():
            from cadre_app.cli.render import plain

            print(f"\r{plain(message or progress)}", end="", file=sys.stderr, flush=True)

    result, names = None, []
    statuses: list[int] = []
    try:
        with ExitStack() as stack:
            async with Client(target(args, stack, statuses), read_timeout_seconds=args.timeout) as client:
                names = [t.name for t in (await client.list_tools()).tools]
                if args.tool in names:
                    result = await client.call_tool(args.tool, arguments, progress_callback=show_progress)
    except CadreError:
        raise
    except Exception as exc:  # connection refused, 401, server crashed on start, bad URL...
        raise connection_error(args, exc, statuses) from None
    if result is None:  # raised out here: inside the client it would arrive wrapped in a task group
        raise CadreError(f"{args.server} has no tool '{args.tool}'; its tools are {', '.join(names) or 'none'}")
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    return result.is_error, result.structured_content if result.structured_content is not None else text


def connection_error(args: Any, exc: BaseException, statuses: list[int]) -> CadreError:
    """What went wrong talking to the server, in one line that names it and what to change."""
    import httpx2

    where = args.url or f"cadre-{args.server.removeprefix('cadre-')}"
    exc = single_failure(exc)
    if isinstance(exc, CadreError):
        return exc
    if 401 in statuses:
        sent = "the token was refused" if (args.token_file or os.environ.get(TOKEN_ENV)) else "none was sent"
        return CadreError(f"{where}: the server wants a token ({sent}): {TOKEN_HINT}")
    if statuses:
        return CadreError(f"{where} answered HTTP {statuses[0]}; check the URL (e.g. .../search/mcp)")
    if isinstance(exc, httpx2.ConnectError | OSError):
        return CadreError(f"could not connect to {where}: {exc}; is the server running?")
    return CadreError(f"could not talk to {where}: {type(exc).__name__}: {exc}")


def failure_text(tool: str, payload: Any) -> str:
    """The tool's error without the SDK's own `Error executing tool X:` prefix (ours says it once)."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return text.removeprefix(f"Error executing tool {tool}:").strip()


def run(args: Any) -> int:
    import anyio

    from cadre_app.cli.render import plain

    is_error, payload = anyio.run(call, args)
    if is_error:  # plain(): a model's or server's escape sequences are shown, never sent to the terminal
        print(f"cadre: {args.tool} failed: {plain(failure_text(args.tool, payload))}", file=sys.stderr)
        return 1
    print(plain(json.dumps(payload, indent=2, ensure_ascii=False) if not isinstance(payload, str) else payload))
    return 0
