"""`smart-trader paper start|status|stop`, `paper parent submit|status`, `kill-switch` and
`cancel-all` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import one_line_error, run


@pytest.mark.parametrize(
    "args",
    [
        ("paper", "status"),
        ("paper", "stop"),
        ("kill-switch",),
        ("cancel-all", "--symbol", "X"),
        ("paper", "parent", "submit", "THYAO", "buy", "600"),
        ("paper", "parent", "submit", "THYAO", "buy", "600", "--algo", "vwap"),
        ("paper", "parent", "status", "PARENT-1"),
    ],
)
def test_control_commands_explain_the_embedded_ray(tmp_path: Path, args: tuple[str, ...]):
    result = run(tmp_path, *args)
    one_line_error(result, "ray.address", "paper start")


def test_paper_start_checks_its_options(tmp_path: Path):
    one_line_error(run(tmp_path, "paper", "start", "--speed", "-1"), "--speed")
    one_line_error(run(tmp_path, "paper", "start", "--replay", "yesterday"), "--replay")
    one_line_error(run(tmp_path, "paper", "start"), "no trades", "data generate")


@pytest.mark.slow
def test_paper_start_replays_a_day_in_the_foreground(tmp_path: Path):
    """The embedded Ray: the day runs to the end, the status is printed, the journal stays."""
    generated = run(
        tmp_path, "data", "generate", "--symbols", "3", "--sessions", "10", "--tick-sessions", "1"
    )
    assert generated.returncode == 0, generated.stderr
    result = run(tmp_path, "paper", "start", "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert status["finished"]
    assert status["feed_state"] == "finished"
    stream = status["actors"]["stream"]
    assert stream["ticks"]["received"] > 0
    assert stream["counters"]["bars"] > 0
    assert Path(status["journal"]).is_file()
    # the same day backtested with the same model and config: the parity of the two
    parity = status["parity"]
    assert parity["passed"] and parity["identical_share"] >= 0.99
    assert parity["orders"]["live"] == stream["counters"]["orders"]
    assert all(Path(tmp_path, f).is_file() for f in parity["files"])
