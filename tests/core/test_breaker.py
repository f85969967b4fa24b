"""The circuit breaker on its own: when it opens, what it says, how it recovers."""

import random

from cadre_core.breaker import Breaker


def test_it_opens_on_a_sustained_failure_rate_from_two_calls_and_says_why():
    breaker = Breaker(window=10, min_attempts=5, failure_rate=0.8, open_s=60)
    for _ in range(5):  # one call retrying many times is one unlucky call, not a sustained rate
        breaker.record(1, True, 0.0, "HTTP 529: overloaded")
    assert breaker.state(0.0) == "closed"
    breaker.record(2, False, 1.0)
    breaker.record(2, True, 2.0, "HTTP 529: overloaded")
    assert breaker.state(2.0) == "open"  # 6 of 7 failed, from calls 1 and 2
    assert breaker.admit(3, 20.0) == (
        "circuit open after 6 of 7 recent attempts failed (last: HTTP 529: overloaded); retry in 42 s"
    )


def test_a_random_30_percent_fault_rate_almost_never_opens_it():
    rng = random.Random(11)
    breaker = Breaker()
    opened = 0
    for attempt in range(10_000):
        breaker.record(attempt // 3, rng.random() < 0.3, float(attempt), "HTTP 500")
        if breaker.state(float(attempt)) != "closed":
            opened += 1
            breaker.record(-1, False, float(attempt))  # a success closes it again
    assert opened <= 30  # P(>= 8 of 10 fail) at 30% is about 0.16%


def test_half_open_admits_one_probe_and_a_cancelled_probe_frees_the_slot():
    breaker = Breaker(open_s=10)
    breaker.trip(0.0, "HTTP 404: no such model")
    assert "retry in 10 s" in breaker.admit(1, 0.0)
    assert breaker.admit(1, 10.0) is None  # the probe
    assert "another call is probing it now" in breaker.admit(2, 10.0)
    breaker.release(1)  # cancelled without an outcome
    assert breaker.admit(2, 10.0) is None
    breaker.record(2, False, 11.0)
    assert breaker.state(11.0) == "closed"


def test_open_s_zero_never_opens():
    breaker = Breaker(open_s=0)
    for call in range(20):
        breaker.record(call, True, 0.0, "HTTP 500")
    breaker.trip(0.0, "HTTP 404")
    assert breaker.state(0.0) == "closed" and breaker.admit(99, 0.0) is None
