"""`gemini_cli:<model>`: Google's Gemini CLI, `gemini -p ... --output-format json`, on the user's login.

Gemini CLI's headless docs (google-gemini/gemini-cli docs/cli/headless.md): `-p/--prompt` forces
non-interactive mode and is appended to stdin input; `--output-format json` prints one object with `response`,
`stats` and, on failure, `error`; exit codes 0, 1 (API failure), 42 (bad input), 53 (turn limit). The shape of
`stats.models.<model>.tokens` (`prompt`, `candidates`, `cached`, `thoughts`) is taken from public parsers
(PAL's clink), not from the reference page. Read-only: `--approval-mode default`, under which a headless run
cannot approve edits or shell commands; `plan` is not used because headless plan mode was reported to leave
itself after planning, and an untrusted folder turns it back into `default` anyway.
"""

from __future__ import annotations

import json

from cadre_core.errors import BadResponseError
from cadre_core.models.base import ModelRequest, ModelResponse, Usage
from cadre_core.models.cli_agent import CliAgentModel, render_prompt, run_cli

PROMPT_FLAG_TEXT = "Answer the request above."
"""What `-p` carries: the real prompt goes on stdin, which `-p` is appended to."""


class GeminiCliModel(CliAgentModel):
    """One `gemini -p` run per request, without edit approval unless writes are allowed."""

    provider = "gemini_cli"
    executable = "gemini"
    install_hint = "install it with `npm install -g @google/gemini-cli`"
    login_hint = "run `gemini` once and sign in, or set GEMINI_API_KEY"
    # The Google sign-in is cached in ~/.gemini/oauth_creds.json (not confirmed from the docs).
    login_files = ("~/.gemini/oauth_creds.json",)
    login_env = ("GEMINI_API_KEY", "GOOGLE_API_KEY")

    def argv(self, command: str) -> list[str]:
        mode = "auto_edit" if self.allow_writes else "default"
        argv = [command, "--output-format", "json", "--approval-mode", mode]
        argv += ["--model", self.model_flag] if self.model_flag else []
        return [*argv, "-p", PROMPT_FLAG_TEXT]

    async def request(self, request: ModelRequest) -> ModelResponse:
        run = await run_cli(self.argv(self.resolved_command()), render_prompt(request))
        return self.parse(run.stdout, run.stderr, run.returncode).parse_output(request)

    def parse(self, stdout: str, stderr: str, returncode: int) -> ModelResponse:
        """`response` with the token stats summed over models; `error` or a bare exit code as a Cadre error."""
        start = stdout.find("{")
        try:
            result = json.loads(stdout[start:]) if start >= 0 else None
        except ValueError:
            result = None
        if isinstance(result, dict) and isinstance(error := result.get("error"), dict):
            raise self.failure(": ".join(str(error[k]) for k in ("type", "message") if error.get(k)) or "error")
        if not isinstance(result, dict) or not isinstance(result.get("response"), str):
            if returncode != 0:
                raise self.failure(stderr.strip()[-2000:] or f"`gemini -p` exited with {returncode}")
            raise BadResponseError("`gemini -p` printed no JSON response", provider=self.provider,
                                   model=self.model_name)  # fmt: skip
        usage = Usage()
        models = (result.get("stats") or {}).get("models") or {}
        for stats in models.values() if isinstance(models, dict) else ():
            t = (stats or {}).get("tokens") or {}
            thoughts = int(t.get("thoughts") or 0)
            usage = usage + Usage(
                input_tokens=int(t.get("prompt") or 0),  # Gemini's prompt count includes cached tokens
                cache_read_tokens=int(t.get("cached") or 0),
                output_tokens=int(t.get("candidates") or 0) + thoughts,
                reasoning_tokens=thoughts,
            )
        return ModelResponse(text=result["response"], usage=usage, model=self.name, billing="subscription",
                             ledger_note=self.note("subscription"))  # fmt: skip
