"""Redact secret-looking strings before text leaves for a provider.

The patterns are detect-secrets' own: every regex-based detector (AWS, GitHub,
OpenAI, Slack, Stripe, JWT, private keys, ...) plus its keyword detector for
`password = "..."` style assignments. Whole PEM key blocks are removed too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
_CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".conf", ".yaml", ".yml", ".toml", ".properties")


@dataclass(frozen=True)
class _Rules:
    detectors: tuple[tuple[str, re.Pattern[str]], ...]
    keyword_gate: re.Pattern[str]
    code_keyword: tuple[tuple[re.Pattern[str], int], ...]
    config_keyword: tuple[tuple[re.Pattern[str], int], ...]


@cache
def _rules() -> _Rules:
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import RegexBasedDetector

    detectors = []
    for secret_type, plugin in get_mapping_from_secret_type_to_class().items():
        if issubclass(plugin, RegexBasedDetector):
            detectors += [(secret_type, pattern) for pattern in plugin.denylist]
    return _Rules(
        detectors=tuple(detectors),
        keyword_gate=re.compile(keyword.DENYLIST_REGEX, re.IGNORECASE),
        code_keyword=tuple(keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP.items()),
        config_keyword=tuple(keyword.CONFIG_DENYLIST_REGEX_TO_GROUP.items()),
    )


def _label(kind: str) -> str:
    return f"[REDACTED {kind.lower().replace(' ', '-')}]"


def redact(text: str, *, filename: str = "") -> tuple[str, int]:
    """Return `text` with secrets replaced by `[REDACTED <kind>]`, and how many were found."""
    rules = _rules()
    count = 0

    def sub_whole(match: re.Match[str], kind: str) -> str:
        nonlocal count
        count += 1
        return _label(kind)

    # keep the block's line breaks, so line numbers after it stay true
    text = _PEM_BLOCK.sub(lambda m: sub_whole(m, "private key") + "\n" * m.group(0).count("\n"), text)
    for kind, pattern in rules.detectors:
        text = pattern.sub(lambda m, k=kind: sub_whole(m, k), text)

    keyword_rules = rules.config_keyword if filename.lower().endswith(_CONFIG_SUFFIXES) else rules.code_keyword
    if not rules.keyword_gate.search(text):
        return text, count
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if "REDACTED" in line or not rules.keyword_gate.search(line):
            continue
        for pattern, group in keyword_rules:
            match = pattern.search(line)
            if match and match.group(group) and len(match.group(group)) >= 4:
                start, end = match.span(group)
                line = line[:start] + _label("secret") + line[end:]
                count += 1
                break
        lines[i] = line
    return "\n".join(lines), count
