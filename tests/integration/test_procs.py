"""procs.alive on a process whose main thread has exited while its other threads still run and hold its sockets
(how a killed JVM looks for a few milliseconds: the CI once saw a stopped Spark master's ports still open)."""

import os
import signal
import subprocess
import sys

from odh_spawner.host import procs
from tests.support.wait import wait_for

# The main thread leaves with the raw exit(2) system call (only that thread ends); a second thread keeps the
# process, and so its listening socket, alive until the test kills it.
SYS_EXIT = {"x86_64": 60, "aarch64": 93}[os.uname().machine]
HALF_EXITED = r"""
import ctypes, socket, sys, threading, time
srv = socket.socket(); srv.bind(("127.0.0.1", 0)); srv.listen()
print(srv.getsockname()[1], flush=True)
threading.Thread(target=lambda: time.sleep(600)).start()
time.sleep(0.2)
ctypes.CDLL(None, use_errno=True).syscall(%d, 0)  # SYS_exit: this thread only
""" % SYS_EXIT


def test_a_zombie_main_thread_with_live_threads_is_alive_until_they_exit():
    child = subprocess.Popen([sys.executable, "-c", HALF_EXITED], stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        wait_for(lambda: procs._stat_fields(child.pid)[0] == "Z", 10, "the main thread to exit")
        assert procs.listening(port)
        assert procs.alive(child.pid)  # its port still answers: not gone
        child.send_signal(signal.SIGKILL)
        wait_for(lambda: not procs.alive(child.pid), 10, "the process to be gone")
        assert not procs.listening(port)
    finally:
        child.kill()
        child.wait(10)
    assert not procs.alive(child.pid)
