from controller.core.crashloop import (
    DOCKER_MAX_RESTART_DELAY,
    MAX_REMEMBERED,
    RestartHistory,
    crash_loop_message,
    is_crash_looping,
)

WINDOW = 300.0


def test_restarts_are_counted_from_the_restart_count_increase() -> None:
    history = RestartHistory()
    assert history.observe("c1", 0, now=0, window=WINDOW) == 0
    assert history.observe("c1", 3, now=10, window=WINDOW) == 3
    assert history.observe("c1", 3, now=20, window=WINDOW) == 3
    assert history.observe("c1", 4, now=30, window=WINDOW) == 4


def test_restarts_stop_counting_once_the_agent_has_stayed_up_for_a_window() -> None:
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=WINDOW)
    history.observe("c1", 6, now=10, window=WINDOW)
    assert history.observe("c1", 6, now=10 + WINDOW + DOCKER_MAX_RESTART_DELAY, window=WINDOW) == 0


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
    assert "restarted 6 times without staying up for 300s" in message
    assert "last exit code 3" in message
    assert "memory" in crash_loop_message(6, WINDOW, 137, oom_killed=True)


def test_a_loop_at_dockers_one_minute_delay_stays_a_crash_loop() -> None:
    """Docker's delay stops growing at one minute: a 300 s window then never holds more than five."""
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=WINDOW)
    counts = [history.observe("c1", n, now=60.0 * n, window=WINDOW) for n in range(1, 30)]
    assert counts == list(range(1, 30))
    assert is_crash_looping(counts[-1], budget=5)


def test_a_loop_already_going_when_the_controller_starts_is_noticed() -> None:
    history = RestartHistory()
    history.observe("c1", 40, now=0, window=WINDOW)  # forty restarts before we looked: not counted
    counts = [history.observe("c1", 40 + n, now=60.0 * n, window=WINDOW) for n in range(1, 7)]
    assert is_crash_looping(counts[-1], budget=5)


def test_the_episode_ends_only_when_a_pause_proves_the_agent_stayed_up_for_a_window() -> None:
    """Docker may have waited up to a minute before a restart: that minute was not uptime."""
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=WINDOW)
    history.observe("c1", 8, now=10, window=WINDOW)
    proven = 10 + WINDOW + DOCKER_MAX_RESTART_DELAY
    assert history.observe("c1", 8, now=proven - 1, window=WINDOW) == 8
    assert history.observe("c1", 8, now=proven, window=WINDOW) == 0
    assert history.observe("c1", 9, now=proven + 1, window=WINDOW) == 1


def test_a_window_shorter_than_dockers_delay_still_sees_the_loop() -> None:
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=5)
    delays = [0.1 * 2**n for n in range(10)] + [60.0] * 5  # Docker's schedule: 0.1 s doubling, capped
    now, counts = 0.0, []
    for n, delay in enumerate(delays, start=1):
        now += delay
        counts.append(history.observe("c1", n, now=now, window=5))
    assert counts == list(range(1, len(delays) + 1))


def test_a_start_by_hand_resets_dockers_count_and_later_restarts_still_count() -> None:
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=WINDOW)
    assert history.observe("c1", 4, now=1, window=WINDOW) == 4
    # `docker start` (or the controller starting a stopped container) sets RestartCount back to 0.
    assert history.observe("c1", 0, now=2, window=WINDOW) == 4
    assert history.observe("c1", 2, now=3, window=WINDOW) == 6


def test_a_very_long_loop_is_remembered_up_to_a_bound() -> None:
    history = RestartHistory()
    history.observe("c1", 0, now=0, window=WINDOW)
    assert history.observe("c1", MAX_REMEMBERED + 50, now=1, window=WINDOW) == MAX_REMEMBERED
