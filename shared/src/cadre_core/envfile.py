"""`keys.env` beside the user config: keys for hosts that pass none (Claude Desktop expands no `${VAR}`)."""

from __future__ import annotations

import os
import stat
from pathlib import Path


def user_config_dir() -> Path:
    """Cadre's user config folder, e.g. ~/.config/cadre (found through HOME, which every host passes)."""
    import platformdirs

    return Path(platformdirs.user_config_dir("cadre"))


def is_real_value(value: str) -> bool:
    """False for an empty value or a host's unexpanded placeholder (`${OPENAI_API_KEY}`, `<key>`)."""
    value = value.strip()
    return bool(value) and not (value.startswith(("${", "$", "<", "{{")) or value.endswith(("}", ">")))


def env_file_path() -> Path:
    """`keys.env` in Cadre's user config folder, e.g. ~/.config/cadre/keys.env."""
    return user_config_dir() / "keys.env"


LOADED: dict[str, Path] = {}
"""Each variable `load_env_file` set, and the file it came from (so `cadre doctor` can say where a key is)."""


def load_env_file(path: Path | None = None) -> list[str]:
    """Set each `NAME=value` of the file whose variable the environment lacks; returns the names set.

    A variable the host left empty or as an unexpanded placeholder (`${OPENAI_API_KEY}`) counts as lacking.
    A missing or unreadable file sets nothing.
    """
    path = path or env_file_path()
    try:
        if not path.is_file():
            return []
        from dotenv import dotenv_values  # only when there is a file: start-up stays lean

        values = dotenv_values(path)
        loose = path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO)
    except OSError:
        return []
    if loose:
        import structlog

        from cadre_core.logs import ensure_logging

        ensure_logging()  # to stderr, even when the command configured no logging
        structlog.get_logger().warning("env file readable by others; run chmod 600 on it", path=str(path))
    names = []
    for name, value in values.items():
        if value is not None and is_real_value(value) and not is_real_value(os.environ.get(name, "")):
            os.environ[name] = value
            LOADED[name] = path
            names.append(name)
    return names
