"""`cadre eval`: run a suite of tasks against each candidate model of a role, through the role's real server.

suite.py loads and validates suites, checkers.py and judge.py grade answers, roles.py maps a role to its
server and tool, runner.py runs the tasks, stats.py computes scores and intervals, promote.py edits the route.
Nothing here is imported by the servers.
"""

from cadre_core.errors import EvalError, SuiteError

__all__ = ["EvalError", "SuiteError"]
