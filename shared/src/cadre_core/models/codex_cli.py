"""`codex_cli:<model>`: OpenAI's Codex CLI, `codex exec --json`, on the user's ChatGPT login.

Flags and events as documented in openai/codex docs/exec.md and codex-rs/exec/src/exec_events.rs: stdout is
JSONL, one event a line: `thread.started`, `turn.started`, `item.completed` (an `agent_message` item carries
`text`), `turn.completed` with `usage {input_tokens, cached_input_tokens, output_tokens}`, `turn.failed`
(`error.message`) and `error` (`message`). A prompt of `-` is read from stdin. `--output-schema FILE` makes
the final message follow a JSON schema (OpenAI strict mode, so only a strict schema is passed).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from cadre_core.errors import BadResponseError
from cadre_core.models.base import ModelRequest, ModelResponse, Usage
from cadre_core.models.cli_agent import CliAgentModel, render_prompt, run_cli


class CodexCliModel(CliAgentModel):
    """One `codex exec` run per request, in the read-only sandbox unless writes are allowed."""

    provider = "codex_cli"
    executable = "codex"
    install_hint = "install it with `npm install -g @openai/codex`"
    login_hint = "run `codex login`"
    # $CODEX_HOME/auth.json, CODEX_HOME defaulting to ~/.codex (codex-rs login crate, `AuthDotJson`);
    # codex exec also takes CODEX_API_KEY (docs/exec.md). The keychain store cannot be checked cheaply.
    login_files = ("${CODEX_HOME}/auth.json", "~/.codex/auth.json")
    login_env = ("CODEX_API_KEY",)

    def argv(self, command: str, request: ModelRequest, schema_file: Path | None) -> list[str]:
        sandbox = "workspace-write" if self.allow_writes else "read-only"
        argv = [command, "exec", "--json", "--sandbox", sandbox, "--skip-git-repo-check"]
        if self.model_flag:
            argv += ["--model", self.model_flag]
        if request.effort:  # config key model_reasoning_effort (docs/config.md)
            argv += ["-c", f'model_reasoning_effort="{request.effort}"']
        if schema_file is not None:
            argv += ["--output-schema", str(schema_file)]
        return [*argv, "-"]

    async def request(self, request: ModelRequest) -> ModelResponse:
        from cadre_core.models.openai import is_strict_schema

        command = self.resolved_command()
        schema = request.output_schema
        with tempfile.TemporaryDirectory(prefix="cadre-codex-") as tmp:
            schema_file = None
            if schema is not None and is_strict_schema(schema):
                schema_file = Path(tmp) / "schema.json"
                schema_file.write_text(json.dumps(schema))
            run = await run_cli(self.argv(command, request, schema_file), render_prompt(request))
        return self.parse(run.stdout, run.stderr, run.returncode).parse_output(request)

    def parse(self, stdout: str, stderr: str, returncode: int) -> ModelResponse:
        """The last agent message and the summed usage; a failure event or exit code as a Cadre error."""
        text, usage, thread, failure = None, Usage(), None, None
        for line in stdout.splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue  # not an event (a warning line)
            if not isinstance(event, dict):
                continue
            kind = event.get("type")
            if kind == "thread.started":
                thread = event.get("thread_id")
            elif kind == "item.completed" and (item := event.get("item") or {}).get("type") == "agent_message":
                text = str(item.get("text") or "")
            elif kind == "turn.completed":
                u = event.get("usage") or {}
                usage = usage + Usage(
                    input_tokens=int(u.get("input_tokens") or 0),  # includes cached_input_tokens (OpenAI usage)
                    cache_read_tokens=int(u.get("cached_input_tokens") or 0),
                    output_tokens=int(u.get("output_tokens") or 0),
                )
            elif kind == "turn.failed":
                failure = str((event.get("error") or {}).get("message") or "turn failed")
            elif kind == "error":
                failure = str(event.get("message") or "error")
        if failure is not None:
            raise self.failure(failure)
        if text is None:
            if returncode != 0:
                raise self.failure(stderr.strip()[-2000:] or f"`codex exec` exited with {returncode}")
            raise BadResponseError("`codex exec` printed no agent message", provider=self.provider,
                                   model=self.model_name)  # fmt: skip
        return ModelResponse(text=text, usage=usage, model=self.name, response_id=thread, billing="subscription",
                             ledger_note=self.note("subscription"))  # fmt: skip
