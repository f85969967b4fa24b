import json

import pytest

from cadre_core.models.base import Message, ToolCall
from cadre_core.threads import ThreadStore, UnknownThreadError


def test_thread_survives_reopen_and_keeps_order(tmp_path):
    store = ThreadStore(tmp_path / "t.sqlite")
    tid = store.create("oracle", "consult_oracle")
    call = ToolCall("c1", "read_file", {"path": "a.py"})
    store.append(tid, [Message.user("q1"), Message.assistant("", [call])], model="openai:gpt-5.2")
    store.append(
        tid,
        [
            Message.tool_result(call, "print(1)"),
            Message("assistant", "a1", replay={"provider": "openai", "items": [{"type": "x"}]}),
        ],
    )
    store.close()

    reopened = ThreadStore(tmp_path / "t.sqlite")
    messages = reopened.messages(tid)
    assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1].tool_calls == [call]
    assert messages[2].tool_call_id == "c1" and messages[2].tool_name == "read_file"
    assert messages[3].replay == {"provider": "openai", "items": [{"type": "x"}]}
    json.dumps([m.text for m in messages])


def test_unknown_thread_says_what_to_do(tmp_path):
    store = ThreadStore(tmp_path / "t.sqlite")
    with pytest.raises(UnknownThreadError, match="Omit thread_id to start a new thread"):
        store.messages("t_nope")


def test_ids_are_unique(tmp_path):
    store = ThreadStore(tmp_path / "t.sqlite")
    assert len({store.create("oracle") for _ in range(200)}) == 200
