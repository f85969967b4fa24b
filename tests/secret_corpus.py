"""Fake but format-valid secrets, made fresh at test time, and the files that plant them in a workspace.

Each `Secret` names the part that must never leave (`parts`, random in every run) apart from any fixed
prefix a format has (`sk-ant-api03-`, a PEM key's algorithm header): `leaks` finds any 12-character
window of those parts in a text.
"""

from __future__ import annotations

import base64
import json
import secrets
import string
from dataclasses import dataclass
from functools import cache

WINDOW = 12
ALNUM = string.ascii_letters + string.digits
UPPER_DIGITS = string.ascii_uppercase + string.digits
HEX = "0123456789abcdef"


def rand(n: int, alphabet: str = ALNUM) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(n))


def b64(n_bytes: int) -> str:
    return base64.b64encode(secrets.token_bytes(n_bytes)).decode()


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


@dataclass(frozen=True)
class Secret:
    kind: str
    text: str
    """How it is written in a file (one or more lines)."""
    parts: tuple[str, ...]
    """The random parts that must not leak."""

    def windows(self) -> set[str]:
        return {p[i : i + WINDOW] for p in self.parts for i in range(len(p) - WINDOW + 1)}


def leaks(secret_list: list[Secret], text: str) -> list[str]:
    """`kind: window` for every secret window found in `text`."""
    return [f"{s.kind}: {w}" for s in secret_list for w in sorted(s.windows()) if w in text]


@cache
def _keys() -> dict[str, tuple[str, str]]:
    """PEM private keys by name: (pem, another key of the same kind, for telling structure from secret)."""
    from cryptography.hazmat.primitives import serialization as s
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

    kinds = {
        "rsa-pkcs1": (lambda: rsa.generate_private_key(65537, 2048), s.PrivateFormat.TraditionalOpenSSL),
        "rsa-pkcs8": (lambda: rsa.generate_private_key(65537, 2048), s.PrivateFormat.PKCS8),
        "ec-sec1": (lambda: ec.generate_private_key(ec.SECP256R1()), s.PrivateFormat.TraditionalOpenSSL),
        "openssh-ed25519": (ed25519.Ed25519PrivateKey.generate, s.PrivateFormat.OpenSSH),
        "openssh-rsa": (lambda: rsa.generate_private_key(65537, 2048), s.PrivateFormat.OpenSSH),
    }
    out = {}
    for name, (make, fmt) in kinds.items():
        pems = [make().private_bytes(s.Encoding.PEM, fmt, s.NoEncryption()).decode() for _ in range(2)]
        out[name] = (pems[0], pems[1])
    return out


def _key_secret(name: str) -> Secret:
    pem, other = _keys()[name]
    body = [line for line in pem.splitlines() if not line.startswith("-----")]
    other_body = "".join(line for line in other.splitlines() if not line.startswith("-----"))
    # a window found in another key of the same kind is structure (version, algorithm), not secret
    parts = tuple(
        line[i : i + WINDOW]
        for line in body
        for i in range(len(line) - WINDOW + 1)
        if line[i : i + WINDOW] not in other_body
    )
    return Secret(f"pem-{name}", pem.strip(), parts)


def _jwt() -> Secret:
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64url(json.dumps({"sub": rand(16), "name": rand(10), "iat": 1700000000}).encode())
    signature = b64url(secrets.token_bytes(32))
    token = f"{header}.{payload}.{signature}"
    return Secret("jwt", f"session_cookie: {token}", (payload[8:], signature))


def _gcp_service_account() -> tuple[Secret, str]:
    pem, _ = _keys()["rsa-pkcs8"]
    key_id = rand(40, HEX)
    data = {
        "type": "service_account",
        "project_id": "demo-project",
        "private_key_id": key_id,
        "private_key": pem,
        "client_email": "svc@demo-project.iam.gserviceaccount.com",
        "client_id": rand(21, string.digits),
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    as_json = json.dumps(data, indent=2)
    # private_key_id only names the key; the key is the secret
    return Secret("gcp-service-account", as_json, _key_secret("rsa-pkcs8").parts), as_json


def corpus() -> list[Secret]:
    """At least 30 formats, each written the way it is found in real files."""
    pw = [rand(6) + rand(4, string.digits) + rand(8) for _ in range(12)]
    aws_id, aws_secret = "AKIA" + rand(16, UPPER_DIGITS), b64(30)
    gh_fine = "github_pat_" + rand(22) + "_" + rand(59)
    stripe, openai = rand(99), rand(64, ALNUM + "_-")
    anthropic = rand(93, ALNUM + "_-")
    slack = f"{rand(11, string.digits)}-{rand(13, string.digits)}-{rand(24)}"
    webhook = f"T{rand(10, UPPER_DIGITS)}/B{rand(10, UPPER_DIGITS)}/{rand(24)}"
    azure = b64(66)
    gcp, _ = _gcp_service_account()
    found = [
        Secret("aws-access-key-id", f"AWS_ACCESS_KEY_ID={aws_id}", (aws_id[4:],)),
        Secret("aws-secret-access-key", f"aws_secret_access_key = {aws_secret}", (aws_secret,)),
        gcp,
        *(_key_secret(name) for name in _keys()),
        Secret("github-classic", f"token = 'ghp_{(v := rand(36))}'", (v,)),
        Secret("github-fine-grained", f"GH_TOKEN={gh_fine}", (gh_fine[11:],)),
        Secret("gitlab", f"gitlab_token: glpat-{(v := rand(20, ALNUM + '_-'))}", (v,)),
        Secret("slack-bot", f"SLACK_BOT_TOKEN=xoxb-{slack}", (slack,)),
        Secret("slack-webhook", f"webhook: https://hooks.slack.com/services/{webhook}", (webhook[-24:],)),
        Secret("stripe-live", f'stripe.api_key = "sk_live_{stripe}"', (stripe,)),
        Secret("openai-project", f"OPENAI_API_KEY=sk-proj-{openai}", (openai,)),
        Secret("anthropic", f'ANTHROPIC_API_KEY="sk-ant-api03-{anthropic}AA"', (anthropic,)),
        Secret("google-api-key", f"maps_key: AIza{(v := rand(35, ALNUM + '_-'))}", (v,)),
        Secret("npm", f"//registry.npmjs.org/:_authToken=npm_{(v := rand(36))}", (v,)),
        Secret("huggingface", f"HF_TOKEN=hf_{(v := rand(34))}", (v,)),
        Secret("sendgrid", f"SG.{(a := rand(22))}.{(b := rand(43))}", (a, b)),
        Secret("pypi", f"password = pypi-AgEIcHlwaS5vcmc{(v := rand(80, ALNUM + '_-'))}", (v,)),
        Secret("azure-storage", f"DefaultEndpointsProtocol=https;AccountName=x;AccountKey={azure};", (azure,)),
        _jwt(),
        Secret("bearer", f"Authorization: Bearer {(v := rand(40))}", (v,)),
        Secret("postgres-url", f"DATABASE_URL=postgres://app:{pw[0]}@db.internal:5432/app", (pw[0],)),
        Secret("mysql-url", f'engine = create_engine("mysql://root:{pw[1]}@localhost/shop")', (pw[1],)),
        Secret("ado-connection", f"Server=db;User Id=sa;Password={pw[2]};Encrypt=true", (pw[2],)),
        Secret("dotenv-unquoted", f"DB_PASSWORD={pw[3]}", (pw[3],)),
        Secret("yaml-unquoted", f"db_password: {pw[4]}", (pw[4],)),
        Secret("ini-unquoted", f"password = {pw[5]}", (pw[5],)),
        Secret("toml-quoted", f'api_key = "{pw[6]}"', (pw[6],)),
        Secret("json-quoted", f'{{"client_secret": "{pw[7]}", "user": "bob"}}', (pw[7],)),
        Secret("xml-element", f"<password>{pw[8]}</password>", (pw[8],)),
        Secret("export-secret", f"export SECRET_KEY={pw[9]}", (pw[9],)),
        Secret("camel-case", f'  "sessionToken": "{pw[10]}",', (pw[10],)),
        Secret("cli-flag", f"mysql --password={pw[11]} shop", (pw[11],)),
    ]
    return found


def notes_md(found: list[Secret]) -> str:
    """An ordinary Markdown file with every secret pasted in, keys with and without their header."""
    lines = ["# Ops notes", "", "Ordinary text the tools must still show.", ""]
    for secret in found:
        lines += [f"## {secret.kind}", "", secret.text, ""]
    for secret in found:  # key bodies pasted without their BEGIN/END lines
        if secret.kind.startswith("pem-"):
            lines += [f"Body of {secret.kind} only:", *secret.text.splitlines()[1:-1], ""]
    lines += ["The end of the notes.", ""]
    return "\n".join(lines)


def config_yaml(found: list[Secret]) -> str:
    lines = ["service: demo", "replicas: 3"]
    for secret in found:
        if "\n" not in secret.text:
            lines.append(f"# {secret.kind}")
            lines.append(secret.text)
    return "\n".join(lines) + "\n"


def secret_files(found: list[Secret]) -> dict[str, str]:
    """Files every reader must refuse, by name, folder or shape."""
    by_kind = {s.kind: s for s in found}
    gcp = by_kind["gcp-service-account"].text
    return {
        ".env": "\n".join(s.text for s in found if "\n" not in s.text) + "\n",
        "deploy/.env.production": f"{by_kind['dotenv-unquoted'].text}\n",
        "id_rsa": by_kind["pem-rsa-pkcs1"].text + "\n",
        "certs/key.pem": by_kind["pem-ec-sec1"].text + "\n",
        "certs/server.key": by_kind["pem-rsa-pkcs8"].text + "\n",
        "gcp-demo-3f9a.json": gcp,  # a name that says nothing: refused by its shape
        "deploy_key": by_kind["pem-openssh-ed25519"].text + "\n",  # likewise
        ".npmrc": by_kind["npm"].text + "\n",
        ".netrc": f"machine api.example.com login bot password {by_kind['ini-unquoted'].parts[0]}\n",
        ".aws/credentials": "[default]\n"
        + "".join(by_kind[k].text + "\n" for k in ("aws-access-key-id", "aws-secret-access-key")),
    }
