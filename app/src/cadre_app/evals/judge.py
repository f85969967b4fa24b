"""The LLM judge: a named model grades an answer against criteria, through the router.

The judge's calls go through `Router`, so keys, the global budget caps and the run's ledger apply. They
run under the role name `judge` (JUDGE_ROLE), so they never spend the evaluated role's
`budget_per_day_usd`; their ledger rows carry tool `eval_judge` and are left out of the candidates' cost
and off-the-rails numbers. A judge that fails (rate limit, missing key, budget refusal, bad output)
leaves the run ungraded rather than failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cadre_app.evals.checkers import Output, Verdict
from cadre_core.errors import CadreError, OutputInvalidError
from cadre_core.models.base import Message, ModelRequest, ModelResponse

if TYPE_CHECKING:
    from cadre_app.evals.suite import JudgeCheck
    from cadre_core.router import Router

JUDGE_TOOL = "eval_judge"
JUDGE_ROLE = "judge"
"""Not a configured role: the router then uses only the candidates it is given and no per-role cap."""
JUDGE_SERVER = "cadre-eval"
SCHEMA = {
    "type": "object",
    "properties": {"pass": {"type": "boolean"}, "reason": {"type": "string"}},
    "required": ["pass", "reason"],
    "additionalProperties": False,
}
SYSTEM = """You grade an assistant's answer to a task. Apply the criteria strictly and literally;
do not reward effort or style. Reply with JSON only: {"pass": true|false, "reason": "<one sentence>"}."""


def _valid(response: ModelResponse) -> None:
    out = response.output
    if not isinstance(out, dict) or not isinstance(out.get("pass"), bool) or not isinstance(out.get("reason"), str):
        raise OutputInvalidError('reply with JSON {"pass": true|false, "reason": "..."}')


class Judge:
    """Grades answers for one eval run with the router it is given, as role `role` (default JUDGE_ROLE)."""

    def __init__(self, router: Router, role: str = JUDGE_ROLE):
        self.router, self.role = router, role

    def request(self, spec: JudgeCheck, output: Output, text: str) -> ModelRequest:
        parts = [f"Task given to the assistant:\n{output.task.prompt}", f"Criteria for a pass:\n{spec.criteria}"]
        if spec.reference:
            parts.append(f"Reference answer:\n{spec.reference}")
        parts.append(f"The assistant's answer:\n{text or '(empty)'}")
        return ModelRequest([Message.user("\n\n".join(parts))], system=SYSTEM, output_schema=SCHEMA,
                            schema_name="verdict", validate=_valid)  # fmt: skip

    async def grade(self, spec: JudgeCheck, output: Output, text: str) -> Verdict:
        from cadre_core.call import CallInfo
        from cadre_core.config import Candidate

        call = CallInfo(server=JUDGE_SERVER, tool=JUDGE_TOOL)
        model = self.router.model(self.role, call, [Candidate(model=spec.model, max_output_tokens=4096)])
        try:
            response = await model.request(self.request(spec, output, text))
        except CadreError as exc:
            return Verdict(False, f"judge {spec.model} failed: {exc}", ungraded=True)
        verdict: dict[str, Any] = response.output
        return Verdict(verdict["pass"], f"judge {spec.model}: {verdict['reason']}")
