"""The reading gate (cadre_core.files): secret files refused, only regular files opened, sizes capped."""

import os
import time

import pytest

from cadre_core.files import (
    BINARY,
    NOT_FILE,
    SENSITIVE,
    UnreadableFileError,
    file_problem,
    is_secret_path,
    is_text_file,
    read_lines,
    read_redacted,
    read_text,
)
from tests.secret_corpus import corpus, leaks, secret_files


@pytest.mark.parametrize(
    "rel",
    [".env", ".env.local", "deploy/.env.production", "prod.env", "id_rsa", "id_ed25519.pub", "certs/key.pem",
     "server.KEY", "store.p12", "app.pfx", ".netrc", ".pgpass", ".npmrc", ".pypirc", ".git-credentials",
     "credentials.json", ".aws/credentials", ".ssh/config", "home/.kube/config", "gcloud/adc.json",
     "client_secret_123.apps.json", "terraform.tfstate", "secrets.yaml", "vault.kdbx"],
)  # fmt: skip
def test_secret_paths_are_recognised(rel):
    assert is_secret_path(rel)


@pytest.mark.parametrize("rel", ["src/keys.py", "docs/environment.md", "README.md", "key_test.go", "pem.py"])
def test_ordinary_paths_are_not_secret(rel):
    assert not is_secret_path(rel)


def test_every_secret_file_is_refused_by_name_or_shape(tmp_path):
    for rel, text in secret_files(corpus()).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        # gcp-demo-3f9a.json and deploy_key have names that say nothing: they are refused by their shape
        with pytest.raises(UnreadableFileError, match=SENSITIVE):
            read_text(path)
        assert file_problem(path) == SENSITIVE
        with pytest.raises(UnreadableFileError, match=SENSITIVE):
            read_lines(path, 2, 3)
    assert not is_secret_path("gcp-demo-3f9a.json") and not is_secret_path("deploy_key")


def test_a_link_to_a_secret_file_is_refused(tmp_path):
    (tmp_path / ".env").write_text("DB_PASSWORD=x\n")
    os.symlink(tmp_path / ".env", tmp_path / "harmless.txt")
    with pytest.raises(UnreadableFileError, match=SENSITIVE):
        read_text(tmp_path / "harmless.txt")


def test_a_fifo_is_never_opened_and_nothing_blocks(tmp_path):
    fifo = tmp_path / "notes.md"
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(UnreadableFileError, match=NOT_FILE):
        read_text(fifo)
    with pytest.raises(UnreadableFileError, match=NOT_FILE):
        read_lines(fifo, 1, 5)
    assert file_problem(fifo) == NOT_FILE
    assert not is_text_file(fifo)
    assert time.monotonic() - started < 2


def test_whole_reads_are_capped_and_binary_files_refused(tmp_path):
    big = tmp_path / "big.txt"
    big.write_bytes(b"x" * 1_000_001)
    with pytest.raises(UnreadableFileError, match="larger than 1 MB"):
        read_text(big)
    assert read_text(big, max_bytes=2_000_000).startswith("xxx")
    blob = tmp_path / "blob.dat"
    blob.write_bytes(b"\x7fELF\x00\x01")
    assert file_problem(blob) == BINARY


def test_a_line_range_of_a_50_mb_file_is_read_without_loading_it(tmp_path):
    big = tmp_path / "log.txt"
    line = b"an ordinary log line that goes on for a while, number here\n"
    with big.open("wb") as f:
        f.write(line * (50_000_000 // len(line)))
    started = time.monotonic()
    lines, first, total = read_lines(big, 10, 14)
    took = time.monotonic() - started
    assert (first, len(lines), total) == (10, 5, None)  # total unknown: the end was never read
    assert lines[0] == line.decode().rstrip("\n")
    assert took < 1.0, took
    started = time.monotonic()
    near_end = 50_000_000 // len(line) - 2
    lines, first, total = read_lines(big, near_end, near_end + 10)  # skipped a megabyte at a time
    assert (first, len(lines), total) == (near_end, 3, near_end + 2)
    assert time.monotonic() - started < 1.0
    assert read_lines(big, near_end + 50, near_end + 60) == ([], near_end + 50, near_end + 2)
    with pytest.raises(UnreadableFileError, match="larger than"):
        read_text(big)


def test_line_ranges_are_redacted_with_the_whole_key_in_view(tmp_path):
    found = corpus()
    pem = next(s for s in found if s.kind == "pem-rsa-pkcs1")
    body = pem.text.splitlines()[1:-1]
    notes = tmp_path / "notes.md"
    notes.write_text("# Notes\n\n" + "\n".join(body) + "\n\nThe end.\n")
    for start in range(1, len(body) + 3):  # every one-line and two-line window, the tail included
        for width in (1, 2):
            lines, _, total = read_lines(notes, start, start + width - 1)
            assert not leaks([pem], "\n".join(lines)), (start, width, lines)
    assert read_lines(notes, 1, 1)[0] == ["# Notes"]
    assert total == len(body) + 4
    assert "The end." in read_redacted(notes)
