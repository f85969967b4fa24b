"""The error helpers every layer shares."""

from __future__ import annotations

from cadre_core.errors import CadreError, single_failure


def test_single_failure_looks_through_nested_one_member_groups():
    inner = CadreError("the real one")
    wrapped = BaseExceptionGroup("outer", [ExceptionGroup("task group", [inner])])
    assert single_failure(wrapped) is inner
    assert single_failure(inner) is inner


def test_single_failure_keeps_a_group_of_several_failures():
    several = ExceptionGroup("two", [ValueError("a"), KeyError("b")])
    assert single_failure(ExceptionGroup("outer", [several])) is several
