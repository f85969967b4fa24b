"""Eval suites: TOML and JSONL loading, the shipped starter suites, and errors that name the task and field."""

import json
import textwrap

import pytest

from cadre_app.evals.suite import (
    ContainsCheck,
    JsonSchemaCheck,
    JudgeCheck,
    PythonCheck,
    RegexCheck,
    builtin_suite,
    load_suite,
)
from cadre_core.errors import SuiteError


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


@pytest.mark.parametrize(("role", "least"), [("oracle", 5), ("librarian", 5), ("search", 5), ("vision", 5)])
def test_starter_suites_load_and_are_self_contained(role, least):
    suite = load_suite(builtin_suite(role))
    assert suite.role == role
    assert least <= len(suite.tasks) <= 10
    if role != "librarian":
        assert all(task.files for task in suite.tasks)
    assert builtin_suite("review") is None


# For every starter task: an answer in the style of a right one, and a plausible wrong one (the kind a weak model
# gives: a real-sounding cause that is not the defect, or an outdated API). Checkers only, no model.
ANSWERS = {
    "vision": {
        "svg-button-colour": (
            "The Delete button is red (#d32f2f) and sits to the right of Cancel.",
            "The Delete button is grey and sits to the left of Cancel.",
        ),
        "mermaid-cache-miss": (
            "On a miss the request queries the database, then writes the result to the cache.",
            "On a miss the cached body is returned straight away.",
        ),
        "dot-cycle": (
            "billing -> ledger -> invoices -> billing is a cycle.",
            "gateway depends on auth and billing; there is no cycle.",
        ),
        "svg-chart-tallest": ("March has the tallest bar (180 px).", "February has the tallest bar."),
        "mermaid-sequence-token": (
            "The AuthServer issues the access token to the App.",
            "The User hands the token to itself after consent.",
        ),
    },
    "oracle": {
        "counter-race": (
            "record() reads, increments and writes self.hits without a lock, so two threads can read the same "
            "value and one increment is lost. Guard it with a threading.Lock.",
            "serve() starts one thread per request, which is too many; use a ThreadPoolExecutor with 8 workers.",
        ),
        "mutable-default": (
            "`seen: list[str] = []` is a mutable default: the list is created once and shared between calls. "
            "Default it to None and make a new list inside.",
            "add_tags mutates `item`, which the caller reuses between calls; copy the dict before setting tags.",
        ),
        "sql-injection": (
            "The email is formatted into the SQL, so this is SQL injection. Use a parameterized query: "
            "conn.execute('... WHERE email = ?', (email,)).",
            "The cursor is never closed; use a with block, and fetchone() can return None, so handle that.",
        ),
        "pagination-off-by-one": (
            "`end = start + size - 1` is off by one: a slice's end is exclusive, so use `end = start + size`.",
            "Page numbers come from the UI as 1-based, so start should be (number - 1) * size.",
        ),
        "blocking-sleep-in-async": (
            "time.sleep() blocks the event loop, so every other request waits; use await asyncio.sleep(...).",
            "The bucket refills too slowly; lower refill_seconds so rate-limited clients wait less.",
        ),
        "naive-aware-datetime": (
            "datetime.now() is naive but started_at is aware, and comparing them raises TypeError. "
            "Use datetime.now(timezone.utc).",
            "started_at is timezone-aware, so convert it to UTC with astimezone() before adding the timedelta.",
        ),
        "float-money": (
            "Binary floats cannot hold cents exactly; use decimal.Decimal (or integer cents) and quantize.",
            "Round each line to 2 decimal places before summing so the total matches the lines shown.",
        ),
        "late-binding-closure": (
            "Late binding: each lambda reads i when it is called, after the loop ended at 4. "
            "Bind it now with `lambda i=i: print(...)`.",
            "range(count) stops at 4, so the last handler always wins; use range(count + 1).",
        ),
    },
    "librarian": {
        "httpx-timeouts": (
            "Pass httpx.Client(timeout=httpx.Timeout(60.0, connect=5.0)).",
            "Call httpx.get(url, timeout=60); httpx uses one timeout for every phase.",
        ),
        "pydantic-validate-dict": ("User.model_validate(data)", "Use User.parse_obj(data)."),
        "stdlib-iso-datetime": (
            "datetime.fromisoformat('2024-05-01T12:30:00+02:00')",
            "Use dateutil.parser.isoparse(s); the standard library cannot parse offsets.",
        ),
        "requests-retries": (
            "session.mount('https://', HTTPAdapter(max_retries=Retry(total=3, backoff_factor=1, "
            "status_forcelist=[502, 503])))",
            "Wrap requests.get in a for loop of 3 tries with time.sleep(2 ** attempt) between them.",
        ),
        "sqlalchemy-scalars": (
            "session.scalars(select(User).where(User.active.is_(True))).all()",
            "session.query(User).filter_by(active=True).all()",
        ),
        "structlog-json": (
            "structlog.configure(processors=[structlog.processors.TimeStamper(), structlog.processors.JSONRenderer()])",
            "logging.basicConfig(format='%(message)s') and pass json.dumps(event) to every log call.",
        ),
        "pytest-parametrize-ids": (
            "@pytest.mark.parametrize('a,b', [(1, 2), (3, 4), (5, 6)], ids=['small', 'mid', 'large'])",
            "Write three test functions, test_small, test_mid and test_large, one per input pair.",
        ),
    },
    "search": {
        "purge-expired-sessions": ("auth/sessions.py:12 purge_expired()", "jobs/cleanup.py:3 run_cleanup()"),
        "international-shipping": ("shop/shipping.py:20 international_rate()", "shop/pricing.py:8 price()"),
        "traceback-currency": ("billing/money.py:31 format_amount()", "billing/render.py:14 render()"),
        "search-box-debounce": ("src/hooks/useDebounce.ts:1", "src/components/SearchBox.tsx:22"),
        "go-read-timeout": ("cmd/api/main.go:18 ReadTimeout", "internal/db/pool.go:9 ConnMaxLifetime"),
        "webhook-retries": ("webhooks/dispatcher.py:40 retry()", "webhooks/models.py:12 Delivery"),
    },
}


@pytest.mark.anyio
@pytest.mark.parametrize("role", sorted(ANSWERS))
async def test_starter_checkers_pass_right_answers_and_fail_plausible_wrong_ones(role):
    from cadre_app.evals.checkers import Output, check

    suite = load_suite(builtin_suite(role))
    assert sorted(t.id for t in suite.tasks) == sorted(ANSWERS[role])  # a new starter task needs answers here
    for task in suite.tasks:
        right, wrong = ANSWERS[role][task.id]
        for text, expected in ((right, True), (wrong, False)):
            result = {"answer": text, "citations": [{"path": p} for p in task.files]}
            verdict = await check(Output(task, text, result, None, "openai:gpt-5.2"))
            assert verdict.passed is expected, (task.id, text, verdict.reason)
