"""Which server and tool each role is evaluated through, and how a task becomes tool arguments.

Server packages are imported only when a run starts, so cadre_core never depends on them at import.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cadre_app.evals.suite import Task
from cadre_core.errors import EvalError


def _oracle_args(task: Task) -> dict[str, Any]:
    files = {"files": sorted(task.files)} if task.files else {}
    return {"question": task.prompt, **files, **task.args}


def _search_args(task: Task) -> dict[str, Any]:
    return {"query": task.prompt, "mode": "deep", **task.args}


def _librarian_args(task: Task) -> dict[str, Any]:
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


TARGETS = {
    "oracle": RoleTarget("oracle", "cadre-oracle", "cadre_oracle.server", "consult_oracle", _oracle_args, _answer),
    "review": RoleTarget("review", "cadre-oracle", "cadre_oracle.server", "review_change", _review_args, _review_text),
    "search": RoleTarget("search", "cadre-search", "cadre_search.server", "search_codebase", _search_args, _answer),
    "librarian": RoleTarget(
        "librarian", "cadre-librarian", "cadre_librarian.server", "research", _librarian_args, _answer
    ),
}


def target_for(role: str) -> RoleTarget:
    if role not in TARGETS:
        raise EvalError(f"unknown role '{role}'; evaluate one of {', '.join(TARGETS)}")
    return TARGETS[role]
