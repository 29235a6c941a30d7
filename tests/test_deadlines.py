"""The shared timer thread: deadlines fire in order, cancelled ones never do, no thread per deadline."""
import threading
import time

from jupyter_mlx.execute.deadlines import Deadlines


def test_deadlines_fire_in_order_on_one_thread_and_cancelled_ones_never():
    timers = Deadlines(name="test-deadlines")
    fired: list[tuple[str, str]] = []
    all_fired = threading.Event()

    def record(label: str):
        def callback():
            fired.append((label, threading.current_thread().name))
            if len(fired) == 3:
                all_fired.set()
        return callback

    threads_before = threading.active_count()
    last = timers.call_later(0.15, record("last"))
    cancelled = timers.call_later(0.05, record("cancelled"))
    second = timers.call_later(0.1, record("second"))
    first = timers.call_later(0.0, record("first"))
    cancelled.cancel()
    assert threading.active_count() <= threads_before + 1  # one serving thread, not one per deadline
    assert all_fired.wait(5)
    # in the order they fell due: first, second, last (on a loaded machine the calls above may be
    # far enough apart to change that order, which is then the one to expect)
    due = sorted([("first", first), ("second", second), ("last", last)], key=lambda pair: pair[1].when)
    assert [label for label, _ in fired] == [label for label, _ in due]
    time.sleep(max(0.0, cancelled.when - time.monotonic()) + 0.1)
    assert "cancelled" not in [label for label, _ in fired]
    assert {name for _, name in fired} == {"test-deadlines"}


def test_a_failing_callback_does_not_stop_the_others():
    timers = Deadlines(name="test-deadlines-2")
    done = threading.Event()
    timers.call_later(0.0, lambda: 1 / 0)
    timers.call_later(0.01, done.set)
    assert done.wait(5)


def test_an_earlier_deadline_added_later_wakes_the_thread():
    timers = Deadlines(name="test-deadlines-3")
    timers.call_later(30, lambda: None)
    time.sleep(0.05)  # the thread now waits for the 30 s deadline
    done = threading.Event()
    started = time.monotonic()
    timers.call_later(0.01, done.set)
    assert done.wait(5)
    assert time.monotonic() - started < 2
