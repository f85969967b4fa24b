import pytest

from cadre_core import detectors
from cadre_core.models.base import ModelResponse, ToolCall

CLEAN = ModelResponse(text="Add the tenant id to the cache key in cache_key() and bump the cache version.")


@pytest.mark.parametrize(
    ("detector", "bad"),
    [
        (detectors.repetition_loop, ModelResponse(text="the cache key is wrong and must change now " * 6)),
        (detectors.leaked_thinking, ModelResponse(text="<thinking>maybe the cache</thinking> Use a lock.")),
        (detectors.leaked_thinking, ModelResponse(text="Thinking: the user wants...\nAnswer: lock it")),
        (detectors.garbage_characters, ModelResponse(text="ok \x00\x01\x02\x03 \ufffd\ufffd done")),
        (detectors.empty_or_refusal, ModelResponse(text="  ")),
        (detectors.empty_or_refusal, ModelResponse(text="I'm sorry, but I can't help with that.")),
        (detectors.empty_or_refusal, ModelResponse(text="No.", finish_reason="refusal")),
        (detectors.truncated, ModelResponse(text="The fix is to", finish_reason="length")),
    ],
)
def test_each_detector_fires_on_its_bad_example_and_not_on_a_clean_answer(detector, bad):
    assert detector(bad)
    assert detector(CLEAN) is None


def test_structured_answers_are_not_called_empty():
    assert detectors.empty_or_refusal(ModelResponse(text="", output={"answer": "x"})) is None


def test_tool_call_loop_and_runaway_turns():
    same = ToolCall("1", "read_file", {"path": "a.py"})
    other = ToolCall("2", "read_file", {"path": "b.py"})
    assert detectors.tool_call_loop([same, other, same, same]) == 'read_file({"path": "a.py"}) was called 3 times'
    assert detectors.tool_call_loop([same, other, same]) is None
    assert detectors.runaway_turns(5, limit=4) and detectors.runaway_turns(4, limit=4) is None


def test_first_problem_names_the_detector_and_skips_tool_turns():
    assert detectors.first_problem(ModelResponse(text="cut", finish_reason="length"))[0] == "truncated"
    assert detectors.first_problem(CLEAN) is None
    calling = ModelResponse(text="", tool_calls=[ToolCall("1", "grep", {})], finish_reason="tool_use")
    assert detectors.first_problem(calling) is None
