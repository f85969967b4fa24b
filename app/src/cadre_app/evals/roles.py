"""Which server and tool each role is evaluated through, and how a task becomes tool arguments.

The roles come from the installed servers (`cadre_core.servers`); a server package is imported only when a
run starts.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadre_app.evals.suite import Task
from cadre_core.errors import EvalError
from cadre_core.servers import installed


def _oracle_args(task: Task) -> dict[str, Any]:
    files = {"files": sorted(task.files)} if task.files else {}
    return {"question": task.prompt, **files, **task.args}


def _search_args(task: Task) -> dict[str, Any]:
    return {"query": task.prompt, "mode": "deep", **task.args}


def _question_args(task: Task) -> dict[str, Any]:
    return {"question": task.prompt, **task.args}


def _review_args(task: Task) -> dict[str, Any]:
    return {"diff": task.prompt, **task.args}


def _answer(result: dict[str, Any]) -> str:
    return str(result.get("answer") or "")


def _review_text(result: dict[str, Any]) -> str:
    lines = [str(result.get("summary") or "")]
    for f in result.get("findings") or []:
        lines.append(f"{f.get('severity')} {f.get('path')}:{f.get('line')} {f.get('title')}: {f.get('explanation')}")
    return "\n".join(lines)


def _visual_text(result: dict[str, Any]) -> str:
    lines = [_answer(result)]
    lines += [f"{o.get('what')} ({o.get('region_or_page')})" for o in result.get("observations") or []]
    return "\n".join(lines)


@dataclass(frozen=True)
class RoleTarget:
    """A role's server (`module:create_server`), the tool its candidates answer through, and the answer text."""

    role: str
    package: str
    module: str
    tool: str
    arguments: Callable[[Task], dict[str, Any]]
    text: Callable[[dict[str, Any]], str]

    def create_server(self, root: Path) -> Any:
        """The real server over `root`, exactly as a host would get it."""
        try:
            module = importlib.import_module(self.module)
        except ImportError as exc:
            raise EvalError(
                f"the {self.role} server is not installed ({exc}); install {self.package} to evaluate '{self.role}'"
            ) from None
        return module.create_server(root=root)


# How a task becomes a tool's arguments and its result the answer text; other tools get a `question` and
# answer with `answer`.
ARGUMENTS = {
    "consult_oracle": _oracle_args,
    "review_change": _review_args,
    "search_codebase": _search_args,
    "analyze_visual": _oracle_args,  # the task's files and its question
}
TEXT = {"review_change": _review_text, "analyze_visual": _visual_text}


def targets() -> dict[str, RoleTarget]:
    """Every role an installed server answers, each through that server's tool for it."""
    return {
        role: RoleTarget(
            role, info.distribution, info.module, tool, ARGUMENTS.get(tool, _question_args), TEXT.get(tool, _answer)
        )
        for info in installed().values()
        for role, tool in info.roles.items()
    }


def target_for(role: str) -> RoleTarget:
    known = targets()
    if role not in known:
        raise EvalError(f"unknown role '{role}'; evaluate one of {', '.join(known)}")
    return known[role]
