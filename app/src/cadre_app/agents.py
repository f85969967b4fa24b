"""Claude Code subagents for Cadre's servers and an AGENTS.md snippet, so the host delegates at the right moments.

A subagent is a Markdown file with YAML frontmatter (`name`, `description`, `tools`) in `.claude/agents/` (project)
or `~/.claude/agents/` (user); Claude Code picks one by its description, and an MCP tool is named
`mcp__<server>__<tool>` (code.claude.com/docs/en/sub-agents, "File format"; code.claude.com/docs/en/mcp).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from cadre_app.install import Plan

BEGIN, END = "<!-- cadre:begin -->", "<!-- cadre:end -->"
READING = ("Read", "Grep", "Glob")


@dataclass(frozen=True)
class Agent:
    server: str
    tools: tuple[str, ...]
    """The server's MCP tools the subagent may call (beside reading files)."""
    description: str
    """When Claude Code should delegate: it matches tasks against this."""
    body: str
    when: str
    """The AGENTS.md line for this server."""


AGENTS = (
    Agent(
        "cadre-oracle",
        ("consult_oracle", "oracle_result", "review_change", "second_opinions"),
        "Second opinion from a strong model of another vendor. Use proactively to review a plan before building "
        "it, when debugging is stuck after two attempts, for a hard design decision, or to review a change "
        "before it is committed.",
        "You put the question to the oracle and report its answer. Name the files that matter in `files` rather "
        "than pasting them; use mode `plan`, `debug`, `decide` or `review` to match the task, and `review_change` "
        "for a diff. Report the answer, its caveats and the files it cites; do not edit files.",
        "Review a plan before building it, get unstuck when debugging fails twice, or review a change: "
        "`cadre-oracle` (`consult_oracle`, `review_change`).",
    ),
    Agent(
        "cadre-librarian",
        ("research", "read_source", "find_examples", "read_result"),
        "Answers questions about third-party libraries and APIs from their real source, with citations. Use "
        "proactively when a task depends on how a library behaves, how to call it, or what changed between "
        "versions.",
        "You answer library questions with `research`, then check the key claim with `read_source` at the cited "
        "lines, or find real usage with `find_examples`. Report the answer with its citations (file and lines); "
        "say plainly when the source does not settle it.",
        "Library or API questions (how to call it, why it behaves so, what changed): `cadre-librarian` (`research`).",
    ),
    Agent(
        "cadre-search",
        ("search_codebase", "find_symbol"),
        "Finds the code that matters in this workspace, ranked. Use proactively before grepping or reading many "
        "files: to locate where something is implemented, defined or used, or where an error comes from.",
        "You locate code with `search_codebase` (words, identifiers or a pasted error) and `find_symbol` for a "
        "definition, and read only the hits that matter. Report paths with line ranges and one line on each.",
        "Large searches (where is this implemented, defined or used; where does this error come from): "
        "`cadre-search` (`search_codebase`).",
    ),
    Agent(
        "cadre-vision",
        ("analyze_visual",),
        "Reads screenshots, PDFs and diagrams with a strong multimodal model. Use proactively to check a UI "
        "screenshot against what was asked, read an error dialog or a chart in an image, take facts from a "
        "spec PDF's pages, or follow an architecture diagram.",
        "You ask `analyze_visual` one focused question about the files, by their workspace paths: PNG, JPEG, "
        "WebP or GIF images, PDFs (with `pages` like `1-3,5` for long ones), SVG or Mermaid/DOT sources. "
        "Report the answer, the observations with their region or page, and the confidence; say what could "
        "not be read; do not edit files.",
        "Screenshots, PDFs and diagrams (check a UI screenshot, read a chart or a spec PDF's pages, follow an "
        "architecture diagram): `cadre-vision` (`analyze_visual`).",
    ),
)


def agent_file(agent: Agent) -> str:
    """The subagent's Markdown, frontmatter first."""
    tools = ", ".join([f"mcp__{agent.server}__{tool}" for tool in agent.tools] + list(READING))
    description = json.dumps(agent.description)  # a JSON string is a YAML double-quoted scalar
    return f"---\nname: {agent.server}\ndescription: {description}\ntools: {tools}\n---\n\n{agent.body}\n"


def snippet(agents: list[Agent]) -> str:
    lines = [BEGIN, "## When to delegate to Cadre", "", *(f"- {a.when}" for a in agents), END]
    return "\n".join(lines) + "\n"


def merge_snippet(text: str | None, block: str) -> str:
    """`text` with Cadre's block replaced between its markers, or appended once when it has none."""
    if not text:
        return block
    pattern = re.compile(re.escape(BEGIN) + r".*?" + re.escape(END) + r"\n?", re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text, count=1)
    return text.rstrip("\n") + "\n\n" + block


def plan_agents(servers: list[str], agents_dir: Path, instructions: Path) -> list[Plan]:
    """Plans for the subagent files of `servers` (console script names) and the AGENTS.md snippet."""
    chosen = [a for a in AGENTS if a.server in servers]
    plans = []
    for agent in chosen:
        path = agents_dir / f"{agent.server}.md"
        before = path.read_text("utf-8") if path.exists() else None
        plans.append(Plan(path, before, agent_file(agent), []))
    if chosen:
        before = instructions.read_text("utf-8") if instructions.exists() else None
        plans.append(Plan(instructions, before, merge_snippet(before, snippet(chosen)), []))
    return plans
