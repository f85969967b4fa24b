"""Off-the-rails detectors: small named checks on a model's answer. Each returns a reason or None."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable

from cadre_core.models.base import ModelResponse, ToolCall

_THINKING = re.compile(r"<(think|thinking|reasoning|scratchpad)>|^\s*(Thinking|Reasoning):", re.IGNORECASE | re.M)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffd]")
_REFUSAL = re.compile(
    r"^\s*(I'?m sorry|I am sorry|I can(?:no|')t (?:help|assist)|I'?m (?:unable|not able) to (?:help|assist))",
    re.IGNORECASE,
)


def repetition_loop(response: ModelResponse, *, n: int = 8, repeats: int = 4) -> str | None:
    """The same run of `n` words appears `repeats` times or more."""
    words = response.text.split()
    if len(words) < n * repeats:
        return None
    grams = Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    gram, count = grams.most_common(1)[0]
    return f"the phrase {' '.join(gram)!r} repeats {count} times" if count >= repeats else None


def leaked_thinking(response: ModelResponse) -> str | None:
    """Reasoning markup or a 'Thinking:' preamble in the visible answer."""
    match = _THINKING.search(response.text)
    return f"reasoning text leaked into the answer ({match.group(0).strip()!r})" if match else None


def garbage_characters(response: ModelResponse, *, limit: float = 0.01) -> str | None:
    """Control characters or replacement characters in more than 1% of the answer."""
    text = response.text
    bad = len(_CONTROL.findall(text))
    return f"{bad} control or garbage characters" if text and bad > max(2, limit * len(text)) else None


def empty_or_refusal(response: ModelResponse) -> str | None:
    """No answer at all, or a refusal instead of one."""
    if response.finish_reason == "refusal" or _REFUSAL.search(response.text):
        return "the model refused"
    if not response.text.strip() and not response.tool_calls and response.output is None:
        return "the answer is empty"
    return None


def truncated(response: ModelResponse) -> str | None:
    """The answer stopped at the output-token limit."""
    return "the answer was cut off at max output tokens" if response.finish_reason == "length" else None


def tool_call_loop(calls: list[ToolCall], *, limit: int = 3) -> str | None:
    """The same tool with the same arguments called `limit` times or more across a conversation."""
    seen = Counter((c.name, json.dumps(c.arguments, sort_keys=True)) for c in calls)
    if not seen:
        return None
    (name, args), count = seen.most_common(1)[0]
    return f"{name}({args}) was called {count} times" if count >= limit else None


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
