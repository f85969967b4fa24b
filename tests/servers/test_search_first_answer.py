"""The first query on a large fresh tree is answered while the index builds in the background."""

import sqlite3
import threading
from pathlib import Path

import pytest

from cadre_search import build
from cadre_search.build import FileQueue
from cadre_search.engine import Engine
from cadre_search.files import FileEntry
from cadre_search.index import Index

N_FILES = 500


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    for i in range(N_FILES):
        folder = root / f"pkg{i % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        body = "".join(f"def helper_{i}_{j}(value):\n    return value + {j}\n\n" for j in range(20))
        (folder / f"mod{i}.py").write_text(body)
    (root / "pkg3/retry_policy.py").write_text(
        "class RetryPolicy:\n    def backoff_seconds(self, attempt):\n        return 2 ** attempt\n"
    )
    return root


@pytest.fixture
def early(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this small tree count as large, and keep the early set small."""
    monkeypatch.setattr(build, "EARLY_MIN_BYTES", 1)
    monkeypatch.setattr(build, "EARLY_FILES", 5)
    monkeypatch.setattr(build, "FILL_FILES", 5)


def test_first_answer_comes_before_the_index_is_complete_and_later_ones_use_it(tree: Path, tmp_path: Path, early):
    engine = Engine(tree, index_path=tmp_path / "index.sqlite", answer_while_building=True)
    first = engine.search("retry policy backoff seconds")
    assert first.hits[0].path == "pkg3/retry_policy.py"
    assert first.index["building"] is True and "still building" in first.notes[0]
    engine._builder.join()
    assert engine.index.complete() and engine.index.file_count() == N_FILES + 1
    later = engine.search("retry policy backoff seconds")
    assert later.hits[0].path == "pkg3/retry_policy.py"
    assert not later.notes and "building" not in later.index


def test_concurrent_first_queries_each_get_their_files(tree: Path, tmp_path: Path, early):
    engine = Engine(tree, index_path=tmp_path / "index.sqlite", answer_while_building=True)
    queries = {"retry policy backoff": "pkg3/retry_policy.py", "helper_417_3 value": "pkg7/mod417.py",
               "helper_12_19": "pkg2/mod12.py", "helper_250_0": "pkg0/mod250.py"}  # fmt: skip
    answers: dict[str, str] = {}
    errors: list[BaseException] = []

    def ask(query: str) -> None:
        try:
            answers[query] = engine.search(query).hits[0].path
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=ask, args=(q,)) for q in queries]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors and answers == queries
    engine._builder.join()
    assert engine.index.file_count() == N_FILES + 1


def test_a_small_first_build_is_waited_for_without_holding_it(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(build, "HOLD_S", 120.0)  # the build is held only while a query picks its files
    engine = Engine(tree, index_path=tmp_path / "index.sqlite", answer_while_building=True)
    result = engine.search("retry policy backoff seconds")  # under EARLY_MIN_BYTES: no early answer
    assert result.hits[0].path == "pkg3/retry_policy.py" and not result.notes
    assert engine.index.complete() and result.took_ms < 60_000


def test_the_queue_hands_out_hurried_files_first_and_wakes_their_waiter():
    entries = [FileEntry(f"f{i}.py", 10, 0) for i in range(10)]
    queue = FileQueue(entries)
    assert [e.path for e in queue.take(2)] == ["f0.py", "f1.py"]
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(queue.hurry(["f7.py", "f1.py"], 10)))
    waiter.start()
    while not queue._urgent:  # the waiter has queued its request
        threading.Event().wait(0.01)
    assert [e.path for e in queue.take(2)] == ["f7.py", "f2.py"]  # f1 is being indexed already
    queue.stored(["f0.py", "f1.py", "f7.py"])
    waiter.join(5)
    assert result == [True]
    queue.close()
    assert queue.hurry(["f9.py"], 10) is False  # a closed queue never blocks


def test_a_failed_background_build_falls_back_to_a_foreground_refresh(
    tree: Path, tmp_path: Path, early, monkeypatch: pytest.MonkeyPatch
):
    real = Index._prepared_batches
    calls = []

    def failing_once(self, queue):
        calls.append(threading.current_thread().name)
        if len(calls) == 1:
            raise sqlite3.OperationalError("disk I/O error")
        return real(self, queue)

    monkeypatch.setattr(Index, "_prepared_batches", failing_once)
    engine = Engine(tree, index_path=tmp_path / "index.sqlite", answer_while_building=True)
    result = engine.search("retry policy backoff seconds")
    assert result.hits[0].path == "pkg3/retry_policy.py" and not result.notes
    assert calls[0] == "cadre-search-build" and len(calls) == 2 and engine.index.complete()
