"""Eval suites: TOML and JSONL loading, the shipped starter suites, and errors that name the task and field."""

import json
import textwrap

import pytest

from cadre_core.errors import SuiteError
from cadre_core.evals.suite import (
    ContainsCheck,
    JsonSchemaCheck,
    JudgeCheck,
    PythonCheck,
    RegexCheck,
    builtin_suite,
    load_suite,
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_toml_suite_with_files_args_and_every_checker_type(tmp_path):
    write(tmp_path, "checks.py", "def ok(output):\n    return True\n")
    path = write(
        tmp_path,
        "s.toml",
        """
        name = "mine"
        role = "oracle"

        [[tasks]]
        id = "one"
        prompt = "Why?"
        files = { "app/a.py" = "x = 1\\n" }
        args = { mode = "debug" }
        check = { type = "contains", value = ["lock", "race"] }

        [[tasks]]
        prompt = "Second"
        check = [
          { type = "regex", pattern = "(?i)lock" },
          { type = "json-schema", schema = { type = "object" } },
          { type = "python", function = "checks.py:ok" },
          { type = "judge", model = "openai:gpt-5.2", criteria = "Names the race." },
          { type = "exact", value = "x", on = "answer" },
        ]
        """,
    )
    suite = load_suite(path)
    assert suite.name == "mine" and suite.role == "oracle"
    one, two = suite.tasks
    assert one.files == {"app/a.py": "x = 1\n"} and one.args == {"mode": "debug"}
    assert isinstance(one.check[0], ContainsCheck) and one.check[0].value == ["lock", "race"]
    assert two.id == "task-2"
    kinds = [type(c) for c in two.check]
    assert kinds[:4] == [RegexCheck, JsonSchemaCheck, PythonCheck, JudgeCheck]
    assert two.check[2]._callable is not None and two.check[2]._callable(None) is True


def test_jsonl_suite(tmp_path):
    lines = [
        {"id": "q1", "prompt": "where is the retry policy", "check": {"type": "regex", "pattern": "router\\.py"}},
        {"id": "q2", "prompt": "parse header", "check": {"type": "contains", "value": "parser.py"}},
    ]
    path = write(tmp_path, "s.jsonl", "\n".join(json.dumps(x) for x in lines) + "\n\n")
    suite = load_suite(path)
    assert [t.id for t in suite.tasks] == ["q1", "q2"] and suite.role is None


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ('[[tasks]]\nid = "a"\ncheck = { type = "exact", value = "x" }\n', "task 'a' (#1): field 'prompt': required"),
        ('[[tasks]]\nid = "a"\nprompt = "p"\ncheck = { type = "fuzzy" }\n', "task 'a' (#1): field 'check.0': unknown"),
        (
            '[[tasks]]\nid = "b"\nprompt = "p"\ncheck = { type = "regex", pattern = "(" }\n',
            "task 'b' (#1): field 'check.0.pattern': not a valid regular expression",
        ),
        (
            '[[tasks]]\nid = "c"\nprompt = "p"\ncheck = { type = "contains", value = "x", typo = 1 }\n',
            "field 'check.0.typo': unknown field",
        ),
        (
            '[[tasks]]\nid = "d"\nprompt = "p"\nfiles = { "../etc/x" = "" }\ncheck = { type = "exact", value = "x" }\n',
            "task 'd' (#1): field 'files': '../etc/x' must be a relative path",
        ),
        ('[[tasks]]\nid = "e"\nprompt = "p"\n', "task 'e' (#1): field 'check': required"),
        (
            '[[tasks]]\nid = "f"\nprompt = "p"\ncheck = { type = "python", function = "nope.py:f" }\n',
            "task 'f' (#1): field 'check.0.function':",
        ),
        (
            '[[tasks]]\nid = "g"\nprompt = "p"\ncheck = { type = "judge", model = "nobody:x", criteria = "c" }\n',
            "task 'g' (#1): field 'check.0.model'",
        ),
        (
            '[[tasks]]\nid = "h"\nprompt = "p"\ncheck = { type = "exact", value = "x" }\n'
            '[[tasks]]\nid = "h"\nprompt = "q"\ncheck = { type = "exact", value = "x" }\n',
            "task 'h' (#2): the id 'h' is used twice",
        ),
        ("tasks = 3\n", "'tasks' must be an array of tables"),
        ('colour = "red"\n', "unknown top-level key(s) colour"),
        ("[[tasks]\n", "is not valid TOML"),
    ],
)
def test_a_bad_suite_names_the_task_and_the_field(tmp_path, body, expected):
    path = write(tmp_path, "bad.toml", body)
    with pytest.raises(SuiteError) as err:
        load_suite(path)
    assert f"suite {path}" in str(err.value)
    assert expected in str(err.value)


def test_bad_jsonl_lines_name_the_line(tmp_path):
    path = write(
        tmp_path, "bad.jsonl", '{"id": "ok", "prompt": "p", "check": {"type": "exact", "value": "x"}}\n{oops\n'
    )
    with pytest.raises(SuiteError, match=r"line 2: not valid JSON"):
        load_suite(path)
    path = write(tmp_path, "bad2.jsonl", '{"id": "q7", "prompt": "", "check": {"type": "exact", "value": "x"}}\n')
    with pytest.raises(SuiteError, match=r"task 'q7' \(#1, line 1\): field 'prompt': String should have at least"):
        load_suite(path)


def test_python_checker_names_a_missing_function_and_a_bad_module(tmp_path):
    write(tmp_path, "checks.py", "def ok(output):\n    return True\n")
    path = write(
        tmp_path,
        "s.toml",
        '[[tasks]]\nid = "a"\nprompt = "p"\ncheck = { type = "python", function = "checks.py:nope" }\n',
    )
    with pytest.raises(SuiteError, match=r"'check.0.function': 'checks.py' has no function 'nope'"):
        load_suite(path)
    path = write(
        tmp_path,
        "t.toml",
        '[[tasks]]\nid = "a"\nprompt = "p"\ncheck = { type = "python", function = "no_such_mod:f" }\n',
    )
    with pytest.raises(SuiteError, match=r"module 'no_such_mod' cannot be imported"):
        load_suite(path)


def test_missing_file_and_wrong_extension(tmp_path):
    with pytest.raises(SuiteError, match="does not exist"):
        load_suite(tmp_path / "none.toml")
    with pytest.raises(SuiteError, match=r"use a \.toml or \.jsonl file"):
        load_suite(write(tmp_path, "s.yaml", "tasks: []\n"))
    with pytest.raises(SuiteError, match="has no tasks"):
        load_suite(write(tmp_path, "empty.toml", 'name = "x"\n'))


@pytest.mark.parametrize(("role", "least"), [("oracle", 5), ("librarian", 5), ("search", 5)])
def test_starter_suites_load_and_are_self_contained(role, least):
    suite = load_suite(builtin_suite(role))
    assert suite.role == role
    assert least <= len(suite.tasks) <= 10
    if role != "librarian":
        assert all(task.files for task in suite.tasks)
    assert builtin_suite("review") is None
