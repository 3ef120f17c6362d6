"""Progress away from a terminal: a line every 30 s, and a time left the first epoch does not distort."""

import io

from lgn.train.progress import ProgressLines, duration, seconds_left


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_seconds_left_leaves_out_the_first_epoch_once_there_is_another():
    assert seconds_left([], 5) is None
    assert seconds_left([30.0], 5) == 150.0  # nothing else to go by
    assert seconds_left([30.0, 10.0, 12.0], 5) == 55.0  # (10 + 12) / 2 · 5


def test_a_line_every_thirty_seconds_with_step_rate_and_time_left():
    clock, out = Clock(), io.StringIO()
    lines = ProgressLines(total_steps=40, steps_per_epoch=10, epochs=4, stream=out, clock=clock)
    for step in range(1, 31):
        # epoch 1 takes 2 s a step (warming up), the next epochs 0.5 s a step
        clock.now += 2.0 if step <= 10 else 0.5
        lines.update(images=128)
    printed = out.getvalue().splitlines()
    # when a line is due, computed from the clock alone: 30 s are first reached at step 30 (20 s + 20 · 0.5 s)
    times = [2.0 * min(s, 10) + 0.5 * max(s - 10, 0) for s in range(1, 31)]
    expected_steps, last = [], 0.0
    for s, t in zip(range(1, 31), times):
        if t - last >= 30:
            expected_steps.append(s)
            last = t
    assert [int(line.split("step ")[1].split("/")[0]) for line in printed] == expected_steps == [30]
    # at step 30: epochs 2 and 3 took 5 s each, so the 10 steps left take 5 s (epoch 1's 20 s not counted)
    assert printed[0] == "lgn train [30 s]: step 30/40 (epoch 4/4), 128 images/s, 5 s left"


def test_within_the_first_epoch_its_own_pace_counts():
    clock, out = Clock(), io.StringIO()
    lines = ProgressLines(total_steps=1000, steps_per_epoch=500, epochs=2, first_step=100, every=30.0,
                          stream=out, clock=clock)  # resumed at step 100
    for _ in range(40):
        clock.now += 1.0
        lines.update(images=64)
    assert out.getvalue().splitlines() == [
        f"lgn train [30 s]: step 130/1,000 (epoch 1/2), 64 images/s, {duration(870 * 1.0)} left"]


def test_duration():
    assert [duration(s) for s in (42, 450, 8280)] == ["42 s", "7.5 min", "2.3 h"]


def test_a_run_away_from_a_terminal_prints_progress_lines(tmp_path, monkeypatch, capsys):
    import functools

    import lgn.train.loop
    from lgn.train import train
    from tests.train.helpers import tiny_settings, write_tiny_npz

    # a line after every step instead of every 30 s; capsys's stderr is not a terminal
    monkeypatch.setattr(lgn.train.loop, "ProgressLines", functools.partial(ProgressLines, every=0.0))
    settings = tiny_settings(write_tiny_npz(tmp_path / "tiny.npz"), epochs=2)  # 48 images, batches of 16
    settings["train"]["progress"] = True
    train(settings, tmp_path / "run", log=None)
    lines = capsys.readouterr().err.splitlines()
    assert [line.split("]: ")[1].split(" (")[0] for line in lines] == [f"step {s}/6" for s in range(1, 7)]
    assert all(line.startswith("lgn train [") and " images/s" in line for line in lines)
    assert "(epoch 2/2)" in lines[3] and lines[-1].endswith("images/s, 0 s left")
    settings["train"]["progress"] = False  # --no-progress: no bar, no lines
    train(settings, tmp_path / "quiet", log=None)
    assert capsys.readouterr().err == ""
