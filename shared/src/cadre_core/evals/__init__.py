"""`cadre eval`: run a suite of tasks against each candidate model of a role, through the role's real server.

suite.py loads and validates suites, checkers.py and judge.py grade answers, roles.py maps a role to its
server and tool, runner.py runs the tasks, stats.py computes scores and intervals, promote.py edits the route.
Nothing here is imported by the servers.
"""

from __future__ import annotations

from cadre_core.errors import CadreError


class EvalError(CadreError):
    """An eval cannot run as asked; the message says what to change."""


class SuiteError(EvalError):
    """A suite file is invalid; the message names the file, the task and the field."""
