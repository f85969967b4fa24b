"""generate_image: a PNG from a prompt, drawn by an image model whose price the catalog knows, written into
the workspace without ever replacing a file.

The route is `[roles.image]` when configured, else OpenAI's `gpt-image-1-mini` (the Images API; the price
catalog lists its image output at $8 per million tokens). The budget reserves the documented output tokens
of the size at medium quality, and the route writes the ledger row, as for any model call.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from cadre_core.errors import CadreError, clip
from cadre_core.files import is_secret_path
from cadre_core.models.base import Message, ModelRequest
from cadre_vision.visuals import dimensions, sniff

if TYPE_CHECKING:
    from mcp.server.mcpserver import Context

    from cadre_core.config import Candidate
    from cadre_core.kit import Kit
    from cadre_core.workspace import Workspace

ROLE = "image"
DEFAULT_MODEL = "openai:gpt-image-1-mini"
SIZES = ("1024x1024", "1024x1536", "1536x1024")
"""The sizes every GPT Image model takes (platform.openai.com/docs/api-reference/images/create)."""


def image_candidates(kit: Kit) -> list[Candidate]:
    """`[roles.image]` candidates, else the default; each must be a GPT Image model with a known price, so
    that its cost can be counted and capped."""
    from cadre_core.config import Candidate
    from cadre_core.models.refs import is_image_model, parse_model_ref
    from cadre_core.pricing import has_price, prices_image_output_apart

    role = kit.router.role_config(ROLE)
    candidates = list(role.candidates) if role else [Candidate(model=DEFAULT_MODEL)]
    for candidate in candidates:
        provider, name = parse_model_ref(candidate.model)
        if not is_image_model(provider, name):
            raise CadreError(f"[roles.image] lists '{candidate.model}', which is no OpenAI GPT Image model; "
                             f"use one such as '{DEFAULT_MODEL}'")  # fmt: skip
        if not has_price(provider, name) or prices_image_output_apart(provider, name):
            raise CadreError(f"no price Cadre can count is known for '{candidate.model}' (none, or a separate "
                             f"image output price); use a model such as '{DEFAULT_MODEL}'")  # fmt: skip
    return candidates


def free_path(ws: Workspace, path_text: str) -> tuple[Path, str | None]:
    """Where to write: the workspace path asked for, or, when a file is there, the first free `<stem>-N.png`
    beside it, with a note saying so. Refuses a path outside the workspace, a secret-looking one, or one
    not ending in `.png`."""
    path = ws.resolve(path_text)
    rel = ws.relative(path)
    if path.suffix.lower() != ".png":
        raise CadreError(f"'{clip(rel)}' must end in .png: the image is written as PNG")
    if is_secret_path(rel):
        raise CadreError(f"'{clip(rel)}' looks like a secret file's path; pick another")
    folder = next(p for p in path.parents if p.exists())  # checked before the image is paid for
    if not folder.is_dir():
        raise CadreError(f"'{clip(ws.relative(folder))}' is a file, not a folder; pick another path")
    chosen = path
    number = 1
    while chosen.exists() or chosen.is_symlink():
        chosen = path.with_name(f"{path.stem}-{number}{path.suffix}")
        number += 1
    note = None if chosen == path else f"'{rel}' exists and is kept; wrote '{ws.relative(chosen)}' instead"
    return chosen, note


async def generate_image(
    kit: Kit, ctx: Context | None, ws: Workspace, *, prompt: str, path: str, size: str
) -> dict[str, Any]:
    """Draw the image and write it; the written path, its size and the model (`tool_errors` adds the cost)."""
    import anyio

    from cadre_core.results import shown_model

    if not prompt.strip():
        raise CadreError("the prompt is empty; describe the image to draw")
    if size not in SIZES:
        raise CadreError(f"size '{clip(size)}' is not offered; use one of {', '.join(SIZES)}")
    from cadre_core.models.openai_images import OUTPUT_TOKENS

    target, note = await anyio.to_thread.run_sync(lambda: free_path(ws, path))
    request = ModelRequest([Message.user(prompt)], image_size=size, max_output_tokens=OUTPUT_TOKENS[size])
    candidates = image_candidates(kit)
    response = await kit.call_model(ctx, request, tool="generate_image", role=ROLE, candidates=candidates)
    png = response.images[0].data if response.images else b""
    if sniff(png[:16]) != "image/png":
        raise CadreError(f"{shown_model(response.model)} sent no PNG image; try again or another model")
    width, height = dimensions(png, "image/png")
    written, note = await anyio.to_thread.run_sync(lambda: _write_new(ws, target, png, note))
    return {
        "path": ws.relative(written),
        "size": f"{width}x{height}",
        "bytes": len(png),
        "model": shown_model(response.model),
        **({"notes": [note]} if note else {}),
    }


def _write_new(ws: Workspace, target: Path, png: bytes, note: str | None) -> tuple[Path, str | None]:
    """Write `png` to a file that did not exist (exclusive create: a file that appeared meanwhile is kept)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        for _ in range(100):
            try:
                with target.open("xb") as out:
                    out.write(png)
                return target, note
            except FileExistsError:
                asked = ws.relative(target)
                target, _ = free_path(ws, asked)
                note = f"'{asked}' appeared meanwhile and is kept; wrote '{ws.relative(target)}' instead"
    except OSError as exc:
        raise CadreError(f"could not write '{clip(ws.relative(target))}' ({exc.strerror}); pick another path") from None
    raise CadreError("no free file name beside the path; pick another path")
