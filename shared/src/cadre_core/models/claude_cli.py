"""`claude_cli:<model>`: Anthropic's Claude Code, `claude -p --output-format json`, on the user's login.

Claude Code's headless docs (docs.claude.com, "Headless mode" / "Run Claude Code programmatically"): `-p` prints
one result and exits; the prompt is read from stdin when none is given; `--output-format json` prints one object
with `result`, `is_error`, `subtype`, `session_id`, `total_cost_usd` and `usage` (the Messages API usage:
`input_tokens` without the cache, `cache_read_input_tokens`, `cache_creation_input_tokens`, `output_tokens`).
`--permission-mode plan` lets it read but not edit or run commands. Not confirmed from the docs: a flag for
reasoning effort (none is passed) and the exact error texts (matched by keyword: login, usage limit).
"""

from __future__ import annotations

import json
from typing import Literal

from cadre_core.errors import BadResponseError
from cadre_core.models.base import ModelRequest, ModelResponse, Usage
from cadre_core.models.cli_agent import CliAgentModel, render_prompt, run_cli


class ClaudeCliModel(CliAgentModel):
    """One `claude -p` run per request, in plan mode unless writes are allowed."""

    provider = "claude_cli"
    executable = "claude"
    install_hint = "install it with `npm install -g @anthropic-ai/claude-code`"
    login_hint = "run `claude` once and log in (`/login`)"
    # Linux keeps the login in ~/.claude/.credentials.json (macOS: the keychain, not checked);
    # CLAUDE_CONFIG_DIR moves the folder. ANTHROPIC_API_KEY also works.
    login_files = ("${CLAUDE_CONFIG_DIR}/.credentials.json", "~/.claude/.credentials.json")
    login_env = ("ANTHROPIC_API_KEY",)

    def argv(self, command: str) -> list[str]:
        mode = "acceptEdits" if self.allow_writes else "plan"
        argv = [command, "-p", "--output-format", "json", "--permission-mode", mode]
        return argv + (["--model", self.model_flag] if self.model_flag else [])

    async def request(self, request: ModelRequest) -> ModelResponse:
        run = await run_cli(self.argv(self.resolved_command()), render_prompt(request))
        return self.parse(run.stdout, run.stderr, run.returncode).parse_output(request)

    def parse(self, stdout: str, stderr: str, returncode: int) -> ModelResponse:
        """The result object's answer, usage and cost; `is_error` or a bare exit code as a Cadre error."""
        try:
            result = json.loads(stdout.strip().splitlines()[-1]) if stdout.strip() else None
        except ValueError:
            result = None
        if not isinstance(result, dict):
            if returncode != 0:
                raise self.failure(stderr.strip()[-2000:] or f"`claude -p` exited with {returncode}")
            raise BadResponseError("`claude -p` printed no JSON result", provider=self.provider,
                                   model=self.model_name)  # fmt: skip
        if result.get("is_error") or result.get("subtype") not in (None, "success"):
            raise self.failure(str(result.get("result") or result.get("subtype") or "error"))
        u = result.get("usage") or {}
        cache_read, cache_write = (
            int(u.get("cache_read_input_tokens") or 0),
            int(u.get("cache_creation_input_tokens") or 0),
        )
        usage = Usage(
            input_tokens=int(u.get("input_tokens") or 0) + cache_read + cache_write,
            cache_read_tokens=cache_read,
            cache_write_tokens=cache_write,
            output_tokens=int(u.get("output_tokens") or 0),
        )
        cost = result.get("total_cost_usd")
        reported = isinstance(cost, int | float)
        billing: Literal["reported", "subscription"] = "reported" if reported else "subscription"
        return ModelResponse(
            text=str(result.get("result") or ""),
            usage=usage,
            model=self.name,
            response_id=result.get("session_id"),
            cost_usd=float(cost) if isinstance(cost, int | float) else None,
            billing=billing,
            ledger_note=self.note("reported by claude" if billing == "reported" else "subscription"),
        )
