"""`--promote`: make an eval's winner the first candidate of the role's route, when it earns it.

The winner is the best score (ties: lower off-the-rails %, then lower cost). It is promoted only when
the incumbent (the route's current first candidate) was evaluated too, the winner's score is at least
`margin` above the incumbent's, and its off-the-rails % is no worse. Off-the-rails % is the share of
spend on flagged attempts; when either model has no priced spend (its share is None) both are compared
on the share of flagged attempts by count instead, and the reason says so. The config file is edited with
tomlkit, so other tables and keys, their comments and formatting survive, and the rest of the route keeps its
order. In a one-entry-a-line array the winner moves with its trailing comment and the comment lines right
above it (a comment on the `[` line stays there); in `[[roles.X.candidates]]` tables a comment on the header
line or inside the entry moves with it, while a comment line above the header stays where it is.
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from cadre_app.evals.runner import EvalReport
from cadre_app.evals.stats import ModelStats
from cadre_core.config import CadreConfig, Candidate, LoadedConfig, RoleConfig
from cadre_core.errors import CadreError, EvalError
from cadre_core.models.refs import model_key

EPSILON = 1e-9


@dataclass
class Decision:
    promoted: bool
    reason: str
    winner: str | None = None
    incumbent: str | None = None
    path: str | None = None
    warning: str | None = None
    """Set when the file was written but another config layer still puts another model first."""

    def as_dict(self) -> dict[str, Any]:
        return {"promoted": self.promoted, "reason": self.reason, "winner": self.winner,
                "incumbent": self.incumbent, "path": self.path, "warning": self.warning}  # fmt: skip


def by_spend(*models: ModelStats) -> bool:
    """Whether off-the-rails can be compared by spend: every model has priced spend."""
    return all(m.off_rails_pct is not None for m in models)


def rails(model: ModelStats, spend: bool) -> float:
    """The off-the-rails share compared: of spend, or of answered attempts by count (0 when none)."""
    value = model.off_rails_pct if spend else model.flagged_pct
    return value or 0.0


def winner(report: EvalReport) -> ModelStats:
    spend = by_spend(*report.models)
    return min(report.models, key=lambda m: (-m.score, rails(m, spend), m.avg_cost_usd))


def decide(report: EvalReport, incumbent: str | None, margin: float) -> Decision:
    """Whether the winner should replace `incumbent`, and why (no file is touched)."""
    best = winner(report)
    if incumbent is None:
        return Decision(False, f"the role '{report.role}' has no route yet; nothing to compare against", best.model)
    inc = report.stats(incumbent)
    if inc is None:
        why = f"the incumbent {incumbent} was not evaluated; add it to --models to compare"
        return Decision(False, why, best.model, incumbent)
    if model_key(best.model) == model_key(incumbent) or best.score <= inc.score + EPSILON:
        return Decision(
            False, f"the incumbent {incumbent} ({inc.score:.2f}) is already the best", best.model, incumbent
        )
    gain = best.score - inc.score
    versus = f"{best.model} scores {best.score:.2f} vs {inc.score:.2f} for {incumbent}"
    if gain + EPSILON < margin:
        return Decision(False, f"{versus}: +{gain:.2f} is below the margin {margin:.2f}", best.model, incumbent)
    spend = by_spend(best, inc)
    mine, theirs = rails(best, spend), rails(inc, spend)
    if spend:
        said = f"off-the-rails spend {mine:.1f}% vs {theirs:.1f}%"
    else:
        unpriced = " and ".join(m.model for m in (best, inc) if m.off_rails_pct is None)
        said = (f"flagged attempts {mine:.1f}% vs {theirs:.1f}% (compared by count: "
                f"{unpriced} had no priced spend, so its off-the-rails spend % is n/a)")  # fmt: skip
    if mine > theirs + EPSILON:
        return Decision(False, f"{versus} (+{gain:.2f}) but goes off the rails more ({said})", best.model, incumbent)
    return Decision(True, f"{versus} (+{gain:.2f} >= margin {margin:.2f}), {said}", best.model, incumbent)


def _read(path: Path) -> str | None:
    """The file's text, None when it does not exist; unreadable -> EvalError naming the file."""
    if not path.exists():
        return None
    if not path.is_file():
        raise EvalError(f"{path} is not a file; pass --config FILE naming the TOML file --promote should edit")
    try:
        return path.read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise EvalError(f"{path} cannot be read ({exc}); fix it before --promote") from None


def file_route(path: Path, role: str) -> list[Candidate] | None:
    """The role's candidates as written in `path`, or None when the file does not set them.

    A file that is not valid TOML, or whose route the config loader would reject, raises EvalError."""
    text = _read(path)
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise EvalError(f"{path} cannot be read as TOML ({exc}); fix it before --promote") from None
    roles = data.get("roles", {})
    role_table = roles.get(role, {}) if isinstance(roles, dict) else None
    if not isinstance(role_table, dict):
        raise EvalError(f"{path}: 'roles.{role}' must be a table; fix it before --promote")
    raw = role_table.get("candidates")
    if raw is None:
        return None
    try:
        return RoleConfig(candidates=raw).candidates
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"])
        raise EvalError(
            f"{path}: roles.{role}.{where}: {err['msg']}; fix the route before --promote "
            '(each candidate is a table such as { model = "openai:gpt-5.2" })'
        ) from None


def current_route(path: Path, role: str, effective: CadreConfig) -> list[Candidate]:
    """The route promotion edits: the file's own when it sets one, else the effective config's."""
    own = file_route(path, role)
    if own is not None:
        return own
    role_cfg = effective.role_config(role)
    return list(role_cfg.candidates) if role_cfg else []


def _entry(candidate: Candidate) -> dict[str, Any]:
    return {"model": candidate.model, **candidate.model_dump(exclude_unset=True, exclude={"model"})}


def _inline(candidate: Candidate) -> Any:
    """`{ model = "...", ... }` spaced the way people write it (tomlkit's own has no inner spaces)."""
    import tomlkit

    body = ", ".join(f"{key} = {tomlkit.item(value).as_string()}" for key, value in _entry(candidate).items())
    return tomlkit.parse(f"x = {{ {body} }}")["x"]


def _same(entry: Any, candidate: Candidate) -> bool:
    """Whether a route entry of the file is `candidate` (provider aliases are one provider)."""
    return isinstance(entry, dict) and model_key(str(entry.get("model", ""))) == model_key(candidate.model)


def _text(group: Any, comma: str | None = None) -> str:
    """One tomlkit array group as written: indent, value, comma (or `comma`), comment."""
    parts = [group.indent, group.value, None, group.comment]
    text = [p.as_string() if p is not None else "" for p in parts]
    text[2] = comma if comma is not None else (group.comma.as_string() if group.comma is not None else "")
    return "".join(text)


def _moved_first(array: Any, index: int) -> Any | None:
    """The multi-line `array` with its `index`-th value first, taking along its trailing comment and the
    comment lines right above it; None when tomlkit's layout of the array is not the one expected."""
    import tomlkit
    from tomlkit.items import Null

    groups = getattr(array, "_value", None)
    if not isinstance(groups, list) or not all(hasattr(g, "indent") and hasattr(g, "comma") for g in groups):
        return None
    if "[" + "".join(_text(g) for g in groups) + "]" != array.as_string():
        return None
    header: list[Any] = []  # a comment on the opening bracket's line stays there
    blocks: list[list[Any]] = []  # own-line comments, then the value they sit above
    pending: list[Any] = []
    for group in groups:
        if group.value is not None and not isinstance(group.value, Null):
            blocks.append([*pending, group])
            pending = []
        elif not blocks and not pending and "\n" not in (group.indent.as_string() if group.indent else ""):
            header.append(group)
        else:
            pending.append(group)
    if index >= len(blocks):
        return None
    last_comma = blocks[-1][-1].comma is not None
    order = [blocks[index], *(b for i, b in enumerate(blocks) if i != index)]
    parts = [_text(g) for g in header]
    for number, (*comments, value) in enumerate(order):
        parts += [_text(c) for c in comments]
        keep_comma = number < len(order) - 1 or last_comma
        parts.append(_text(value, comma=(value.comma.as_string() if value.comma else ",") if keep_comma else ""))
    parts += [_text(g) for g in pending]
    return tomlkit.parse("x = [" + "".join(parts) + "]")["x"]


def edited(text: str | None, role: str, first: Candidate, route: list[Candidate]) -> str:
    """`text` (None: a new file) with `first` at the head of the role's candidates, the rest kept.

    Raises ValueError (or a tomlkit error) when the file's shape cannot be edited."""
    import tomlkit

    doc = tomlkit.parse(text) if text is not None else tomlkit.document()
    if "roles" not in doc:
        doc.add("roles", tomlkit.table(is_super_table=True))
    roles = doc["roles"]
    if role not in roles:
        roles.add(role, tomlkit.table())
    table = roles[role]
    existing = table.get("candidates")
    if existing is None:
        items = tomlkit.array()
        items.multiline(True)
        for cand in [first, *(c for c in route if model_key(c.model) != model_key(first.model))]:
            items.append(_inline(cand))
        table["candidates"] = items
    elif isinstance(existing, tomlkit.items.AoT):
        entries = list(existing)
        index = next((i for i, e in enumerate(entries) if _same(e, first)), None)
        if index is not None:
            head = entries.pop(index)
        else:
            head = tomlkit.table()
            head.update(_entry(first))
        rebuilt = tomlkit.aot()
        for entry in [head, *entries]:
            rebuilt.append(entry)
        table["candidates"] = rebuilt
    else:
        index = next((i for i, e in enumerate(existing) if _same(e, first)), None)
        head = existing[index] if index is not None else _inline(first)
        moved = _moved_first(existing, index) if index is not None and "\n" in existing.as_string() else None
        if moved is not None:
            table["candidates"] = moved
        elif "\n" in existing.as_string():  # one entry a line: a new model goes on top
            if index is not None:
                del existing[index]
            existing.insert(0, head)
        else:
            items = tomlkit.array()
            for entry in [head, *(e for i, e in enumerate(existing) if i != index)]:
                items.append(entry)
            table["candidates"] = items
    out = tomlkit.dumps(doc)
    RoleConfig(**tomllib.loads(out)["roles"][role])  # never write a route the config loader would reject
    return out


def _edited(path: Path, text: str | None, role: str, first: Candidate, route: list[Candidate]) -> str:
    from tomlkit.exceptions import TOMLKitError

    try:
        return edited(text, role, first, route)
    except (TOMLKitError, ValueError, TypeError, KeyError, AttributeError, tomllib.TOMLDecodeError) as exc:
        raise EvalError(
            f"{path}: the route of '{role}' cannot be edited ({type(exc).__name__}: {exc}); "
            f"write [roles.{role}] candidates = [...] as a plain table, or pass --config FILE"
        ) from None


def write_route(path: Path, role: str, first: Candidate, route: list[Candidate]) -> None:
    """Put `first` at the head of the role's candidates in `path`, keeping everything else in the file
    (which comments travel with an entry: see the module docstring)."""
    out = _edited(path, _read(path), role, first, route)
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(out, encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise EvalError(f"cannot write {path} ({exc}); fix its permissions or pass --config FILE") from None


def check_target(path: Path, role: str, effective: CadreConfig) -> None:
    """Before any spend: the file --promote would edit reads, validates and can be edited and written."""
    route = current_route(path, role, effective)
    _edited(path, _read(path), role, route[-1] if route else Candidate(model="openai:gpt-5.2"), route)
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if not os.access(path if path.exists() else folder, os.W_OK):
        raise EvalError(f"{path} is not writable; fix its permissions or pass --config FILE")


def effective_warning(role: str, winner: str, path: Path, loaded: LoadedConfig) -> str | None:
    """Why the winner, now first in `path`, is still not first in the effective config; None when it is."""
    role_cfg = loaded.config.role_config(role)
    first = role_cfg.candidates[0].model if role_cfg and role_cfg.candidates else None
    if first is not None and model_key(first) == model_key(winner):
        return None
    source = loaded.source_of(("roles", role, "candidates"))
    files = {Path(f).resolve() for f in loaded.files if f != "built-in defaults"}
    if source.startswith("env "):
        fix = f"it overrides the files; unset {source[4:]} or put {winner} first in it"
    elif path.resolve() not in files:
        fix = (
            f"{path} is not a config file loaded here; set CADRE_CONFIG={path}, or promote into {source} with --config"
        )
    else:
        fix = f"that layer overrides {path}; edit it too, or rerun with --config {source}"
    return (
        f"{path} now lists {winner} first, but the effective route of '{role}' still starts with "
        f"{first or 'nothing'}: roles.{role}.candidates comes from {source}; {fix}"
    )


def promote(
    report: EvalReport,
    *,
    path: Path,
    effective: CadreConfig,
    margin: float,
    reload: Callable[[], LoadedConfig] | None = None,
) -> Decision:
    """Decide, and write `path` when the winner earns the route's first place.

    `reload` gives the effective config after the write; `warning` says when another layer still overrides it."""
    route = current_route(path, report.role, effective)
    incumbent = route[0].model if route else None
    decision = decide(report, incumbent, margin)
    decision.path = str(path)
    if decision.promoted and decision.winner:
        from cadre_app.evals.runner import candidate_for

        chosen = next((c for c in route if model_key(c.model) == model_key(decision.winner)), None)
        write_route(path, report.role, chosen or candidate_for(effective, report.role, decision.winner), route)
        decision.reason += f"; wrote {path}"
        if reload is not None:
            try:
                decision.warning = effective_warning(report.role, decision.winner, path, reload())
            except CadreError as exc:
                decision.warning = f"{path} was written, but the config no longer loads: {exc}"
    return decision
