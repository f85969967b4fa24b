"""`review_change` as a plain async function: a diff (given or from git) reviewed by the review role."""

from __future__ import annotations

import re
import subprocess
from typing import TYPE_CHECKING, Any

import anyio

from cadre_core.errors import CadreError, clip
from cadre_core.files import SECRET_DIRS, SECRET_PATTERNS, is_secret_path, looks_like_secret_file
from cadre_core.kit import Kit
from cadre_core.models.base import Message, ModelRequest
from cadre_core.redact import redact
from cadre_core.results import shown_model
from cadre_core.workspace import Workspace
from cadre_oracle.answers import Review, strict_schema, validator
from cadre_oracle.prompts import REVIEW

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.mcpserver import Context

MAX_DIFF_CHARS = 400_000
MAX_REF_CHARS = 256
REVIEW_SCHEMA = strict_schema(Review)
EXCLUDE_SECRETS = [f":(exclude,glob,icase)**/{p}" for p in SECRET_PATTERNS] + [
    f":(exclude,glob,icase)**/{d}/**" for d in sorted(SECRET_DIRS)
]
"""git pathspecs that keep secret files out of `git diff` (gitglossary: a leading `**/` matches in every
directory, the root included)."""
_FILE_HEADER = re.compile(r"^diff --git a/(.*?) b/(.*)$", re.MULTILINE)


def git_diff(ws: Workspace, base: str | None) -> str:
    """`git diff <base>` of the first root and nothing above it (pathspec `.`: a workspace may be one folder of
    a bigger repository), by default against HEAD: the working tree, staged or not."""
    ref = base or "HEAD"
    if ref.startswith("-") or len(ref) > MAX_REF_CHARS or not ref.isprintable() or " " in ref:
        # a leading '-' would be read as an option (`--output=...`), whatever follows `git diff`
        raise CadreError(f"base '{clip(ref)}' is not a git ref; pass a branch, tag or commit")
    command = ["git", "-C", str(ws.primary), "diff", "--no-color", "--no-ext-diff", "--no-textconv", ref]
    try:
        done = subprocess.run(
            [*command, "--", ".", *EXCLUDE_SECRETS],
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
        raise CadreError(
            f"git diff {clip(ref)} failed: {clip(done.stderr.strip(), 300)}. Pass a valid `base` or a `diff`."
        )
    return done.stdout


def redact_diff(diff: str) -> tuple[str, list[str]]:
    """The diff without the sections of secret files (by path, or by what was added: a key, a credential
    JSON), each other file's section redacted by its own rules; and the paths left out."""
    headers = list(_FILE_HEADER.finditer(diff))
    if not headers:
        return redact(diff)[0], []
    parts = [redact(diff[: headers[0].start()])[0]]
    dropped: list[str] = []
    for header, after in zip(headers, [*headers[1:], None], strict=True):
        section = diff[header.start() : after.start() if after else len(diff)]
        old, new = header.group(1), header.group(2)
        added = "\n".join(line[1:] for line in section.split("\n") if line.startswith("+") and line[:4] != "+++ ")
        if is_secret_path(old) or is_secret_path(new) or looks_like_secret_file(added):
            dropped.append(new)
            continue
        parts.append(redact(section, filename=new)[0])
    return "".join(parts), dropped


def review_request(
    ws: Workspace, *, diff: str | None = None, base: str | None = None, focus: str | None = None
) -> tuple[ModelRequest, list[str]]:
    """The review request for a change and notes for the caller. Blocking (it may run git diff); built
    the same way in a Sample resolver and in the tool, so the host is asked exactly what the tool checks."""
    text = diff if diff and diff.strip() else git_diff(ws, base)
    if not text.strip():
        raise CadreError(
            f"there is nothing to review: no changes against {clip(base or 'HEAD')}; pass `diff` or `base`"
        )
    notes = []
    if len(text) > MAX_DIFF_CHARS:
        notes.append(f"diff truncated to its first {MAX_DIFF_CHARS:,} characters")
        text = text[:MAX_DIFF_CHARS]
    text, dropped = redact_diff(text)
    if dropped:
        notes.append(f"left out secret files: {', '.join(dropped[:10])}")
    prompt = f"Focus: {focus}\n\n" if focus else ""
    request = ModelRequest(
        [Message.user(f"{prompt}Change to review (unified diff):\n{text}")],
        system=REVIEW,
        output_schema=REVIEW_SCHEMA,
        schema_name="review",
        validate=validator(Review, host_prose=lambda text: {"summary": text, "findings": []}),
    )
    return request, notes


async def review_change(
    kit: Kit,
    ctx: Context | None,
    ws: Workspace,
    *,
    diff: str | None = None,
    base: str | None = None,
    focus: str | None = None,
    host_sample: mcp_types.CreateMessageResult | None = None,
) -> dict[str, Any]:
    """Findings with severity, file and line for a change.

    `host_sample` is the host model's reply to `review_request` (a Sample resolver, MCP 2026-07-28)."""
    request, notes = await anyio.to_thread.run_sync(
        lambda: review_request(ws, diff=diff, base=base, focus=focus), abandon_on_cancel=True
    )
    try:
        thread_id: str | None = kit.threads.create("review", "review_change")  # so `cadre trace` shows it
    except CadreError as exc:  # the thread only serves tracing: review without it
        thread_id = None
        notes.append(f"not traceable by thread: {exc}")
    call = kit.new_call("review_change", thread_id)
    response = await kit.call_model(
        ctx, request, tool="review_change", role="review", call=call, host_sample=host_sample
    )
    review = Review.model_validate(response.output)
    order = {"blocker": 0, "major": 1, "minor": 2, "nit": 3}
    findings = sorted((f.model_dump() for f in review.findings), key=lambda f: (order[f["severity"]], f["path"]))
    return {
        "summary": review.summary,
        "findings": findings,
        "model": shown_model(response.model),
        "thread_id": thread_id,
        **({"notes": notes} if notes else {}),
    }
