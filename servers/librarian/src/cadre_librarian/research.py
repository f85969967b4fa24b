"""`research` as a plain async function: seed evidence, run the bounded tool loop, check citations."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict, Field

from cadre_core.errors import AllCandidatesFailedError, CadreError
from cadre_core.kit import Kit
from cadre_core.models.base import Message, ModelRequest, ModelResponse
from cadre_core.results import shown_model
from cadre_core.structured import strict_schema, validator
from cadre_core.toolloop import kit_caller, tool_loop
from cadre_librarian.environments import normalize
from cadre_librarian.evidence import check_citations
from cadre_librarian.github_shapes import is_repo_name
from cadre_librarian.installed import search_package, source_repo
from cadre_librarian.sources import Excerpt, SourceError
from cadre_librarian.tools import DEFINITIONS, Desk, run_tool

if TYPE_CHECKING:
    import mcp_types
    from mcp.server.mcpserver import Context

    from cadre_core.call import CallInfo

ROLE = "librarian"
DEFAULT_TOOL_TURNS = 4
SEED_HITS = 4
SEED_SECONDS = 30.0
REPO_SECONDS = 90.0
NO_MODEL_HITS = 8
SYSTEM = """You are the librarian: you research how libraries really work by reading their source, \
release notes and docs, then answer a coding agent's question.

Rules:
- Read before answering. Use the tools; call several in one turn when they are independent.
- Prefer the installed version (search_installed, read_installed) when the question is about this project's \
dependencies; use GitHub (github_*) or clone_search for other versions, other repositories, history and \
release notes; fetch_page for documentation sites.
- "What changed between A and B": github_releases, github_compare, or the changelog at both refs.
- "Is X deprecated": look for deprecation warnings, decorators, docstrings and release notes.
- Every claim in the answer cites evidence with a marker [n]; citation n is the n-th item of `citations`.
- A citation names the evidence id shown before an excerpt (E1, E2, ...), the exact line range inside what \
you read, and a short quote copied verbatim from those lines.
- Say which version your answer is about. If the evidence does not answer the question, say so.
Answer in Markdown, concise, with short code examples where they help."""


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Cited(_Closed):
    evidence: str = Field(description="Evidence id, e.g. E3")
    start_line: int = Field(ge=1)
    end_line: int = Field(ge=1)
    quote: str = Field(min_length=1, description="A short verbatim quote from those lines")


class LibrarianAnswer(_Closed):
    answer: str = Field(min_length=1, description="Markdown answer with [n] citation markers")
    citations: list[Cited]


ANSWER_SCHEMA = strict_schema(LibrarianAnswer)


# fmt: off
COMMON_WORDS = frozenset({
    "api", "apis", "deprecated", "deprecation", "change", "changes", "changed", "version", "versions", "example",
    "examples", "use", "using", "used", "test", "tests", "types", "type", "python", "node", "library", "libraries",
    "package", "packages", "between", "does", "this", "that", "what", "when", "where", "which", "with", "from",
    "into", "about", "default", "config", "client", "server", "request", "response", "error", "errors",
})
# fmt: on
"""English words that are also package names on PyPI or npm; never taken as a library from the question."""
REPO_MENTION = re.compile(r"github\.com/([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)|`([A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9_.-]+)`")
"""A repository written as a github.com URL or as `owner/repo` in backticks."""


def named_libraries(desk: Desk, question: str, libraries: list[str] | None) -> list[str]:
    """The libraries asked about: as given; else installed package names in the question (not common
    words) and repositories written as a github.com URL or `owner/repo` in backticks."""
    if libraries:
        return [lib.strip() for lib in libraries if isinstance(lib, str) and lib.strip()][:6]
    installed = {normalize(p.name): p.name for p in desk.installed.packages()}
    words = re.findall(r"[A-Za-z][A-Za-z0-9_.-]*[A-Za-z0-9]", question)
    found = [installed[normalize(w)] for w in words
             if len(w) > 2 and w.lower() not in COMMON_WORDS and normalize(w) in installed]  # fmt: skip
    repos = [(url or quoted).removesuffix(".git") for url, quoted in REPO_MENTION.findall(question)]
    return list(dict.fromkeys([*found, *repos]))[:4]


Gathered = tuple[list[str], list[Excerpt], list[str]]
"""(library names, excerpts, notes) found before the model is asked."""


def gather(desk: Desk, question: str, libraries: list[str] | None, version: str | None, hits: int) -> Gathered:
    """(libraries, excerpts, notes): the named installed packages searched for the question, with notes on
    versions and where else to look. Blocking: run it in a worker thread."""
    names = named_libraries(desk, question, libraries)
    excerpts: list[Excerpt] = []
    notes: list[str] = []
    if not names:
        notes.append("no library named; pass libraries=[...] (installed package names or owner/repo)")
    for name in names:
        try:
            package = desk.installed.find(name)
        except SourceError as exc:
            if is_repo_name(name):
                notes.append(f"{name} is not installed here, so it is read from GitHub")
            else:
                notes.append(str(exc))
            continue
        repo = source_repo(package)
        line = f"{package.name} {package.version} is installed ({package.ecosystem})"
        if repo:
            line += f"; source repo {repo}"
        if version and version.lstrip("v") != package.version:
            line += f"; you asked about {version}: the installed code is {package.version}"
            if repo:
                line += f", read {repo} at tag v{version.lstrip('v')} or {version.lstrip('v')} on GitHub"
        notes.append(line)
        try:
            excerpts += search_package(desk.installed, package.name, question, hits)
        except Exception as exc:  # a broken index or unreadable package costs this library, not the call
            notes.append(f"searching {package.name} failed: {exc}")
    return names, excerpts, notes


async def seed(desk: Desk, question: str, libraries: list[str] | None, version: str | None, hits: int) -> Gathered:
    """`gather` in a worker thread under a time limit; on time-out the research goes on without it."""
    try:
        with anyio.fail_after(SEED_SECONDS):
            return await anyio.to_thread.run_sync(
                lambda: gather(desk, question, libraries, version, hits), abandon_on_cancel=True
            )
    except TimeoutError:
        names = [lib for lib in libraries or [] if isinstance(lib, str)]
        return names, [], [f"the first search of the installed packages took over {SEED_SECONDS:.0f} s; skipped"]


async def repo_evidence(desk: Desk, question: str, libraries: list[str]) -> tuple[list[Excerpt], list[str]]:
    """For the no-model path: GitHub repositories named in `libraries`, searched in a shallow clone."""
    excerpts: list[Excerpt] = []
    notes: list[str] = []
    repos = [name for name in libraries if is_repo_name(name)]
    for name in repos:
        try:
            with anyio.fail_after(REPO_SECONDS):
                if await anyio.to_thread.run_sync(desk.installed.has, name, abandon_on_cancel=True):
                    continue
                excerpts += await desk.library.clones.search(name, question, limit=4)
        except TimeoutError:
            notes.append(f"reading {name} from GitHub took over {REPO_SECONDS:.0f} s; skipped")
        except Exception as exc:
            notes.append(f"could not read {name} from GitHub: {exc}")
    return excerpts, notes


def opening(
    question: str, libraries: list[str], version: str | None, desk: Desk, excerpts: list[Excerpt], notes: list[str]
) -> str:
    parts = [f"Question:\n{question}"]
    if libraries:
        parts.append("Libraries: " + ", ".join(libraries) + (f" (version {version})" if version else ""))
    if notes:
        parts.append("What is known:\n" + "\n".join(f"- {n}" for n in notes))
    if excerpts:
        parts.append("First search results in the installed code:\n\n" + desk.show(excerpts))
    return "\n\n".join(parts)


async def research(
    kit: Kit,
    ctx: Context | None,
    desk: Desk,
    *,
    question: str,
    libraries: list[str] | None = None,
    version: str | None = None,
    thread_id: str | None = None,
    tool_turns: int | None = None,
    host_sample: mcp_types.CreateMessageResult | None = None,
) -> dict[str, Any]:
    """Answer `question` from real sources, every claim cited and every citation checked.

    `host_sample` is the host model's reply to `host_request` (a Sample resolver, MCP 2026-07-28)."""
    if not question or not question.strip():
        raise CadreError("the question is empty; ask what you want to know about a library, e.g. how X does Y")
    names, excerpts, notes = await seed(desk, question, libraries, version, SEED_HITS)
    thread_id, history = kit.open_thread(thread_id, "research")
    call = kit.new_call("research", thread_id)
    if not kit.keyed(ROLE):
        return await _without_tools(
            kit, ctx, desk, call, question, names, version, excerpts, notes, thread_id, history, host_sample
        )
    if tool_turns is None:
        role = kit.config.config.role_config(ROLE)
        tool_turns = role.max_tool_turns if role else DEFAULT_TOOL_TURNS
    request = ModelRequest(
        [*history, Message.user(opening(question, names, version, desk, excerpts, notes))],
        system=SYSTEM,
        output_schema=ANSWER_SCHEMA,
        schema_name="librarian_answer",
        validate=validator(LibrarianAnswer),
    )
    try:
        response, loop_notes = await _tool_loop(kit, ctx, desk, call, request, tool_turns)
    except CadreError as exc:
        if not desk.evidence.items:
            raise
        read = sorted(desk.evidence.items.values(), key=lambda e: -(e.score or 0))[:NO_MODEL_HITS]
        return evidence_result(desk, read, thread_id, [f"no synthesised answer: {exc}", *notes])
    return await _result(kit, desk, question, response, [*notes, *loop_notes], thread_id)


async def _tool_loop(
    kit: Kit, ctx: Context | None, desk: Desk, call: CallInfo, request: ModelRequest, turns: int
) -> tuple[ModelResponse, list[str]]:
    def gave_up(turns: int, looping: str | None) -> str:
        why = f" ({looping})" if looping else ""
        return (f"the librarian kept calling tools after {turns} turns without answering{why}; "
                "ask a narrower question or name the library and version")  # fmt: skip

    call.phase = "researching"
    return await tool_loop(
        kit_caller(kit, ctx, tool="research", call=call), replace(request, tools=DEFINITIONS), call=call,
        turns=turns, run_tool=lambda tool_call: run_tool(desk, tool_call), who="the librarian's reading",
        gave_up=gave_up,
    )  # fmt: skip


async def _result(
    kit: Kit, desk: Desk, question: str, response: ModelResponse, notes: list[str], thread_id: str
) -> dict[str, Any]:
    answer = LibrarianAnswer.model_validate(response.output)
    cited = [c.model_dump() for c in answer.citations]
    text, citations, citation_notes = await anyio.to_thread.run_sync(
        lambda: check_citations(desk.evidence, answer.answer, cited)
    )
    notes = [*notes, *citation_notes, *response.warnings]
    kit.save_turn(thread_id, [Message.user(question), Message.assistant(text)], model=response.model)
    out = {"answer": text, "citations": citations, "model": shown_model(response.model), "thread_id": thread_id}
    if notes:
        out["notes"] = notes
    return out


def host_request(
    desk: Desk,
    question: str,
    names: list[str],
    version: str | None,
    excerpts: list[Excerpt],
    notes: list[str],
    history: Sequence[Message] = (),
) -> tuple[ModelRequest, list[Excerpt]]:
    """The one request the host's model answers without tools: the ranked evidence and the citation rules.
    Built the same way in a Sample resolver and in the tool, so evidence ids (E1, ...) match."""
    ranked = sorted(excerpts, key=lambda e: -(e.score or 0))[:NO_MODEL_HITS]
    return ModelRequest(
        [*history, Message.user(opening(question, names, version, desk, ranked, notes))],
        system=SYSTEM.split("\n\nRules:")[0] + "\nAnswer only from the excerpts given. " + _CITE_RULE,
        output_schema=ANSWER_SCHEMA,
        schema_name="librarian_answer",
        validate=validator(LibrarianAnswer, host_prose=lambda t: {"answer": t, "citations": []}),
    ), ranked


async def _without_tools(
    kit: Kit,
    ctx: Context | None,
    desk: Desk,
    call: CallInfo,
    question: str,
    names: list[str],
    version: str | None,
    excerpts: list[Excerpt],
    notes: list[str],
    thread_id: str,
    history: list[Message],
    host: mcp_types.CreateMessageResult | None,
) -> dict[str, Any]:
    """No provider key: rank evidence without a model, then let the host's model (sampling) answer from
    it when the host offers that; otherwise return the evidence and say why."""
    if host is None:  # a pre-sampled host answer was given this evidence only: keep the ids aligned
        more, more_notes = await repo_evidence(desk, question, names)
        excerpts, notes = [*excerpts, *more], [*notes, *more_notes]
    else:
        history = []
    request, excerpts = host_request(desk, question, names, version, excerpts, notes, history)
    named_keys = False
    if excerpts:
        try:
            response = await kit.call_model(ctx, request, tool="research", call=call, host_sample=host)
            return await _result(kit, desk, question, response, notes, thread_id)
        except CadreError as exc:
            why = str(exc)
            named_keys = isinstance(exc, AllCandidatesFailedError) and bool(exc.missing_keys)
    else:
        why = "no evidence was found to answer from"
    notes = [f"no synthesised answer: {why}", *notes]
    if not kit.keyed(ROLE) and not named_keys:
        notes.append("set ANTHROPIC_API_KEY, OPENAI_API_KEY or GEMINI_API_KEY for full research")
    return evidence_result(desk, excerpts, thread_id, notes)


def evidence_result(desk: Desk, excerpts: list[Excerpt], thread_id: str, notes: list[str]) -> dict[str, Any]:
    """The partial result: ranked evidence, each excerpt citable as is, and why there is no answer."""
    return {
        "answer": None,
        "evidence": [{"id": desk.evidence.add(e), **e.citation(), "text": e.numbered()} for e in excerpts],
        "citations": [],
        "model": None,
        "thread_id": thread_id,
        "notes": notes,
    }


_CITE_RULE = (
    "Every claim cites evidence with a marker [n]; citation n names the evidence id (E1, ...), "
    "the line range and a short verbatim quote."
)
