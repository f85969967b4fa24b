import os

import pytest

from cadre_core.errors import WorkspaceError
from cadre_core.redact import redact
from cadre_core.workspace import Workspace, roots_from_uris

FAKE_AWS = "AKIA" + "IOSFODNN7EXAMPLE"
FAKE_GH = "ghp_" + "a" * 36
FAKE_PEM = "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----"


@pytest.mark.parametrize("secret", [FAKE_AWS, FAKE_GH])
def test_known_token_patterns_are_redacted(secret):
    text, count = redact(f"x = 1\ntoken_value = call('{secret}')\n")
    assert secret not in text
    assert count >= 1
    assert "[REDACTED" in text


def test_keyword_assignments_and_pem_blocks_are_redacted_but_code_is_kept():
    source = f'password = "hunter2hunter2"\n{FAKE_PEM}\ndef check(password):\n    return password == get()\n'
    text, count = redact(source)
    assert "hunter2hunter2" not in text
    assert "MIIEpAIBAAKCAQEA7" not in text
    assert "def check(password):\n    return password == get()" in text
    assert count == 2


def test_env_style_config_files_use_config_rules():
    text, _ = redact("DB_PASSWORD=s3cr3tvalue99\nDEBUG=true\n", filename=".env")
    assert "s3cr3tvalue99" not in text
    assert "DEBUG=true" in text


def test_clean_text_is_unchanged():
    source = "def add(a, b):\n    return a + b\n"
    assert redact(source) == (source, 0)


def test_workspace_confines_paths(tmp_path):
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "a.py").write_text("x")
    outside = tmp_path / "secret.txt"
    outside.write_text("s")
    os.symlink(outside, root / "link")
    ws = Workspace([root])
    assert ws.resolve("src/a.py") == (root / "src" / "a.py").resolve()
    assert ws.relative(ws.resolve("src/a.py")) == "src/a.py"
    for bad in ("../secret.txt", str(outside), "link", "src/../../secret.txt", "a\x00b"):
        with pytest.raises(WorkspaceError):
            ws.resolve(bad)


def test_missing_root_is_a_clear_error(tmp_path):
    with pytest.raises(WorkspaceError, match="not a readable directory"):
        Workspace([tmp_path / "nope"])


def test_roots_from_uris():
    assert [str(p) for p in roots_from_uris(["file:///a/b%20c", "https://x"])] == ["/a/b c"]


def test_redaction_keeps_every_line_break_so_line_numbers_stay_true():
    source = f"a = 1\n{FAKE_PEM}\ntoken = '{FAKE_GH}'\nb = 2\n"
    text, _ = redact(source)
    assert text.count("\n") == source.count("\n")
    assert text.split("\n")[5] == "b = 2"
