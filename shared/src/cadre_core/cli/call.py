"""`cadre call SERVER TOOL`: try a tool through a real MCP client, over stdio or streamable HTTP."""

from __future__ import annotations

import json
import sys
from typing import Any

from cadre_core.errors import CadreError

SERVERS = ("oracle", "librarian", "search")


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


def target(args: Any) -> Any:
    """What the client connects to: the server's URL, or its console script spawned over stdio."""
    if args.url:
        return args.url
    from mcp import StdioServerParameters

    name = args.server.removeprefix("cadre-")
    if name not in SERVERS:
        raise CadreError(f"unknown server '{args.server}'; use one of {', '.join(SERVERS)} (or --url)")
    extra = ["--root", str(args.call_root or args.root)] if (args.call_root or args.root) else []
    return StdioServerParameters(command=sys.executable, args=["-m", f"cadre_{name}", *extra])


async def call(args: Any) -> tuple[bool, Any]:
    """(is_error, payload) of one tool call."""
    from mcp import Client

    arguments = parse_arguments(args.json)

    async def progress(done: float, total: float | None, message: str | None) -> None:
        if sys.stderr.isatty():
            print(f"\r{message or done}", end="", file=sys.stderr, flush=True)

    result, names = None, []
    async with Client(target(args), read_timeout_seconds=args.timeout) as client:
        names = [t.name for t in (await client.list_tools()).tools]
        if args.tool in names:
            result = await client.call_tool(args.tool, arguments, progress_callback=progress)
    if result is None:  # raised out here: inside the client it would arrive wrapped in a task group
        raise CadreError(f"{args.server} has no tool '{args.tool}'; its tools are {', '.join(names) or 'none'}")
    text = "\n".join(getattr(block, "text", "") for block in result.content)
    return result.is_error, result.structured_content if result.structured_content is not None else text


def run(args: Any) -> int:
    import anyio

    try:
        is_error, payload = anyio.run(call, args)
    except CadreError:
        raise
    except Exception as exc:  # connection refused, server crashed on start, bad URL...
        where = args.url or f"cadre-{args.server.removeprefix('cadre-')}"
        leaf = exc.exceptions[0] if isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1 else exc
        raise CadreError(f"could not talk to {where}: {type(leaf).__name__}: {leaf}") from None
    if is_error:
        print(f"cadre: {args.tool} failed: {payload}", file=sys.stderr)
        return 1
    print(json.dumps(payload, indent=2, ensure_ascii=False) if not isinstance(payload, str) else payload)
    return 0
