from __future__ import annotations

from pathlib import Path

import pytest

from cadre_core.config import CadreConfig
from cadre_core.ledger import Ledger


def make_config(**roles: list) -> CadreConfig:
    """A config whose roles list the given candidates; every provider keyed by env."""
    data = {
        "providers": {
            "anthropic": {"api_key_env": ["ANTHROPIC_API_KEY"]},
            "openai": {"api_key_env": ["OPENAI_API_KEY"]},
            "google": {"api_key_env": ["GEMINI_API_KEY"]},
        },
        "roles": {
            role: {"candidates": [c if isinstance(c, dict) else {"model": c} for c in cands]}
            for role, cands in roles.items()
        },
        "router": {
            "retries_per_candidate": 2,
            "backoff_initial_s": 0.01,
            "backoff_max_s": 0.05,
            "cooldown_s": 30,
        },
    }
    return CadreConfig.model_validate(data)


@pytest.fixture
def ledger(tmp_path: Path):
    led = Ledger(tmp_path / "ledger.sqlite")
    yield led
    led.close()


def ledger_rows(led: Ledger) -> list[dict]:
    assert led.flush()
    return led.store.rows()
