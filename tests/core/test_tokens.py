"""Static bearer tokens: the tokens file's forms, their users, hashed entries, and one-line errors."""

import hashlib
import io
import sys

import pytest

from cadre_app.tokens import hash_token, load_tokens
from cadre_core.errors import CadreError

ALICE = "alice-token-" + "a" * 20
BOB = "bob-token-" + "b" * 22
ANON = "anon-token-" + "c" * 21


def test_every_form_names_its_user(tmp_path, monkeypatch):
    monkeypatch.setenv("CADRE_TOKENS", f" {ANON} ,carol:{'d' * 16}")
    file = tmp_path / "tokens"
    file.write_text(f"# team tokens\n\nalice:{ALICE}\nbob:{hash_token(BOB)}\n{hash_token('e' * 16)}\n")
    tokens = load_tokens(file)
    users = {t: (e.user if (e := tokens.match(t)) else "refused") for t in (ALICE, BOB, ANON, "d" * 16, "e" * 16)}
    assert users == {ALICE: "alice", BOB: "bob", ANON: None, "d" * 16: "carol", "e" * 16: None}
    assert tokens.match("x" * 32) is None
    assert tokens.match(hash_token(BOB)) is None  # the stored hash is no token
    assert tokens.match(ALICE + " ") is None


def test_hash_token_is_the_sha256_hex_of_the_token():
    assert hash_token(BOB) == "sha256:" + hashlib.sha256(BOB.encode()).hexdigest()


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("alice:short", "line 2: every bearer token must be at least 16 characters"),
        ("alice:sha256:abc123", "line 2: a hashed token is sha256: and 64 hex digits"),
        (f"alice:sha256:{'g' * 64}", "line 2: a hashed token is sha256: and 64 hex digits"),
        (f"a:b:{ALICE}", "line 2: expected TOKEN, USER:TOKEN or USER:sha256:HEX (a token has no ':')"),
        (f"al ice:{ALICE}", "line 2: expected TOKEN, USER:TOKEN or USER:sha256:HEX with no spaces"),
        (f"al/ice:{ALICE}", "line 2: a user name is 1-64 letters, digits or . _ @ + -"),
        (f":{ALICE}", "line 2: a user name is 1-64 letters"),
        (f"bob:{ALICE}", "line 2: the same token as"),
    ],
)
def test_a_malformed_line_is_named_by_number_never_by_its_token(tmp_path, monkeypatch, line, message):
    monkeypatch.delenv("CADRE_TOKENS", raising=False)
    file = tmp_path / "tokens"
    file.write_text(f"alice:{ALICE}\n{line}\n")
    with pytest.raises(CadreError) as err:
        load_tokens(file)
    assert f"{file} {message}" in str(err.value)
    assert "\n" not in str(err.value)
    assert ALICE not in str(err.value) and line.split(":")[-1] not in str(err.value)


def test_a_bad_env_entry_is_named_by_position(monkeypatch):
    monkeypatch.setenv("CADRE_TOKENS", f"{ALICE},tiny")
    with pytest.raises(CadreError, match="^CADRE_TOKENS entry 2: every bearer token must be at least 16"):
        load_tokens(None)


def test_an_unreadable_tokens_file_says_so(tmp_path, monkeypatch):
    monkeypatch.delenv("CADRE_TOKENS", raising=False)
    with pytest.raises(CadreError, match="cannot read the tokens file"):
        load_tokens(tmp_path / "missing")
    (tmp_path / "bin").write_bytes(b"\xff\xfe" * 20)
    with pytest.raises(CadreError, match="is not UTF-8 text"):
        load_tokens(tmp_path / "bin")


def test_cadre_up_hash_token_reads_stdin_and_prints_the_line(monkeypatch, capsys):
    from cadre_app.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(BOB + "\n"))
    assert main(["up", "--hash-token"]) == 0
    assert capsys.readouterr().out == hash_token(BOB) + "\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["up", "--hash-token"]) == 2
    assert "at least 16 characters" in capsys.readouterr().err
