"""A local Kafka-protocol broker for the local platform: noida-db (PyPI), one process, data on disk.

No Apache Kafka can be installed from the registries this project reaches; noida-db speaks the Kafka
protocol (correct watermarks, consumer groups, offsets kept across restarts with --data-dir). Production
targets Apache Kafka (Strimzi on Kubernetes): there the bootstrap address is configuration only.

`KafkaBroker` starts the broker on 127.0.0.1 (a free random port unless given), waits until it answers, keeps
it running (`supervise`, same port and data) and stops it by PID. noida-db prints a harmless loader warning
on every start ("weak version GLIBC_2.39 not found"); `log_tail` leaves it out.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from typing import Callable

from odh_spawner.host.ports import free_port
from odh_spawner.host.supervise import RestartBudget, SupervisedProcess, exit_text

HARMLESS = ("GLIBC_2.39",)  # noida-db's loader warning on Debian bookworm's glibc 2.36


class KafkaError(RuntimeError):
    """The local broker could not start or keeps exiting (the message says where its log is)."""


def noida_command() -> str:
    """noida-db's broker binary inside its PyPI package. Run directly: the package's `noida-db` script is a
    Python wrapper that does not pass SIGTERM on, so stopping it would leave the broker running."""
    try:
        from importlib.resources import files

        path = str(files("noida_db").joinpath("noida-db"))
    except (ImportError, ModuleNotFoundError, TypeError):
        return shutil.which("noida-db") or "noida-db"
    if os.path.isfile(path) and not os.access(path, os.X_OK):
        try:
            os.chmod(path, 0o755)
        except OSError:
            pass
    return path


def filter_log(text: str) -> str:
    """A broker log without noida-db's harmless loader warning lines. Pure."""
    return "\n".join(line for line in text.splitlines() if not any(h in line for h in HARMLESS))


def answers(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        socket.create_connection((host, port), timeout).close()
        return True
    except OSError:
        return False


class BrokerProcess(SupervisedProcess):
    """Supervising, stopping and killing a broker process by PID, shared by the local brokers. A subclass gives
    `proc`, `budget`, `report`, `bootstrap`, `log_path`, `_spawn()` and `_wait(timeout)`, and its timings."""

    error: type[Exception] = KafkaError
    keeps_exiting = "The Kafka broker"
    restarted_name = "Kafka broker"

    @property
    def address(self) -> str:
        return self.bootstrap


class KafkaBroker(BrokerProcess):
    """One noida-db Kafka broker with its data under `data_dir` (kept across restarts)."""

    def __init__(self, data_dir: str, port: int = 0, report: Callable[[str], None] | None = None,
                 command: str | None = None):
        self.data_dir = os.path.abspath(data_dir)
        self.port = port or 0
        self.report = report or (lambda msg: None)
        self.command = command or noida_command()
        self.proc: subprocess.Popen | None = None
        self.budget = RestartBudget()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.data_dir, "broker.log")

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                text = f.read()[-20000:]
        except OSError:
            return ""
        return "\n".join(filter_log(text).splitlines()[-lines:])

    def _spawn(self) -> subprocess.Popen:
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(
                [self.command, "start", "--only", "kafka", "--host", "127.0.0.1", "--kafka-port", str(self.port),
                 "--data-dir", os.path.join(self.data_dir, "data")],
                cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            os.close(log)

    def start(self, timeout: float = 30) -> "KafkaBroker":
        if not os.access(self.command, os.X_OK):
            raise KafkaError(f"`noida-db` is not installed ({self.command}); run `make install`.")
        if not self.port:
            self.port = free_port()
        t0 = time.monotonic()
        self.proc = self._spawn()
        self._wait(timeout)
        self.report(f"Kafka broker (noida-db) ready at {self.bootstrap} in {time.monotonic() - t0:.1f}s")
        return self

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not answers("127.0.0.1", self.port):
            if self.proc.poll() is not None:
                raise KafkaError(f"The Kafka broker exited with {exit_text(self.proc.returncode)}: "
                                 f"{self.log_tail(5)}.")
            if time.monotonic() > deadline:
                self.stop()
                raise KafkaError(f"The Kafka broker did not answer within {timeout:.0f}s; see {self.log_path}.")
            time.sleep(0.02)

