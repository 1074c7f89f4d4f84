"""A node learns it was frozen before it serves: from its own ticking thread, or from the first request that
finds the last tick too old, whichever runs first after the thaw."""

from session_lab.replication.wakeup import WakeUp


def started(clock) -> WakeUp:
    watch = WakeUp(clock=clock, frozen_after=0.4)
    watch._thread = object()  # as if started: the test ticks by hand
    return watch


def test_a_tick_after_a_long_gap_flags_the_thaw_until_settled(clock):
    watch = started(clock)
    clock.advance(0.1)
    watch.tick()
    assert not watch.woke_up()
    clock.advance(10)  # frozen: the ticking thread wakes first
    watch.tick()
    assert watch.woke_up()  # though the last tick is fresh
    watch.settled()
    assert not watch.woke_up()


def test_a_request_that_runs_before_the_ticking_thread_sees_the_thaw_too(clock):
    watch = started(clock)
    clock.advance(10)
    assert watch.woke_up()


def test_never_before_it_is_started(clock):
    watch = WakeUp(clock=clock)
    clock.advance(10)
    assert not watch.woke_up()
