import os
import sqlite3
import threading
import time

import pytest

from cadre_core.errors import CadreError, WorkspaceError
from cadre_search.engine import Engine, QueryError
from cadre_search.query import plan
from cadre_search.tokens import compound_parts, parts

TRACEBACK = (
    """Calling the client fails when offline:

Traceback (most recent call last):
  File "/home/me/proj/src/app/http_client.py", line 6, in getUserName
    return self.fetchJson(f"/users/{user_id}")["name"]
  File "/home/me/proj/src/app/http_client.py", line 9, in fetchJson
    raise ConnectionError("offline")
ConnectionError: offline
"""
    + "The user sees nothing useful. " * 30
)


def top(engine, query, **kw):
    return [h.path for h in engine.search(query, **kw).hits]


def test_natural_language_finds_the_definition(engine):
    result = engine.search("where is the retry policy applied")
    assert result.hits[0].path == "src/app/router.py"
    assert result.hits[0].why
    assert result.index["files"] == 7


def test_camel_and_snake_case_parts_match(engine):
    assert top(engine, "get user name")[0] == "src/app/http_client.py"
    assert top(engine, "parse header")[0] == "src/app/parser.py"
    assert top(engine, "getUserName")[0] == "src/app/http_client.py"


def test_symbol_definition_and_quoted_identifiers_are_boosted(engine):
    hit = engine.search("`should_retry`").hits[0]
    assert hit.path == "src/app/router.py"
    assert hit.symbol == "RetryPolicy.should_retry"
    assert "defines RetryPolicy.should_retry" in hit.why


def test_long_bug_report_with_traceback_ranks_the_named_file_first(engine):
    result = engine.search(TRACEBACK)
    assert result.hits[0].path == "src/app/http_client.py"
    assert "path named in query" in result.hits[0].why


def test_tests_rank_below_source_unless_asked_for(engine):
    assert top(engine, "RetryPolicy attempts")[0] == "src/app/router.py"
    assert "tests/test_router.py" in top(engine, "test for RetryPolicy attempts")[:2]


def test_one_hit_per_file_and_scope(engine):
    result = engine.search("retry policy", limit=10)
    assert len({h.path for h in result.hits}) == len(result.hits)
    assert top(engine, "retry", path="src/app") == ["src/app/router.py"]
    assert top(engine, "widget render", path="src/web") == ["src/web/widget.ts"]


def test_incremental_refresh_touches_only_changed_files(engine, repo):
    engine.search("retry")
    assert engine.search("retry").index == {"files": 7, "refreshed": 0, "removed": 0}
    (repo / "src/app/parser.py").write_text("def parse_cookie(line):\n    return line.split(';')\n")
    result = engine.search("parse cookie")
    assert result.index["refreshed"] == 1
    assert result.hits[0].path == "src/app/parser.py"
    (repo / "src/app/new_module.py").write_text("def brand_new_function():\n    pass\n")
    (repo / "docs/notes.txt").unlink()
    result = engine.search("brand_new_function")
    assert result.index == {"files": 7, "refreshed": 1, "removed": 1}
    assert result.hits[0].path == "src/app/new_module.py"


def test_new_ignore_rule_is_applied(engine, repo):
    assert top(engine, "widget render") == ["src/web/widget.ts"]
    (repo / ".ignore").write_text("src/web/\n")
    assert top(engine, "widget render") == []


def test_find_symbol_definitions_and_references(engine):
    found = engine.find_symbol("RetryPolicy")
    assert found["definitions"][0] == {
        "name": "RetryPolicy", "kind": "class", "path": "src/app/router.py", "start_line": 3, "end_line": 10,
        "container": None,
    }  # fmt: skip
    refs = {(r["path"], r["line"]) for r in found["references"]}
    assert ("tests/test_router.py", 1) in refs and ("src/app/router.py", 13) in refs
    assert engine.find_symbol("should_retry", kind="method")["definitions"][0]["container"] == "RetryPolicy"
    assert engine.find_symbol("fetchJ")["definitions"][0]["name"] == "fetchJson"
    assert engine.find_symbol("nothing_like_this")["definitions"] == []


def test_read_span_and_list_dir(engine):
    span = engine.read_span("src/app/parser.py", 2, 3)
    assert span["text"].splitlines() == ['    2      name, _, value = line.partition(":")', "    3      if not name:"]
    engine.search("retry")
    assert engine.list_dir("src") == {"path": "src", "entries": ["app/", "web/"]}


@pytest.mark.parametrize("query", ["", "   ", "\x00\x00", "!!! ??? ..."])
def test_empty_or_wordless_queries_get_a_clear_error(engine, query):
    with pytest.raises(QueryError, match="query"):
        engine.search(query)


@pytest.mark.parametrize(
    "query", ["retry.*policy+ (c|d) [e] ^$ \\", 'NEAR(retry policy) AND "x" OR -y*', "retry\x00policy"]
)
def test_regex_fts_syntax_and_nul_bytes_are_searched_as_plain_words(engine, query):
    hit = engine.search(query).hits[0]
    assert (hit.path, hit.why) == ("src/app/router.py", "matches retry, policy")


def test_a_huge_one_word_query_is_cut_and_finds_nothing(engine):
    result = engine.search("x" * 1_000_000)
    assert result.hits == []
    assert result.notes == ["query truncated to its first 20,000 characters"]


def test_huge_query_is_truncated_with_a_note(engine):
    result = engine.search("retry policy " * 100_000)
    assert result.notes and "truncated" in result.notes[0]
    assert result.hits[0].path == "src/app/router.py"


@pytest.mark.parametrize("path", ["../", "/etc", "src/../../", "missing/dir"])
def test_paths_outside_or_missing_are_refused(engine, path):
    with pytest.raises(WorkspaceError):
        engine.search("retry", path=path)


def test_symlink_loop_in_root_is_harmless(engine, repo):
    os.symlink(repo, repo / "src" / "loop")
    assert engine.search("retry").index["files"] == 7


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="not a readable directory"):
        Engine(tmp_path / "missing")


def test_root_removed_after_start_is_a_clear_error(tmp_path):
    root = tmp_path / "gone"
    root.mkdir()
    (root / "a.py").write_text("a = 1\n")
    engine = Engine(root, index_path=tmp_path / "i.sqlite")
    engine.search("a")
    (root / "a.py").unlink()
    root.rmdir()
    with pytest.raises(CadreError, match="missing or not a directory"):
        engine.search("a")


def test_corrupt_index_is_rebuilt(repo, tmp_path):
    path = tmp_path / "index.sqlite"
    path.write_bytes(b"garbage" * 1000)
    assert Engine(repo, index_path=path).search("retry").hits[0].path == "src/app/router.py"
    engine = Engine(repo, index_path=path)
    engine.search("retry")
    engine.index.conn.execute("DROP TABLE chunks_fts")
    assert engine.search("retry").hits[0].path == "src/app/router.py"


def test_locked_index_serves_stale_results_with_a_note(engine, repo, tmp_path):
    engine.search("retry")
    (repo / "src/app/late.py").write_text("def late_arrival():\n    pass\n")
    blocker = sqlite3.connect(tmp_path / "index.sqlite", timeout=0, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        engine.index.conn.execute("PRAGMA busy_timeout=100")
        result = engine.search("retry")
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert any("stale" in n for n in result.notes)
    assert result.hits[0].path == "src/app/router.py"
    assert engine.search("late_arrival").hits[0].path == "src/app/late.py"


def test_two_engines_share_one_index(repo, tmp_path):
    a = Engine(repo, index_path=tmp_path / "shared.sqlite")
    b = Engine(repo, index_path=tmp_path / "shared.sqlite")
    a.search("retry")
    (repo / "src/app/shared.py").write_text("def shared_thing():\n    pass\n")
    errors = []

    def query(engine):
        try:
            for _ in range(5):
                engine.search("shared_thing")
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=query, args=(e,)) for e in (a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert a.search("shared_thing").hits[0].path == b.search("shared_thing").hits[0].path == "src/app/shared.py"
    assert a.index.query("SELECT COUNT(*) FROM files WHERE path = 'src/app/shared.py'") == [(1,)]


def test_queries_during_indexing_return(repo, tmp_path):
    for i in range(300):
        (repo / f"src/gen/mod_{i}.py").parent.mkdir(parents=True, exist_ok=True)
        (repo / f"src/gen/mod_{i}.py").write_text(f"def generated_{i}():\n    return {i}\n")
    engine = Engine(repo, index_path=tmp_path / "i.sqlite")
    results = []
    worker = threading.Thread(target=lambda: results.append(engine.search("generated_150")))
    worker.start()
    time.sleep(0.01)
    results.append(engine.search("retry policy"))
    worker.join(30)
    assert len(results) == 2
    assert all(r.hits for r in results)


def test_file_deleted_between_index_and_read(engine, repo):
    engine.search("parse header")
    (repo / "src/app/parser.py").unlink()
    with pytest.raises(WorkspaceError, match="not a file"):
        engine.read_span("src/app/parser.py")
    assert "src/app/parser.py" not in top(engine, "parse header")


def test_watch_mode_reindexes_in_the_background(repo, tmp_path, monkeypatch):
    monkeypatch.setenv("CADRE_SEARCH_INDEX_DIR", str(tmp_path / "idx"))
    from cadre_search.engine import engine_for
    from cadre_search.watch import start_watching

    stop = threading.Event()
    thread = start_watching(repo, stop)
    try:
        engine = engine_for(repo)
        deadline = time.monotonic() + 10
        while engine.index.file_count() < 7 and time.monotonic() < deadline:
            time.sleep(0.05)
        (repo / "src/app/watched.py").write_text("def seen_by_watcher():\n    pass\n")
        while time.monotonic() < deadline:
            if engine.index.query("SELECT 1 FROM files WHERE path = 'src/app/watched.py'"):
                break
            time.sleep(0.05)
        assert engine.index.query("SELECT 1 FROM files WHERE path = 'src/app/watched.py'") == [(1,)]
    finally:
        stop.set()
        thread.join(5)


def test_symbol_names_that_cannot_name_a_symbol_are_refused(engine):
    with pytest.raises(QueryError, match="1,000,000 characters long; pass at most 200"):
        engine.find_symbol("A" * 1_000_000)  # SQLite refused its LIKE pattern as too complex
    with pytest.raises(QueryError, match="pass a symbol name"):
        engine.find_symbol("Router.")  # matched every symbol


def test_a_long_run_of_capitals_is_read_in_linear_time():
    """Two regexes backtracked quadratically on "AAAA…": a 20,000-character query took ~5 s to plan."""
    started = time.perf_counter()
    plan("A" * 20_000)
    compound_parts("B" * 20_000)
    assert time.perf_counter() - started < 1.0
    assert parts("A" * 200) == () and parts("getUserName") == ("get", "user", "name")
