"""Ranking pieces, each on a small synthetic repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cadre_search.engine import Engine
from cadre_search.query import plan
from tests.servers.conftest import make_repo


@pytest.fixture
def build(tmp_path: Path) -> Iterator:
    engines: list[Engine] = []

    def make(files: dict[str, str]) -> Engine:
        engines.append(
            Engine(make_repo(tmp_path / f"repo{len(engines)}", files), index_path=tmp_path / f"{len(engines)}.db")
        )
        return engines[-1]

    yield make
    for engine in engines:
        if engine._index is not None:
            engine._index.close()


def _unrelated(n: int) -> dict[str, str]:
    """Filler modules, so that idf is not degenerate in a tiny repo."""
    return {f"pkg/other{i}.py": f"def unrelated{i}(value):\n    return value + {i}\n" for i in range(n)}


def top(engine: Engine, query: str) -> list[str]:
    return [h.path for h in engine.search(query).hits]


REPORT = """Errors from @validates use the attribute name instead of load_from

```python
class BadSchema(Schema):
    foo = fields.String(load_from="foo-name")

    @validates("foo")
    def validate_string(self, data):
        raise ValidationError("nope")
```

Traceback (most recent call last):
ValueError: it seems the key is wrong, I expected `foo-name`.
"""


def test_query_analysis_weights_library_names_above_the_users_own():
    query = plan(REPORT)
    assert {"load_from", "validationerror"} <= query.identifiers
    assert query.weights["load_from"] > query.weights["attribute"]
    # names the pasted code defines are the user's: plain words, not identifiers to look up
    assert "badschema" not in query.identifiers and "validate_string" not in query.identifiers
    assert query.weights["badschema"] == 1
    # string data of the code block and the fence's language are not searched
    assert "nope" not in query.weights and "python" not in query.weights
    # builtins are everywhere; traceback boilerplate and filler words say nothing
    assert "valueerror" not in query.identifiers
    assert not {"recent", "call", "last", "seems", "instead", "expected"} & set(query.weights)


def test_quoted_names_in_prose_stay_identifiers():
    query = plan('the `retry_policy` option and "max_redirects" are ignored')
    assert {"retry_policy", "max_redirects"} <= query.identifiers
    assert "retry_policy" in query.quoted


def test_a_common_word_does_not_outrank_the_topic_of_a_question(build):
    # the hand example: "handled" matched a small method and put it first
    engine = build(
        {
            "pkg/models.py": '"""Models."""\n\n\nclass Response:\n'
            + "".join(f"    def prop{i}(self):\n        return self._value{i}\n\n" for i in range(6))
            + "    def content(self):\n        # handled once the stream is read\n        return self._content\n",
            "pkg/client.py": "class Client:\n"
            "    def _redirect_method(self, request, response):\n"
            '        """The method a redirect uses: 303 changes POST to GET."""\n'
            "        method = request.method\n"
            "        if response.status_code == 303 and method != 'HEAD':\n"
            "            method = 'GET'\n"
            "        return method\n\n"
            "    def follow_redirects(self, response):\n"
            "        return self._redirect_method(response.request, response)\n",
            **{f"pkg/mod{i}.py": f"def helper{i}(method):\n    return method.upper()\n" for i in range(3)},
            **_unrelated(30),
        }
    )
    ranked = top(engine, "how are redirects handled when the method changes")
    assert ranked[0] == "pkg/client.py"
    assert ranked.index("pkg/models.py") > ranked.index("pkg/client.py")


def test_test_files_stubs_and_docs_rank_below_the_source(build):
    body = "def render_template(name, context):\n    return compile_template(name).render(context)\n"
    engine = build(
        {
            "jinja/render.py": body,
            "jinja/render.pyi": "def render_template(name: str, context: dict) -> str: ...\n" * 2,
            "jinja/testsuite/render.py": body + "\ndef check():\n    render_template('a', {})\n",
            "docs/render.md": "render_template(name, context) renders a template with a context.\n" * 2,
        }
    )
    assert top(engine, "render template with context")[0] == "jinja/render.py"
    assert top(engine, "test for render template")[0] == "jinja/testsuite/render.py"


def test_a_long_report_ranks_where_its_exception_is_raised_not_defined(build):
    engine = build(
        {
            "pkg/exceptions.py": "class TemplateSyntaxError(Exception):\n    pass\n",
            "pkg/parser.py": "from pkg.exceptions import TemplateSyntaxError\n\n\ndef parse_macro(tokens):\n"
            "    for argument in tokens:\n        if argument.default is None and seen_default:\n"
            "            raise TemplateSyntaxError('non-default argument follows default argument')\n",
        }
    )
    report = (
        "A macro with a non-default argument after a default one binds the defaults to the wrong argument; "
        "it should raise a TemplateSyntaxError like 'non-default argument follows default argument'."
    )
    assert top(engine, report)[0] == "pkg/parser.py"
    assert top(engine, "TemplateSyntaxError")[0] == "pkg/exceptions.py"


def test_find_symbol_lists_the_exact_case_class_before_a_method_of_another_case(build):
    engine = build(
        {
            "a_app.py": "class App:\n    def router(self):\n        return 1\n",
            "z_routing.py": "class Router:\n    pass\n",
        }
    )
    assert [d["name"] for d in engine.find_symbol("Router")["definitions"]] == ["Router", "router"]
    assert [d["name"] for d in engine.find_symbol("router")["definitions"]] == ["router", "Router"]
    assert [d["name"] for d in engine.find_symbol("Rout")["definitions"]] == ["Router", "router"]


def test_a_snippet_repeating_its_variables_counts_them_once():
    snippet = "```python\nup = commit.hash in hashes\nprint(commit.hash, commit.hash)\n```\n"
    assert plan("the walrus loses its parentheses\n\n" + snippet).weights["commit"] == 1
    assert plan("commit the commit before the commit hook runs").weights["commit"] == 3


def test_a_path_named_in_a_report_matches_only_whole_path_segments(build):
    engine = build(
        {
            "src/report.py": "def format_report(lines):\n    return '\\n'.join(lines)\n",
            "src/t.py": "def format_lines(lines):\n    return lines\n",
        }
    )
    hits = engine.search("error: cannot format t.py: the lines are wrong").hits
    assert hits[0].path == "src/t.py" and "path named in query" in hits[0].why
    assert all("path named" not in h.why for h in hits if h.path == "src/report.py")


def test_a_file_gains_from_its_other_matching_chunks(build, monkeypatch):
    from cadre_search import rank

    many = "".join(f"def step{i}(jar):\n    return expire(jar, {i})\n\n\n" for i in range(3))
    engine = build(
        {
            "pkg/jar.py": many,
            "pkg/single.py": "def drop(cookie_jar, when):\n    cookie_jar.expire(when)\n",
            **_unrelated(20),
        }
    )
    query = "cookie jar does not expire the cookie"
    assert top(engine, query)[0] == "pkg/jar.py"
    monkeypatch.setattr(rank, "MORE_CHUNK_WEIGHTS", ())  # the best chunk alone would pick the other file
    assert top(engine, query)[0] == "pkg/single.py"


def test_a_long_report_skips_the_class_of_the_exception_it_names(build):
    engine = build(
        {
            "pkg/exceptions.py": "class StreamError(Exception):\n    pass\n\n\n"
            'class StreamConsumed(StreamError):\n    """Raised on a second iteration."""\n',
            "pkg/client.py": "from pkg.exceptions import StreamConsumed\n\n\n"
            "def send_handling_redirects(request, allow_redirects):\n"
            "    response = send(request)\n    if not allow_redirects:\n        response.read()\n"
            "    return response\n",
            **_unrelated(10),
        }
    )
    report = (
        "Can't stream a redirect response body when redirects are disabled. With allow_redirects=False "
        "iterating the response fails with `StreamConsumed`, because the body was already read."
    )
    assert top(engine, report)[0] == "pkg/client.py"
    assert top(engine, "StreamConsumed")[0] == "pkg/exceptions.py"


def test_naming_a_test_class_asks_for_tests_unless_the_snippet_defines_it():
    assert plan("TestLinearDamper").mentions_tests
    assert not plan(
        "```python\nclass TestSchema(Schema):\n    name = fields.Str()\n```\nload drops name"
    ).mentions_tests
