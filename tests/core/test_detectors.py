import pytest

from cadre_core import detectors
from cadre_core.models.base import ModelResponse, ToolCall

CLEAN = ModelResponse(text="Add the tenant id to the cache key in cache_key() and bump the cache version.")
CODE_BLOCK = """The cache key ignores the tenant, so two tenants share entries. Add it in `cache_key()`:

```python
def cache_key(request: Request) -> str:
    parts = [request.tenant_id, request.path, request.query]
    return ":".join(str(part) for part in parts)


def test_tenants_do_not_share_entries():
    assert cache_key(Request("a", "/x", "")) != cache_key(Request("b", "/x", ""))
```

Then bump `CACHE_VERSION` so entries written under the old key are ignored. The parser keeps
`<think>` tags out of answers in `strip_think()`; that code is unrelated to this bug.
"""
WIDE_TABLE = """Here is how the eight candidates compare on the oracle suite:

| model | calls | spend | avg thread | off-rails % | p50 | p95 | failures |
|---|---|---|---|---|---|---|---|
| openai:gpt-5.2 | 120 | $4.10 | $0.21 | 2.4% | 8.1 s | 19.0 s | 1.7% |
| anthropic:claude-opus-4-5 | 98 | $6.02 | $0.33 | 3.1% | 9.4 s | 22.5 s | 2.0% |
| google:gemini-3-pro-preview | 77 | $2.95 | $0.18 | 17.8% | 7.2 s | 15.1 s | 3.9% |

| a | b | c | d | e | f | g | h | i | j | k | l | m | n | o | p | q | r |
| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |
| 1 | 2 | 3 | 4 | 5 | 6 | 7 | 8 | 9 | 10 | 11 | 12 | 13 | 14 | 15 | 16 | 17 | 18 |

|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|
"""
POLITE_CORRECTION = """I'm sorry, but the file you mentioned does not exist: there is no `src/cache/keys.py` in this
repository. The cache key is built in `src/cache.py`, in `cache_key()` at line 42, and it leaves out the
tenant id. Add `request.tenant_id` to the parts it joins, and bump `CACHE_VERSION` so that old entries
are not served to the wrong tenant.

Reasoning: two tenants asking for the same path get the same key, so whichever asks first fills the entry.
"""
NUMBERED_LIST = """To fix the stale cache:

1. Add the tenant id to the key in `cache_key()`.
2. Add the tenant id to the key in `session_key()`.
3. Add the tenant id to the key in `upload_key()`.
4. Add the tenant id to the key in `export_key()`.
5. Add the tenant id to the key in `preview_key()`.
6. Bump `CACHE_VERSION` so that old entries are ignored.
7. Run the test suite with the cache enabled and then with it disabled.
"""
PARTIAL_REFUSAL = ModelResponse(
    text="I can't run the test suite here, but the failure is clear from the traceback: `cache_key()` leaves out "
    "the tenant id, so add it there and bump the cache version."
)
CLEAN_ANSWERS = [CLEAN, *(ModelResponse(text=t) for t in (CODE_BLOCK, WIDE_TABLE, POLITE_CORRECTION, NUMBERED_LIST))]
CLEAN_ANSWERS.append(PARTIAL_REFUSAL)


@pytest.mark.parametrize(
    ("detector", "bad"),
    [
        (detectors.repetition_loop, ModelResponse(text="the cache key is wrong and must change now " * 6)),
        (detectors.repetition_loop, ModelResponse(text=NUMBERED_LIST + "and then it loops " * 10)),
        (detectors.repetition_loop, ModelResponse(text="ok " + "| --- " * 40)),
        (detectors.leaked_thinking, ModelResponse(text="<thinking>maybe the cache</thinking> Use a lock.")),
        (detectors.leaked_thinking, ModelResponse(text="Thinking: the user wants...\nAnswer: lock it")),
        (detectors.leaked_thinking, ModelResponse(text="  reasoning: the lock is missing.\nUse a lock.")),
        (detectors.leaked_thinking, ModelResponse(text="the user wants a lock</think>\nUse a lock.")),
        (detectors.garbage_characters, ModelResponse(text="ok \x00\x01\x02\x03 \ufffd\ufffd done")),
        (detectors.empty_or_refusal, ModelResponse(text="  ")),
        (detectors.empty_or_refusal, ModelResponse(text="I'm sorry, but I can't help with that.")),
        (detectors.empty_or_refusal, ModelResponse(text="Sorry, I cannot assist with that request. Ask me another.")),
        (detectors.empty_or_refusal, ModelResponse(text="I’m unable to help with that.")),
        (detectors.empty_or_refusal, ModelResponse(text="No.", finish_reason="refusal")),
        (detectors.truncated, ModelResponse(text="The fix is to", finish_reason="length")),
    ],
)
def test_each_detector_fires_on_its_bad_example_and_not_on_clean_answers(detector, bad):
    assert detector(bad)
    assert [detector(clean) for clean in CLEAN_ANSWERS] == [None] * len(CLEAN_ANSWERS)


def test_the_repetition_loop_names_the_repeated_unit_and_the_count():
    reason = detectors.repetition_loop(ModelResponse(text="the cache key is wrong and must change now " * 6))
    assert reason == "the phrase 'the cache key is wrong and must change now' repeats 6 times in a row"
    # the same phrase four times, but not back to back, is not a loop
    spaced = " ".join(f"step {i}: the cache key is wrong and must change now." for i in range(6))
    assert detectors.repetition_loop(ModelResponse(text=spaced)) is None


def test_a_long_answer_opening_with_a_refusal_phrase_is_not_a_refusal():
    long = "I can't help with the deployment itself. " + "The cache key must include the tenant id. " * 8
    assert detectors.empty_or_refusal(ModelResponse(text=long)) is None


def test_structured_answers_are_not_called_empty():
    assert detectors.empty_or_refusal(ModelResponse(text="", output={"answer": "x"})) is None


def test_tool_call_loop_and_runaway_turns():
    same = ToolCall("1", "read_file", {"path": "a.py"})
    other = ToolCall("2", "read_file", {"path": "b.py"})
    assert detectors.tool_call_loop([same, other, same, same]) == 'read_file({"path": "a.py"}) was called 3 times'
    assert detectors.tool_call_loop([same, other, same]) is None
    assert detectors.runaway_turns(5, limit=4) and detectors.runaway_turns(4, limit=4) is None


def test_repeated_calls_are_found_against_history_and_within_the_turn():
    read = ToolCall("1", "read_file", {"path": "a.py", "lines": [1, 2]})
    same_args_reordered = ToolCall("9", "read_file", {"lines": [1, 2], "path": "a.py"})  # ids and key order differ
    other = ToolCall("2", "read_file", {"path": "b.py"})
    assert detectors.repeated_calls([read], [other, same_args_reordered]) == {1}
    assert detectors.repeated_calls([], [other, read, other]) == {2}
    assert detectors.repeated_calls([], [read, other]) == set()


def test_tool_problem_flags_only_a_call_this_reply_repeats_and_tools_on_the_answer_turn():
    from cadre_core.models.base import Message, ModelRequest

    grep = ToolCall("x", "grep", {"pattern": "cache"})
    history = [Message.user("why?"), Message.assistant("", [grep]), Message.assistant("", [grep])]
    again = ModelResponse(tool_calls=[ToolCall("y", "grep", {"pattern": "cache"})], finish_reason="tool_use")
    fresh = ModelResponse(tool_calls=[ToolCall("z", "grep", {"pattern": "other"})], finish_reason="tool_use")
    assert detectors.tool_problem(ModelRequest(history), again) == (
        "tool_call_loop", 'grep({"pattern": "cache"}) was called 3 times')  # fmt: skip
    assert detectors.tool_problem(ModelRequest(history), fresh) is None
    assert detectors.tool_problem(ModelRequest(history, tools_allowed=False), fresh)[0] == "runaway_turns"
    assert detectors.tool_problem(ModelRequest(history), CLEAN) is None


def test_first_problem_names_the_detector_and_skips_tool_turns():
    assert detectors.first_problem(ModelResponse(text="cut", finish_reason="length"))[0] == "truncated"
    assert detectors.first_problem(CLEAN) is None
    calling = ModelResponse(text="", tool_calls=[ToolCall("1", "grep", {})], finish_reason="tool_use")
    assert detectors.first_problem(calling) is None
