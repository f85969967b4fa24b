"""Ranking pieces, each on a small synthetic repository."""

from __future__ import annotations

from pathlib import Path

from cadre_search.engine import Engine
from tests.servers.conftest import make_repo


def _engine(tmp_path: Path, files: dict[str, str]) -> Engine:
    return Engine(make_repo(tmp_path / "repo", files), index_path=tmp_path / "index.sqlite")


def test_find_symbol_lists_the_exact_case_class_before_a_method_of_another_case(tmp_path):
    engine = _engine(
        tmp_path,
        {
            "a_app.py": "class App:\n    def router(self):\n        return 1\n",
            "z_routing.py": "class Router:\n    pass\n",
        },
    )
    names = [d["name"] for d in engine.find_symbol("Router")["definitions"]]
    assert names == ["Router", "router"]
    assert [d["name"] for d in engine.find_symbol("router")["definitions"]] == ["router", "Router"]
    assert [d["name"] for d in engine.find_symbol("Rout")["definitions"]] == ["Router", "router"]
