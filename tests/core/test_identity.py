import asyncio

from cadre_core.identity import acting_as, current_user


def test_acting_as_sets_and_restores_the_user() -> None:
    assert current_user() is None
    with acting_as("alice"):
        assert current_user() == "alice"
        with acting_as("bob"):
            assert current_user() == "bob"
        assert current_user() == "alice"
    assert current_user() is None


def test_each_task_keeps_its_own_user() -> None:
    async def as_user(name: str) -> str | None:
        with acting_as(name):
            await asyncio.sleep(0.01)
            return current_user()

    async def both() -> list[str | None]:
        return list(await asyncio.gather(as_user("alice"), as_user("bob")))

    assert asyncio.run(both()) == ["alice", "bob"]
