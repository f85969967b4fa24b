"""Off-the-rails detectors: small named checks on a model's answer. Each returns a reason or None.

The only home of loop detection: repeated identical tool calls and turns past the limit."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from itertools import pairwise

from cadre_core.models.base import ModelRequest, ModelResponse, ToolCall

_THINKING_TAG = re.compile(r"</?(?:think|thinking|reasoning|scratchpad)>", re.IGNORECASE)
_THINKING_PREAMBLE = re.compile(r"\A\s*(?:Thinking|Reasoning)\s*:", re.IGNORECASE)
_CODE = re.compile(r"^\s*(```|~~~).*?^\s*\1[^\n]*$|`[^`\n]+`", re.DOTALL | re.MULTILINE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_REFUSAL = re.compile(
    r"^\s*(?:(?:I['’]?m|I am) sorry|Sorry|Unfortunately|I apologi[sz]e)?[,.!]?\s*(?:but\s+)?"
    r"(?:I\s+(?:can(?:no|['’])t|cannot|won['’]?t|will not|am unable to|am not able to)"
    r"|I['’]?m\s+(?:unable|not able) to)\s+"
    r"(?:help|assist|comply|answer|provide|do that|fulfil|support|engage)",
    re.IGNORECASE,
)
_REFUSAL_MAX_CHARS = 300
_REFUSAL_MAX_AFTER = 150
_SENTENCE_END = re.compile(r"[.!?](?:\s|$)|\n")
_GOES_ON = re.compile(r"\b(?:but|however|instead|though)\b", re.IGNORECASE)
_TABLE_RULE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)*\|?\s*$|^\s*(?:```|~~~).*$", re.MULTILINE)


def repetition_loop(response: ModelResponse, *, n: int = 8, repeats: int = 4) -> str | None:
    """A run of words repeated back to back `repeats` times or more, covering at least `n * repeats` words.

    Only consecutive, non-overlapping copies count, so periodic but varied text (lists, tables) stays
    quiet; markdown table rules and code-fence lines are left out first.
    """
    words = _TABLE_RULE.sub(" ", response.text).split()
    least = n * repeats
    if len(words) < least:
        return None
    # Any such run repeats some n-gram `repeats` times at the run's period, so the gaps between
    # the occurrences of frequent n-grams are the only periods worth checking.
    positions: dict[tuple[str, ...], list[int]] = {}
    for i in range(len(words) - n + 1):
        positions.setdefault(tuple(words[i : i + n]), []).append(i)
    periods = sorted({b - a for found in positions.values() if len(found) >= repeats for a, b in pairwise(found)})
    for period in periods:
        run = 0
        for i in range(len(words) - period + 1):
            if i < len(words) - period and words[i] == words[i + period]:
                run += 1
                continue
            if run // period + 1 >= repeats and run + period >= least:
                unit = " ".join(words[i - run : i - run + period])
                return f"the phrase {_short(unit)!r} repeats {run // period + 1} times in a row"
            run = 0
    return None


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def leaked_thinking(response: ModelResponse) -> str | None:
    """Reasoning tags (<think>, <thinking>, ...) outside code, or a 'Thinking:' preamble opening the answer."""
    match = _THINKING_PREAMBLE.search(response.text) or _THINKING_TAG.search(_CODE.sub(" ", response.text))
    return f"reasoning text leaked into the answer ({match.group(0).strip()!r})" if match else None


def garbage_characters(response: ModelResponse, *, limit: float = 0.01) -> str | None:
    """Control characters or replacement characters in more than 1% of the answer."""
    text = response.text
    bad = len(_CONTROL.findall(text))
    return f"{bad} control or garbage characters" if text and bad > max(2, limit * len(text)) else None


def empty_or_refusal(response: ModelResponse) -> str | None:
    """No answer at all, or a short answer that is a refusal ('I'm sorry, but I can't help with that.')."""
    text = response.text.strip()
    if response.finish_reason == "refusal" or _is_refusal(text):
        return "the model refused"
    if not text and not response.tool_calls and response.output is None:
        return "the answer is empty"
    return None


def _is_refusal(text: str) -> bool:
    """Opens with a refusal and says little else: short, no 'but ...' in that sentence, little after it."""
    match = _REFUSAL.match(text)
    if match is None or len(text) > _REFUSAL_MAX_CHARS:
        return False
    end = _SENTENCE_END.search(text, match.end())
    sentence_rest = text[match.end() : end.start() if end else len(text)]
    after = text[end.end() :] if end else ""
    return not _GOES_ON.search(sentence_rest) and len(after.strip()) <= _REFUSAL_MAX_AFTER


def truncated(response: ModelResponse) -> str | None:
    """The answer stopped at the output-token limit."""
    return "the answer was cut off at max output tokens" if response.finish_reason == "length" else None


def call_key(call: ToolCall) -> tuple[str, str]:
    """What makes two tool calls the same call: the tool's name and its arguments."""
    return call.name, json.dumps(call.arguments, sort_keys=True)


def tool_call_loop(calls: list[ToolCall], *, limit: int = 3) -> str | None:
    """The same tool with the same arguments called `limit` times or more across a conversation."""
    seen = Counter(call_key(c) for c in calls)
    if not seen:
        return None
    (name, args), count = seen.most_common(1)[0]
    return f"{name}({args}) was called {count} times" if count >= limit else None


def repeated_calls(earlier: list[ToolCall], calls: list[ToolCall]) -> set[int]:
    """Indexes of `calls` identical to one in `earlier` or to one before it in `calls`."""
    seen = {call_key(c) for c in earlier}
    repeated = set()
    for i, call in enumerate(calls):
        if call_key(call) in seen:
            repeated.add(i)
        seen.add(call_key(call))
    return repeated


def tool_problem(request: ModelRequest, response: ModelResponse) -> tuple[str, str] | None:
    """(detector, reason) for a tool-calling reply that is off the rails: the same call repeated across
    the conversation (tool_call_loop), or tool calls on a turn that had to answer (runaway_turns)."""
    if not response.tool_calls:
        return None
    if not request.tools_allowed:
        return "runaway_turns", "called tools on the turn that had to answer"
    mine = {call_key(c) for c in response.tool_calls}
    repeated = [c for m in request.messages for c in m.tool_calls if call_key(c) in mine]
    reason = tool_call_loop([*repeated, *response.tool_calls])  # only a call this reply repeats counts
    return ("tool_call_loop", reason) if reason else None


def runaway_turns(turns: int, *, limit: int) -> str | None:
    """More model turns than the configured limit."""
    return f"{turns} turns, over the limit of {limit}" if turns > limit else None


ANSWER_DETECTORS: dict[str, Callable[[ModelResponse], str | None]] = {
    "repetition_loop": repetition_loop,
    "leaked_thinking": leaked_thinking,
    "garbage_characters": garbage_characters,
    "empty_or_refusal": empty_or_refusal,
    "truncated": truncated,
}


def first_problem(response: ModelResponse) -> tuple[str, str] | None:
    """(detector name, reason) of the first detector that fires on a final answer, or None."""
    if response.tool_calls:
        return None
    for name, detector in ANSWER_DETECTORS.items():
        if (reason := detector(response)) is not None:
            return name, reason
    return None
