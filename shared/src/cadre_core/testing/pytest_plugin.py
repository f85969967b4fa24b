"""pytest plugin: no network, no real keys, and private config/data dirs for every test."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cadre_core.testing import block_network

_ENV_PREFIXES = ("ANTHROPIC_", "OPENAI_", "GEMINI_", "GOOGLE_", "CADRE_", "OPENAI_COMPATIBLE_", "GITHUB_", "GH_")


@pytest.fixture(autouse=True)
def _cadre_isolation(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("cadre-home")
    for name in list(os.environ):
        if name.startswith(_ENV_PREFIXES):
            monkeypatch.delenv(name)
    for var, sub in (
        ("XDG_CONFIG_HOME", "config"),
        ("XDG_DATA_HOME", "data"),
        ("XDG_CACHE_HOME", "cache"),
    ):
        monkeypatch.setenv(var, str(home / sub))
    with block_network():
        yield home


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
