"""Citation checks, marker renumbering, model-argument coercion and library naming, without MCP."""

import pytest

from cadre_core.models.base import ToolCall
from cadre_librarian.evidence import Evidence, check_citations, renumber_markers
from cadre_librarian.installed import Installed
from cadre_librarian.library import Library
from cadre_librarian.research import named_libraries
from cadre_librarian.sources import Excerpt
from cadre_librarian.tools import TOOLS, Desk, coerce, run_tool
from tests.servers.librarian_env import make_env

FILE = "\n".join(f"line {n} of the module" for n in range(1, 3001))


@pytest.fixture
def evidence():
    ev = Evidence()
    ev.add(Excerpt("local", "pkg", "1.0", "pkg/mod.py", 1, 3000, FILE))
    return ev


def test_a_span_that_was_read_and_holds_the_quote_is_kept(evidence):
    checked = evidence.check("E1", 10, 11, "line 10 of the module line 11")
    assert (checked.excerpt.start_line, checked.excerpt.end_line, checked.fixed) == (10, 11, False)
    assert checked.excerpt.text == "line 10 of the module\nline 11 of the module"


def test_wrong_lines_are_moved_to_the_quote_and_absurd_ranges_cost_nothing(evidence):
    checked = evidence.check("E1", 1, 300_000_000, "line 2999 of the module line 3000")
    assert (checked.excerpt.start_line, checked.excerpt.end_line, checked.fixed) == (2999, 3000, True)


def test_invented_quotes_empty_quotes_and_unknown_ids_are_dropped(evidence):
    assert evidence.check("E1", 5, 5, "line 5 of the parser") is None
    assert evidence.check("E1", 5, 5, "   ") is None
    assert evidence.check("E9", 5, 5, "line 5 of the module") is None


def test_only_lines_that_were_read_count():
    ev = Evidence()
    ev.add(Excerpt("github", "o/r", "v1", "a.py", 10, 12, "a\nb\nc"))
    assert ev.check("E1", 9, 10, "a") is not None  # moved into what was read
    assert ev.check("E1", 9, 10, "a").excerpt.start_line == 10
    assert ev.check("E1", 13, 13, "d") is None


def test_citations_dedupe_and_markers_follow_them(evidence):
    cited = [
        {"evidence": "E1", "start_line": 3, "end_line": 3, "quote": "line 3 of"},
        {"evidence": "E1", "start_line": 4, "end_line": 4, "quote": "made up"},
        {"evidence": "E1", "start_line": 3, "end_line": 3, "quote": "line 3 of"},
    ]
    text, kept, notes = check_citations(evidence, "A [1]. B [2]. C [3].", cited)
    assert text == "A [1]. B . C [1]."
    assert len(kept) == 1 and kept[0]["quote"] == "line 3 of"
    assert notes == ["dropped citation [2] E1:4-4: the span was not read or does not hold the quote"]


def test_markers_in_code_and_links_are_left_alone():
    answer = "one [1][2] and [1, 3]. ```python\nxs = [1]\n``` then `a[2]`, x[1], [docs][1] and [1](http://e)"
    assert renumber_markers(answer, {2: 1, 3: 2}) == (
        "one [1] and [2]. ```python\nxs = [1]\n``` then `a[2]`, x[1], [docs][1] and [1](http://e)"
    )


def test_model_arguments_are_coerced_or_refused_with_the_argument_named():
    read = TOOLS["read_installed"][0]
    assert coerce(read, {"package": "p", "path": "a.py", "start_line": "10", "end_line": 20.0}) == {
        "package": "p", "path": "a.py", "start_line": 10, "end_line": 20}  # fmt: skip
    with pytest.raises(ValueError, match="'package' must be a string"):
        coerce(read, {"package": ["p"], "path": "a.py"})
    with pytest.raises(ValueError, match="'start_line' must be an integer"):
        coerce(read, {"package": "p", "path": "a.py", "start_line": "ten"})
    with pytest.raises(ValueError, match="missing argument path"):
        coerce(read, {"package": "p"})
    with pytest.raises(ValueError, match="unknown argument 'file'"):
        coerce(read, {"package": "p", "path": "a", "file": "b"})


@pytest.mark.anyio
async def test_a_bad_tool_call_is_an_error_for_the_model_not_a_crash(tmp_path):
    env = make_env(tmp_path / "ws")
    desk = Desk(Library(environ={}), Installed([env], environ={}), Evidence())
    text, is_error = await run_tool(desk, ToolCall("a", "read_installed", {"package": ["fakelib"], "path": "x"}))
    assert is_error and "'package' must be a string" in text
    text, is_error = await run_tool(desk, ToolCall("b", "read_installed", {"package": "fakelib",
                                                                          "path": "fakelib/retry.py", "start_line": "6",
                                                                          "end_line": "6"}))  # fmt: skip
    assert not is_error and "6  DEFAULT_ATTEMPTS = 3" in text


def test_only_real_library_names_are_taken_from_the_question(tmp_path):
    env = make_env(tmp_path / "ws")
    desk = Desk(Library(environ={}), Installed([env], environ={}), Evidence())
    question = "How does fakelib/retry.py handle input/output errors, and/or timeouts between 2.3/3.0?"
    assert named_libraries(desk, question, None) == ["fakelib"]
    assert named_libraries(desk, "Is `acme/widgets` like https://github.com/psf/requests.git?", None) == [
        "acme/widgets", "psf/requests"]  # fmt: skip
    assert named_libraries(desk, "anything", ["left-pad", " ", 3]) == ["left-pad"]
