"""`second_opinions`: the same question to top candidates of different vendors, in parallel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anyio

from cadre_core.config import Candidate
from cadre_core.errors import CadreError, no_model_message, one_of
from cadre_core.kit import Kit
from cadre_core.models.base import Message, ModelRequest
from cadre_core.models.refs import is_host, parse_model_ref
from cadre_core.results import shown_model
from cadre_core.workspace import Workspace
from cadre_oracle.answers import OracleAnswer
from cadre_oracle.consult import first_request
from cadre_oracle.prompts import SYNTHESIS

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.mcpserver import Context


def pick_candidates(kit: Kit, n: int) -> list[Candidate]:
    """The first keyed oracle candidate of each of `n` different vendors; with no key at all, the host's
    model (`sampling:host`) alone, when the route has it."""
    chosen, vendors, host = [], set(), None
    for candidate, why in kit.router.availability("oracle"):
        provider = parse_model_ref(candidate.model)[0]
        if provider == "sampling":
            host = host or candidate
        elif why is None and provider not in vendors:
            chosen.append(candidate)
            vendors.add(provider)
            if len(chosen) == n:
                return chosen
    if not chosen and host is not None:
        return [host]
    missing = kit.router.missing_keys("oracle")
    if not chosen:
        raise CadreError(no_model_message("second opinions", missing or ["a provider key"]))
    more = f"set {one_of(missing)} for another" if missing else "add oracle candidates of other vendors in cadre.toml"
    raise CadreError(
        f"second_opinions needs {n} vendors with keys but found {len(chosen)} ({', '.join(sorted(vendors))}); {more}"
    )


async def second_opinions(
    kit: Kit,
    ctx: Context | None,
    ws: Workspace,
    *,
    question: str,
    files: list[str] | None = None,
    n: int = 2,
    host_sample: mcp_types.CreateMessageResult | None = None,
) -> dict[str, Any]:
    """Each vendor's answer with its cost, plus a synthesis of agreement and differences. With no provider
    key, the host's model gives the one answer (`host_sample`: its reply to `first_request`, MCP 2026-07-28)."""
    if n not in (2, 3):
        raise CadreError("n must be 2 or 3")
    candidates = pick_candidates(kit, n)
    request, notes = first_request(ws, question=question, files=files, context=None, mode="ask", effort=None)
    answers: list[dict[str, Any] | None] = [None] * len(candidates)
    try:
        thread_id: str | None = kit.threads.create("oracle", "second_opinions")  # `cadre trace` shows every answer
    except CadreError as exc:  # the thread only serves tracing: answer without it
        thread_id = None
        notes.append(f"not traceable by thread: {exc}")
    hosted = is_host(candidates[0].model)

    async def ask(index: int, candidate: Candidate) -> None:
        call = kit.new_call("second_opinions", thread_id)
        try:
            response = await kit.call_model(
                ctx, request, tool="second_opinions", call=call, host_sample=host_sample,
                candidates=None if hosted else [candidate],  # the whole route: its error names the keys to set
            )  # fmt: skip
        except CadreError as exc:  # one vendor failing must not lose the others' answers
            if hosted:
                raise
            answers[index] = {"model": candidate.model, "error": str(exc), "cost_usd": call.cost_usd}
            return
        answer = OracleAnswer.model_validate(response.output)
        answers[index] = {
            "model": shown_model(response.model),
            "answer": answer.answer,
            "key_points": answer.key_points,
            "confidence": answer.confidence,
            "cost_usd": call.cost_usd,
        }

    async with anyio.create_task_group() as tg:
        for index, candidate in enumerate(candidates):
            tg.start_soon(ask, index, candidate)
    done = [a for a in answers if a is not None and "answer" in a]
    synthesis = ""
    if len(done) >= 2:
        listing = "\n\n".join(f"## {a['model']}\n{a['answer']}" for a in done)
        synth = ModelRequest([Message.user(f"Question:\n{question}\n\n{listing}")], system=SYNTHESIS, effort="low")
        call = kit.new_call("second_opinions", thread_id)
        try:
            response = await kit.call_model(ctx, synth, tool="second_opinions", call=call)
            synthesis = response.text.strip()
        except CadreError as exc:  # the answers are paid for: keep them
            notes.append(f"no synthesis: {exc}")
    elif hosted:
        keys = one_of(kit.router.missing_keys("oracle") or ["a provider key"])
        notes.append(f"no provider key is set, so this is one opinion, from your host's model, not several "
                     f"vendors; set {keys} for opinions from two or three vendors")  # fmt: skip
    else:
        notes.append("fewer than two answers arrived, so there is no synthesis")
    return {
        "answers": [a for a in answers if a is not None],
        "synthesis": synthesis,
        "thread_id": thread_id,
        **({"notes": notes} if notes else {}),
    }
