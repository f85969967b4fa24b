"""Redact secret-looking strings before text leaves for a provider or goes back to the host.

Four layers, each keeping every line break so line numbers stay true:
1. Private-key PEM blocks, header to footer.
2. Token shapes: detect-secrets' regex detectors (all but public IPs), plus the vendor tokens it lacks
   or cuts short (GitHub fine-grained, GitLab, Slack, Stripe, OpenAI project, Anthropic, Google, npm,
   Hugging Face, whole JWTs, bearer tokens).
3. Key bodies without their header: two or more lines of base64 (40+ characters) in a row and the short
   line that ends them; a base64 line next to a PEM header or footer; any single random-looking token
   of 32+ characters (high Shannon entropy, no word structure).
4. Keyword assignments (password, secret, token, api key, ...) quoted or not, in code, `.env`, YAML,
   INI, TOML, JSON and XML forms: detect-secrets' keyword regexes, then an unquoted-value rule that
   skips code (`password = request.form["password"]`, `token = get_token()`, `password: str`).
"""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache, partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cadre_core.models.base import Message, ModelRequest

_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z0-9 ]*PRIVATE KEY[A-Z0-9 ]*)-----.*?(?:-----END \1-----|\Z)", re.DOTALL)
_CONFIG_SUFFIXES = (".env", ".ini", ".cfg", ".conf", ".yaml", ".yml", ".toml", ".properties")
_PROSE_SUFFIXES = (".md", ".markdown", ".rst", ".txt", ".adoc", ".json", ".xml", ".tfvars", ".envrc", ".sh", ".bash")
_CODE_SUFFIXES = (
    ".py", ".pyi", ".js", ".mjs", ".cjs", ".jsx", ".ts", ".tsx", ".mts", ".cts", ".go", ".rs", ".java", ".kt",
    ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".rb", ".php", ".swift", ".scala",
)  # fmt: skip
_SKIPPED_DETECTORS = {"Public IP (ipv4)"}  # an address is not a secret, and docs are full of them
_KEYWORD_STYLE = "(?:(?<=\\W)|(?<=^))"
"""How detect-secrets' IBM, Cloudant and SoftLayer `name = value` patterns start: slow (a tenth of a second
a megabyte each), and layer 4 catches those assignments by their key names."""
_DETECTOR_GATES = {  # the literal each detector needs, checked with `in` (fast) before its regex runs
    "Artifactory Credentials": ("AKC", "AP"),
    "Mailchimp Access Key": ("-us",),
    "Cloudant Credentials": ("cloudant.com",),
    "SoftLayer Credentials": ("softlayer.com",),
    "Telegram Bot Token": (":",),
    "Slack Token": ("xox", "hooks.slack.com"),
    "Stripe Access Key": ("k_live_",),
    "Discord Bot Token": (".",),
}
_GROUP_ONE = {"Basic Auth Credentials", "AWS Access Key"}
"""Detectors whose first group is the secret itself (`postgres://user:[REDACTED]@host` stays readable)."""
_EXTRA_TOKENS = (  # literal prefixes first, so the regex engine can skip ahead; `secret` is what is replaced
    ("github-token", r"gh[pousr]_[A-Za-z0-9_]{30,}|github_pat_[A-Za-z0-9_]{22,}"),
    ("gitlab-token", r"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-[A-Za-z0-9_-]{20,}"),
    ("slack-token", r"x(?:ox[abposr]|app)-[A-Za-z0-9-]{10,}"),
    ("stripe-key", r"k_(?:live|test)_[0-9A-Za-z]{16,}"),  # sk_ and rk_; pk_ is publishable
    ("stripe-key", r"whsec_[0-9A-Za-z]{24,}"),
    ("anthropic-key", r"sk-ant-[a-z0-9]+-[A-Za-z0-9_-]{20,}"),
    ("openai-key", r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}|sk-[A-Za-z0-9]{40,}"),
    ("google-api-key", r"AIza[0-9A-Za-z_-]{35}"),
    ("npm-token", r"npm_[A-Za-z0-9]{36}"),
    ("huggingface-token", r"hf_[A-Za-z0-9]{30,}"),
    ("json-web-token", r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
    ("bearer-token", r"(?:Bearer|bearer|BEARER) (?P<secret>[A-Za-z0-9._~+/-]{16,}=*)"),
)

# layer 3: header-less key bodies and random tokens
_B64_SHORT = re.compile(r"""(?m)^[ \t>#*/"'`]*([A-Za-z0-9+/]{4,}={0,2})(?:\\n)?["'`,;+\\ \t\r]*$""")
_PEM_EDGE = re.compile(r"-----(?:BEGIN|END) [A-Z0-9 ]*-----")
_KEY_BODY_START = re.compile(
    r"MII[A-Za-z0-9+/]{3}IBA[AD]|MI[GH][A-Za-z0-9+/]AgE[AB]|MHcCAQEE|MC4CAQAw|b3BlbnNzaC1rZXktdjE"
)
"""The base64 of a private key's first bytes: the DER header of PKCS#1/PKCS#8 RSA, DSA and EC keys
(RFC 8017 A.1.2, RFC 5208 5, RFC 5915 3) and OpenSSH's `openssh-key-v1` magic. Its low entropy (runs of
`A`) hides it from the randomness test, so a key's first line alone is known by its start."""
_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}")
_BODY_PADDING = re.compile(r"A{4,}[A-Za-z0-9+/]{0,10}$")
_OPENSSH_TAIL = re.compile(r"[A-Za-z0-9+/]{8,}A{5,}A[QEB][A-Za-z0-9+/]{0,9}={0,2}")
"""The end of an OpenSSH key body: key bytes, a zero-length comment and the 1, 2, 3... padding bytes."""
_WORDS = re.compile(r"[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_URL = re.compile(r"[a-z][a-z0-9+.-]*://\S*", re.IGNORECASE)

# layer 4: keyword assignments
_KEYWORDS = re.compile(r"(?i)pass|pwd|secret|token|key|credential|contrase")
_ASSIGN = re.compile(
    r"""(?P<key>[A-Za-z_][A-Za-z0-9_.-]*)(?P<close>(?:\\?["'\]]){0,2})[ \t]*(?P<op>:=|=>|[!=]==?|=|:)[ \t]*"""
)
_XML_ELEMENT = re.compile(r"<(?P<key>[A-Za-z_][\w.-]*)>(?P<value>[^<\n]{4,})</(?P=key)>")
_LINE_START = re.compile(r"""^[ \t]*(?:(?:#+|//|;|--)[ \t]*)?(?:export[ \t]+|set[ \t]+|-[ \t]+)?["']?$""")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SECRET_ENDINGS = ("password", "passwd", "passphrase", "secret", "token")
_SECRET_WORDS = frozenset({"pwd", "pass", "apikey", "credential", "credentials", "contraseña", "contrasena"})
_KEY_OWNERS = frozenset(
    [
        "api",
        "auth",
        "access",
        "private",
        "priv",
        "secret",
        "client",
        "account",
        "service",
        "signing",
        "encryption",
        "master",
        "license",
        "app",
        "consumer",
        "db",
        "database",
        "storage",
        "subscription",
        "webhook",
        "shared",
        "session",
    ]
)
_NOT_VALUES = frozenset(
    [
        "none",
        "null",
        "nil",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "str",
        "string",
        "bytes",
        "int",
        "bool",
        "any",
        "optional",
        "undefined",
        "required",
        "secretstr",
        "password",
        "secret",
        "token",
    ]
)
_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+")
_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+")
_UNQUOTED_END = re.compile(r"""[\s,;'"`)}\]&]""")


@dataclass(frozen=True)
class _Rules:
    detectors: tuple[tuple[str, re.Pattern[str], tuple[str, ...]], ...]
    keyword_gate: re.Pattern[str]
    code_keyword: tuple[tuple[re.Pattern[str], int], ...]
    config_keyword: tuple[tuple[re.Pattern[str], int], ...]


_Material = dict[str, list[list[Any]]]
"""The rules as plain data (JSON): pattern sources, flags, gates and groups, for the on-disk cache."""


@cache
def _rules() -> _Rules:
    material = _cached_material()
    [(gate, gate_flags)] = material["keyword_gate"]
    return _Rules(
        detectors=tuple((k, re.compile(p, f), tuple(g)) for k, p, f, g in material["detectors"]),
        keyword_gate=re.compile(gate, gate_flags),
        code_keyword=tuple((re.compile(p, f), g) for p, f, g in material["code_keyword"]),
        config_keyword=tuple((re.compile(p, f), g) for p, f, g in material["config_keyword"]),
    )


def _cached_material() -> _Material:
    """The rules, read from a cache file keyed by this module's and detect-secrets' files.

    Importing detect-secrets (and the `requests` it pulls in) costs ~150 ms, most of a
    short-lived `cadre search`; compiling the cached patterns costs ~20 ms.
    """
    import importlib.util
    import json
    import os

    try:
        import platformdirs

        spec = importlib.util.find_spec("detect_secrets")
        package = os.path.dirname(spec.origin or "") if spec else ""
        stamps = [os.stat(path) for path in (__file__, package, os.path.join(package, "plugins"))]
        key = "-".join(f"{st.st_mtime_ns:x}{st.st_size:x}" for st in stamps)
        path = os.path.join(platformdirs.user_cache_dir("cadre"), f"redact-rules-{key}.json")
    except (OSError, ImportError, ValueError):
        return _material()
    try:
        with open(path, encoding="utf-8") as file:
            cached: _Material = json.load(file)
            return cached
    except (OSError, ValueError):
        pass
    material = _material()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        temp = f"{path}.{os.getpid()}.tmp"
        with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as file:
            json.dump(material, file)
        os.replace(temp, path)
    except OSError:
        pass  # a read-only cache only costs the import next time
    return material


def _material() -> _Material:
    """The rules from detect-secrets' detectors and keyword regexes, plus our own tokens."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.base import RegexBasedDetector

    detectors: list[list[object]]
    detectors = [[kind, pattern, 0, []] for kind, pattern in _EXTRA_TOKENS]  # before their shorter cuts
    plugins: Mapping[str, type[object]] = get_mapping_from_secret_type_to_class()
    for secret_type, plugin in plugins.items():
        if issubclass(plugin, RegexBasedDetector) and secret_type not in _SKIPPED_DETECTORS:
            gate = list(_DETECTOR_GATES.get(secret_type, ()))
            # every concrete detector sets `denylist` as a class attribute; the base declares an abstract property
            denylist: tuple[re.Pattern[str], ...] = plugin.denylist  # type: ignore[assignment]  # a class attribute
            detectors += [
                [secret_type, p.pattern, p.flags, gate] for p in denylist if not p.pattern.startswith(_KEYWORD_STYLE)
            ]
    return {
        "detectors": detectors,
        "keyword_gate": [[keyword.DENYLIST_REGEX, re.IGNORECASE]],
        "code_keyword": [[p.pattern, p.flags, g] for p, g in keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP.items()],
        "config_keyword": [[p.pattern, p.flags, g] for p, g in keyword.CONFIG_DENYLIST_REGEX_TO_GROUP.items()],
    }


def _label(kind: str) -> str:
    return f"[REDACTED {kind.lower().replace(' ', '-')}]"


def _kind_of_file(filename: str) -> str:
    """'config', 'prose' or 'code' by the file name; '' when unknown (text not from one file)."""
    name = filename.lower().rsplit("/", 1)[-1]
    if not name:
        return ""
    if name.endswith(_CONFIG_SUFFIXES) or name.startswith(".env") or "." not in name:
        return "config"
    if name.endswith(_CODE_SUFFIXES):
        return "code"
    return "prose" if name.endswith(_PROSE_SUFFIXES) else ""


class _Redactor:
    def __init__(self, filename: str):
        self.rules = _rules()
        self.kind = _kind_of_file(filename)
        self.count = 0

    def label(self, kind: str) -> str:
        self.count += 1
        return _label(kind)

    def replace(self, match: re.Match[str], kind: str) -> str:
        """The match with its `secret` group (or all of it) replaced."""
        one = kind in _GROUP_ONE and match.re.groups >= 1 and match.group(1)
        group = "secret" if "secret" in match.re.groupindex else 1 if one else 0
        if group == 0:
            return self.label(kind)
        start, end = match.span(group)
        whole = match.group(0)
        return whole[: start - match.start()] + self.label(kind) + whole[end - match.start() :]

    def run(self, text: str) -> str:
        text = _PEM_BLOCK.sub(lambda m: self.label("private key") + "\n" * m.group(0).count("\n"), text)
        for kind, pattern, gate in self.rules.detectors:
            if not gate or any(literal in text for literal in gate):
                text = pattern.sub(partial(self.replace, kind=kind), text)
        text = self.key_bodies(text)
        text = _TOKEN.sub(self.random_token, text) if _TOKEN.search(text) else text
        return self.keywords(text) if _KEYWORDS.search(text) else text

    # --- layer 3 -------------------------------------------------------------------------------------

    def key_bodies(self, text: str) -> str:
        """Lines of base64 that read as a key body: in a run of two or more, next to a PEM edge, the short
        line that ends a body, or a lone line of 16+ random-looking characters."""
        shorts = {}
        starts = _line_starts(text)
        for m in _B64_SHORT.finditer(text):
            shorts[_line_index(starts, m.start())] = m.group(1)
        if not shorts:
            return text
        lines = text.split("\n")
        body = {i: core for i, core in shorts.items() if len(core.rstrip("=")) >= 40}
        hit = set()
        for run in _runs(sorted(body)):
            if len(run) > 1 and any(_looks_random(body[i]) for i in run):
                hit.update(run)
        for i in body:
            if any(0 <= j < len(lines) and _PEM_EDGE.search(lines[j]) for j in (i - 1, i + 1)):
                hit.add(i)
        for i in sorted(hit):  # the short last line of a body
            hit.update(j for j in (i - 1, i + 1) if j in shorts)
        for i, core in shorts.items():
            before_footer = i + 1 < len(lines) and _PEM_EDGE.search(lines[i + 1])
            if before_footer or _lone_tail(core) or _KEY_BODY_START.match(core):
                hit.add(i)
        for i in hit:
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            lines[i] = indent + self.label("private key")
        return "\n".join(lines)

    def random_token(self, match: re.Match[str]) -> str:
        token = match.group(0)
        line_start = match.string.rfind("\n", 0, match.start()) + 1
        before = match.string[line_start : match.start()]
        if _looks_random(token) and not _in_url(before):
            return self.label("high entropy string")
        return token

    # --- layer 4 -------------------------------------------------------------------------------------

    def keywords(self, text: str) -> str:
        lines = text.split("\n")
        keyword_rules = self.rules.config_keyword if self.kind == "config" else self.rules.code_keyword
        for i, line in enumerate(lines):
            if not _KEYWORDS.search(line):
                continue
            line = self.detect_secrets_keyword(line, keyword_rules)
            line = _XML_ELEMENT.sub(self.xml_value, line)
            lines[i] = self.assignments(line)
        return "\n".join(lines)

    def detect_secrets_keyword(self, line: str, rules: tuple[tuple[re.Pattern[str], int], ...]) -> str:
        if "REDACTED" in line or not self.rules.keyword_gate.search(line):
            return line
        for pattern, group in rules:
            match = pattern.search(line)
            if match is None:
                continue
            if group != 2 and not _secret_key(_word_at(line, match.start())):
                continue  # `secret_name: prod-db`: the key only contains a keyword (group 2: the value comes first)
            value: str | None = match.group(group)
            if not value or line[match.start(group) - 1 : match.start(group)] not in ("'", '"', "`"):
                continue  # unquoted: layer 4's rules
            if len(value) >= 4 and _value_ok(value) and not _prose(value):
                start, end = match.span(group)
                return line[:start] + self.label("secret") + line[end:]
        return line

    def xml_value(self, match: re.Match[str]) -> str:
        if not _secret_key(match.group("key")) or not _value_ok(match.group("value")):
            return match.group(0)
        return match.group(0).replace(match.group("value"), self.label("secret"), 1)

    def assignments(self, line: str) -> str:
        """Values assigned to secret-sounding keys, quoted or not, replaced (several per line, as in JSON)."""
        out, pos = [], 0
        for match in _ASSIGN.finditer(line):
            if match.start() < pos or not _secret_key(match.group("key")):
                continue
            span = self.value_span(line, match)
            if span is None:
                continue
            out.append(line[pos : span[0]] + self.label("secret"))
            pos = span[1]
        return "".join(out) + line[pos:] if out else line

    def value_span(self, line: str, match: re.Match[str]) -> tuple[int, int] | None:
        """Where the secret value after `key =` is, or None when it is code, a reference or a placeholder."""
        start = match.end()
        rest = line[start:]
        key = match.group("key")
        if rest[:2] in ('\\"', "\\'"):  # a quoted value inside a string literal: "api_key = \"...\""
            end = rest.find(rest[:2], 2)
            value = rest[2:end]
            if end < 0 or not _value_ok(value, key) or _prose(value):
                return None
            return start + 2, start + end
        if rest[:1] in ("'", '"', "`"):
            closing = _closing_quote(rest)
            if closing is None:
                return None
            value = rest[1:closing]
            if not _value_ok(value, key) or _prose(value):
                return None
            return start + 1, start + closing
        if match.group("op") in ("==", "===", "!=", "!==") or "REDACTED" in rest[:20]:
            return None
        whole_line = bool(_LINE_START.match(line[: match.start()]))
        if whole_line and self.kind in ("config", "prose", ""):  # KEY=value, key: value, key = value
            value = re.split(r"[ \t]+#", rest, maxsplit=1)[0].rstrip().rstrip(",;")
        else:
            value = _UNQUOTED_END.split(rest, maxsplit=1)[0]
        before = line[: match.start()]
        in_string = before.count('"') % 2 == 1 or before.count("'") % 2 == 1  # "Server=x;Password=y"
        if not self.unquoted_literal(value, key, whole_line, match.group("op"), in_string):
            return None
        return start, start + len(value)

    def unquoted_literal(self, value: str, key: str, whole_line: bool, op: str, in_string: bool) -> bool:
        if not _value_ok(value, key) or value[:1] in "[({<|>&*!%@\\" or "(" in value or "[" in value:
            return False
        if _DOTTED.fullmatch(value):  # settings.password, self.token
            return False
        env_form = whole_line and op == "=" and not value.startswith(" ") and key.upper() == key
        if self.kind == "code" and not env_form and not in_string:
            # in code an unquoted value is an expression (a name, a call), unless it is a made-up literal:
            # `password = v0W6ku6299ksxCQYRh` in a comment, a docstring or a pasted config line
            return _made_up(value)
        if _IDENTIFIER.fullmatch(value) and (self.kind in ("", "code") and not env_form):
            return len(value) >= 8 and any(c.isdigit() for c in value)  # a variable, unless it looks made up
        return True


def _runs(numbers: list[int]) -> list[list[int]]:
    """Sorted line numbers grouped into runs of consecutive ones."""
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return runs


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts += [m.end() for m in re.finditer("\n", text)]
    return starts


def _line_index(starts: list[int], offset: int) -> int:
    from bisect import bisect_right

    return bisect_right(starts, offset) - 1


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _looks_random(token: str) -> bool:
    """Mixed case and digits, high entropy, and no word structure (identifiers average 4+ letters a part)."""
    core = token.rstrip("=")
    if not (any(c.isupper() for c in core) and any(c.islower() for c in core) and any(c.isdigit() for c in core)):
        return False
    entropy = _entropy(core)
    if entropy < 4.0:
        return False
    return _mean_part(core) < 3.0 or entropy >= 4.6


def _mean_part(core: str) -> float:
    """Average length of a token's words (`Tool`, `Bash`, `2025`): 4+ in identifiers, about 2 in random text."""
    parts = _WORDS.findall(core)
    return sum(map(len, parts)) / max(1, len(parts))


def _lone_tail(core: str) -> bool:
    """A line that is only 16+ base64 characters of mixed case and digits: a key body's last line, alone.

    The zero bytes and padding that end an OpenSSH or DER body (`...AAAAAAQID`) are left out of the test:
    they are regular, and would hide the random part before them."""
    if _base64_data(core):
        return True
    core = _BODY_PADDING.sub("", core.rstrip("="))
    mixed = any(c.isupper() for c in core) and any(c.islower() for c in core) and any(c.isdigit() for c in core)
    return len(core) >= 16 and mixed and _entropy(core) >= 3.5 and _mean_part(core) < 3.0  # not `Tool20250124Param`


def _made_up(value: str) -> bool:
    """A value few would name a variable: 10+ characters mixing upper case, lower case and digits, or 12+ of
    one case with 4+ digits between letters (`9L4MC688781PPKV0KK`, not `sha256digest`). A name such as
    `PKCS7PrivateKeyTypes` after `private_key:` is hidden too: a lost name costs less than a leak."""
    digits = sum(c.isdigit() for c in value)
    if len(value) >= 10 and digits and any(c.isupper() for c in value) and any(c.islower() for c in value):
        return True
    switches = sum(a.isdigit() != b.isdigit() for a, b in itertools.pairwise(value))
    return len(value) >= 12 and value.isalnum() and digits >= 4 and len(value) - digits >= 4 and switches >= 2


def _base64_data(core: str) -> bool:
    """A whole line that can only be base64 data: 20+ characters of both cases ending in `=` padding or
    holding `+` or `/`, or the end of an OpenSSH key body."""
    if _OPENSSH_TAIL.fullmatch(core):
        return True
    data = core.rstrip("=")
    cased = any(c.isupper() for c in data) and any(c.islower() for c in data)
    return len(data) >= 20 and cased and (core.endswith("=") or "+" in data or "/" in data)


def _in_url(before: str) -> bool:
    """True when the token continues a URL on its line (a path, not a credential: basic auth is caught apart)."""
    last = before.rsplit(None, 1)[-1] if before.strip() else ""
    return bool(_URL.search(last)) and not last.endswith(("=", ":"))


def _word_at(line: str, pos: int) -> str:
    """The whole key (letters, digits, `_`, `.`, `-`) around `pos`."""
    start, end = pos, pos
    while start > 0 and (line[start - 1].isalnum() or line[start - 1] in "_.-"):
        start -= 1
    while end < len(line) and (line[end].isalnum() or line[end] in "_.-"):
        end += 1
    return line[start:end]


def _secret_key(key: str) -> bool:
    """Whether a key names a secret: its last part is a password, secret, token or an owned key (`api_key`)."""
    parts = [p.lower() for p in re.split(r"[._-]+", _CAMEL.sub("_", key)) if p]
    if not parts:
        return False
    last = parts[-1]
    if last in _SECRET_WORDS or last.endswith(_SECRET_ENDINGS):
        return last != "pass" or len(parts) > 1  # DB_PASS, not a bare `pass`
    owned = last == "key" and len(parts) > 1 and parts[-2] in _KEY_OWNERS
    return owned or last.endswith(("apikey", "privatekey"))


def _value_ok(value: str, key: str = "") -> bool:
    """A value that could be a secret: 4+ characters with a letter or digit, not a template or a reference."""
    value = value.strip()
    if len(value) < 4 or value.lower() in _NOT_VALUES or key.lower().endswith(value.lower()):  # refresh_token
        return False
    if value.startswith(("$", "{", "<", "%(", "[REDACTED", "***")) or "REDACTED" in value:
        return False
    if _ENV_NAME.fullmatch(value):  # the name of an environment variable: "ANTHROPIC_API_KEY"
        return False
    return any(c.isalnum() for c in value)


def _prose(value: str) -> bool:
    """A quoted label such as "Enter your password": several plain words."""
    words = value.split()
    return len(words) >= 2 and all(w.strip(".,:;!?").isalpha() for w in words)


def _closing_quote(rest: str) -> int | None:
    quote = rest[0]
    i = 1
    while i < len(rest):
        if rest[i] == "\\":
            i += 2
            continue
        if rest[i] == quote:
            return i
        i += 1
    return None


def redact(text: str, *, filename: str = "") -> tuple[str, int]:
    """Return `text` with secrets replaced by `[REDACTED <kind>]`, and how many were found.

    `filename` picks the rules for unquoted values: config files and prose take them as literals,
    code only in `KEY=value` form; without it, an unquoted identifier counts only when it looks made up."""
    redactor = _Redactor(filename)
    return redactor.run(text), redactor.count


def redact_json(text: str) -> tuple[str, int]:
    """`redact`, and first, when `text` is a JSON document (a tool result), each string in it: escaped quotes
    and `\\n` hide a secret's shape from the plain pass. A string beside a `path` gets that file's rules."""
    if text.lstrip()[:1] not in ("{", "["):
        return redact(text)
    import json

    try:
        data = json.loads(text)
    except ValueError:
        return redact(text)
    found = 0

    def walk(value: object, filename: str = "") -> object:
        nonlocal found
        if isinstance(value, str):
            clean, n = redact(value, filename=filename)
            found += n
            return clean
        if isinstance(value, list):
            return [walk(v, filename) for v in value]
        if isinstance(value, dict):
            path = value.get("path")
            name = path if isinstance(path, str) else filename
            return {k: walk(v, name) for k, v in value.items()}
        return value

    data = walk(data)
    text, count = redact(json.dumps(data, ensure_ascii=False) if found else text)
    return text, count + found


def redact_request(request: ModelRequest) -> ModelRequest:
    """A copy of `request` with secrets removed from the system prompt and every message (tool results
    through `redact_json`)."""
    from dataclasses import replace

    def clean(message: Message) -> Message:
        if not message.text:
            return message
        return replace(message, text=(redact_json if message.role == "tool" else redact)(message.text)[0])

    messages = [clean(m) for m in request.messages]
    system = redact(request.system)[0] if request.system else request.system
    return replace(request, messages=messages, system=system)
