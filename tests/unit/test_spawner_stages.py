"""Spawn stages: durations per stage, the progress messages that say them, the log line benchmarks read."""

from odh_spawner.spawners.stages import SpawnStages, with_duration


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_each_stage_is_closed_by_the_next_and_by_finish():
    clock = Clock()
    stages = SpawnStages(clock=clock)
    assert stages.begin("credentials") is None  # nothing was open
    clock.now += 0.25
    assert stages.begin("server process") == 0.25
    clock.now += 2.0
    assert stages.finish() == 2.0
    assert stages.finish() is None
    assert stages.durations == {"credentials": 0.25, "server process": 2.0}
    assert stages.total == 2.25
    assert stages.summary() == "credentials 0.25 s, server process 2.00 s"


def test_a_stage_run_twice_adds_up():
    clock = Clock()
    stages = SpawnStages(clock=clock)
    stages.begin("a")
    clock.now += 1
    stages.begin("a")
    clock.now += 2
    stages.finish()
    assert stages.durations == {"a": 3}


def test_the_log_line_round_trips_and_other_lines_give_none():
    clock = Clock()
    stages = SpawnStages(clock=clock)
    stages.begin("profile")
    clock.now += 0.5
    stages.finish()
    line = "[I 2026-11-26 12:00:00.000 JupyterHub mixin:1] " + stages.log_line("ålice %s")
    record = SpawnStages.from_log_line(line)
    assert record == {"user": "ålice %s", "total": 0.5, "stages": {"profile": 0.5}}
    assert SpawnStages.from_log_line("[I ...] Spawning alice") is None
    assert SpawnStages.from_log_line("odh spawn stages {not json") is None


def test_with_duration():
    assert with_duration("Limits applied", 0.0123) == "Limits applied (0.01 s)"
    assert with_duration("Limits applied", None) == "Limits applied"
