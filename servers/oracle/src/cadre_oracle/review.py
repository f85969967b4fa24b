"""`review_change` as a plain async function: a diff (given or from git) reviewed by the review role."""

from __future__ import annotations

import subprocess
from typing import Any

import anyio

from cadre_core.errors import CadreError
from cadre_core.kit import Kit
from cadre_core.models.base import Message, ModelRequest
from cadre_core.redact import redact
from cadre_core.results import shown_model, totals
from cadre_core.workspace import Workspace
from cadre_oracle.answers import Review, strict_schema, validator
from cadre_oracle.prompts import REVIEW

MAX_DIFF_CHARS = 400_000
REVIEW_SCHEMA = strict_schema(Review)


def git_diff(ws: Workspace, base: str | None) -> str:
    """`git diff <base>` in the first root (default HEAD: the working tree, staged or not)."""
    ref = base or "HEAD"
    if ref.startswith("-"):
        raise CadreError(f"base '{ref}' is not a git ref; pass a branch, tag or commit")
    try:
        done = subprocess.run(
            ["git", "-C", str(ws.primary), "diff", "--no-color", "--no-ext-diff", ref, "--"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError as exc:
        raise CadreError("git is not installed; pass the change as `diff` instead") from exc
    except subprocess.TimeoutExpired as exc:
        raise CadreError("git diff took over 60 s; pass the change as `diff` instead") from exc
    if done.returncode != 0:
        raise CadreError(f"git diff {ref} failed: {done.stderr.strip()[:300]}. Pass a valid `base` or a `diff`.")
    return done.stdout


async def review_change(
    kit: Kit, ctx: Any, ws: Workspace, *, diff: str | None = None, base: str | None = None, focus: str | None = None
) -> dict[str, Any]:
    """Findings with severity, file and line for a change."""
    text = diff if diff and diff.strip() else await anyio.to_thread.run_sync(git_diff, ws, base, abandon_on_cancel=True)
    if not text.strip():
        raise CadreError(f"there is nothing to review: no changes against {base or 'HEAD'}; pass `diff` or `base`")
    notes = []
    if len(text) > MAX_DIFF_CHARS:
        notes.append(f"diff truncated to its first {MAX_DIFF_CHARS:,} characters")
        text = text[:MAX_DIFF_CHARS]
    text = redact(text)[0]
    prompt = f"Focus: {focus}\n\n" if focus else ""
    request = ModelRequest(
        [Message.user(f"{prompt}Change to review (unified diff):\n{text}")],
        system=REVIEW,
        output_schema=REVIEW_SCHEMA,
        schema_name="review",
        validate=validator(Review),
    )
    try:
        thread_id: str | None = kit.threads.create("review", "review_change")  # so `cadre trace` shows it
    except CadreError as exc:  # the thread only serves tracing: review without it
        thread_id = None
        notes.append(f"not traceable by thread: {exc}")
    call = kit.new_call("review_change", thread_id)
    response = await kit.call_model(ctx, request, tool="review_change", role="review", call=call)
    cost, tokens = totals(call)
    review = Review.model_validate(response.output)
    order = {"blocker": 0, "major": 1, "minor": 2, "nit": 3}
    findings = sorted((f.model_dump() for f in review.findings), key=lambda f: (order[f["severity"]], f["path"]))
    return {
        "summary": review.summary,
        "findings": findings,
        "model": shown_model(response.model),
        "cost_usd": cost,
        "tokens": tokens,
        "thread_id": thread_id,
        **({"notes": notes} if notes else {}),
    }
