"""Static bearer tokens for `cadre up`, each optionally naming its user, stored plain or as a SHA-256 hash.

A tokens file line (or a comma-separated `CADRE_TOKENS` entry) is one of:
`TOKEN`, `USER:TOKEN`, `sha256:HEX` or `USER:sha256:HEX` (HEX: the SHA-256 of the token, from
`cadre up --hash-token`, so no plain token sits on disk). `#` starts a comment line.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from pathlib import Path

from cadre_core.errors import CadreError

TOKENS_ENV = "CADRE_TOKENS"
MIN_TOKEN_CHARS = 16
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}")
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")
FORMS = "TOKEN, USER:TOKEN or USER:sha256:HEX"


def hash_token(token: str) -> str:
    """`sha256:HEX` for `token`, the form a tokens file stores instead of the token."""
    return "sha256:" + hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class Entry:
    user: str | None
    digest: bytes
    where: str


def parse_entry(text: str, where: str) -> Entry:
    """One entry; a malformed one raises a one-line error naming `where` (never the token)."""
    if any(c.isspace() for c in text):
        raise CadreError(f"{where}: expected {FORMS} with no spaces")
    parts = text.split(":")
    if len(parts) >= 2 and parts[-2] == "sha256":
        user = parts[0] if len(parts) == 3 else None
        if len(parts) > 3 or not SHA256_HEX.fullmatch(parts[-1]):
            raise CadreError(f"{where}: a hashed token is sha256: and 64 hex digits (print one with "
                             "`cadre up --hash-token`)")  # fmt: skip
        digest = bytes.fromhex(parts[-1])
    elif len(parts) <= 2:
        user, token = (None, parts[0]) if len(parts) == 1 else (parts[0], parts[1])
        if len(token) < MIN_TOKEN_CHARS:
            raise CadreError(f"{where}: every bearer token must be at least {MIN_TOKEN_CHARS} characters; "
                             "generate one with `openssl rand -hex 32`")  # fmt: skip
        digest = hashlib.sha256(token.encode()).digest()
    else:
        raise CadreError(f"{where}: expected {FORMS} (a token has no ':')")
    if user is not None and not USER_NAME.fullmatch(user):
        raise CadreError(f"{where}: a user name is 1-64 letters, digits or . _ @ + - (starting with a letter or digit)")
    return Entry(user, digest, where)


@dataclass(frozen=True)
class StaticTokens:
    entries: tuple[Entry, ...]

    def __bool__(self) -> bool:
        return bool(self.entries)

    def match(self, token: str) -> Entry | None:
        """The entry `token` belongs to, or None; compares with every entry, each in constant time."""
        digest = hashlib.sha256(token.encode()).digest()
        found = None
        for entry in self.entries:
            if hmac.compare_digest(digest, entry.digest):
                found = entry
        return found


def load_tokens(tokens_file: Path | None) -> StaticTokens:
    """The tokens of `CADRE_TOKENS` (comma-separated) and of `tokens_file` (one a line, `#` comments)."""
    texts = [(t.strip(), f"{TOKENS_ENV} entry {n}") for n, t in enumerate(os.environ.get(TOKENS_ENV, "").split(","), 1)]
    if tokens_file is not None:
        try:
            lines = tokens_file.read_text("utf-8").splitlines()
        except OSError as exc:
            raise CadreError(f"cannot read the tokens file {tokens_file}: {exc.strerror}") from exc
        except UnicodeDecodeError:
            raise CadreError(f"the tokens file {tokens_file} is not UTF-8 text") from None
        texts += [(line.strip(), f"{tokens_file} line {n}") for n, line in enumerate(lines, 1)]
    entries: list[Entry] = []
    seen: dict[bytes, str] = {}
    for text, where in texts:
        if not text or text.startswith("#"):
            continue
        entry = parse_entry(text, where)
        if entry.digest in seen:
            raise CadreError(f"{where}: the same token as {seen[entry.digest]}; give each person their own token")
        seen[entry.digest] = where
        entries.append(entry)
    return StaticTokens(tuple(entries))
