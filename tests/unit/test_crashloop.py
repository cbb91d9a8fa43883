from controller.core.crashloop import RestartHistory, crash_loop_message, is_crash_looping

WINDOW = 300.0


def test_restarts_are_counted_from_the_restart_count_increase() -> None:
    history = RestartHistory()
    assert history.observe("c1", 0, now=0, window=WINDOW) == 0
    assert history.observe("c1", 3, now=10, window=WINDOW) == 3
    assert history.observe("c1", 3, now=20, window=WINDOW) == 3
    assert history.observe("c1", 4, now=30, window=WINDOW) == 4


def test_restarts_older_than_the_window_stop_counting() -> None:
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=WINDOW)
    history.observe("c1", 6, now=10, window=WINDOW)
    assert history.observe("c1", 6, now=10 + WINDOW, window=WINDOW) == 0


def test_a_new_container_starts_a_fresh_history() -> None:
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=WINDOW)
    history.observe("c1", 9, now=5, window=WINDOW)
    # A container adopted with restarts already on it does not count them as new.
    assert history.observe("c2", 9, now=6, window=WINDOW) == 0


def test_the_budget_is_exceeded_only_above_it() -> None:
    assert not is_crash_looping(5, budget=5)
    assert is_crash_looping(6, budget=5)


def test_the_message_names_count_window_and_exit_code() -> None:
    message = crash_loop_message(6, WINDOW, 3, oom_killed=False)
    assert "6 times within 300s" in message
    assert "last exit code 3" in message
    assert "memory" in crash_loop_message(6, WINDOW, 137, oom_killed=True)
