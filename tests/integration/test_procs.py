"""host.owned (start, know again, read, stop a process the platform owns) on real processes; and procs.alive on a process whose main thread has exited while its other threads still run and hold its sockets
(how a killed JVM looks for a few milliseconds: the CI once saw a stopped Spark master's ports still open)."""

import os
import pwd
import signal
import subprocess
import sys

import pytest

from odh_spawner.host import owned, procs
from odh_spawner.host.safefiles import private_dir
from odh_spawner.host.users import SystemUser
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


# -- host.owned: the one way the platform starts, knows again, reads and stops the processes it owns -----------

CHILD = "import sys, time; print('hello', sys.stdin.read(), flush=True); time.sleep(600)"


def test_an_owned_process_logs_to_its_inherited_log_is_known_again_by_record_and_stops(tmp_path):
    logs = private_dir(str(tmp_path / "logs"), 0o700)
    sup = owned.Supervisor()
    proc = sup.start([sys.executable, "-c", CHILD, str(tmp_path)], log_path=os.path.join(logs, "p.log"),
                     cwd=str(tmp_path), env=owned.clean_env(), marker=str(tmp_path), stdin=b"from stdin",
                     header="---- start\n")
    wait_for(lambda: "hello from stdin" in proc.tail(), 10, "its first line")
    assert proc.tail().splitlines() == ["---- start", "hello from stdin"]
    rec = proc.record()
    assert rec == {"pid": proc.pid, "started": procs.start_time(proc.pid), "log": os.path.join(logs, "p.log"),
                   "log_offset": 0}
    # another handle (the platform service after a restart) knows it by PID, start time and marker
    other = owned.Supervisor().find(rec["pid"], rec["started"], marker=str(tmp_path), log=rec["log"])
    assert other.popen is None and other.alive() and "hello" in other.tail()
    assert not owned.Supervisor().find(rec["pid"], rec["started"], marker="/not/its/dir").alive()
    assert not owned.Supervisor().find(rec["pid"], (rec["started"] or 0) + 1).alive()  # a recycled PID
    assert sup.find(rec["pid"], rec["started"]) is proc
    assert sup.stop(proc, timeout=5) == []  # SIGTERM was enough
    assert not proc.alive() and proc.exit_status() == "it was killed by signal 15"
    assert not other.alive() and other.exit_status() == "it stopped"


def test_a_process_ignoring_sigterm_is_killed_with_its_group(tmp_path):
    code = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(600)']);"
            "print(c.pid, flush=True); time.sleep(600)")
    proc = owned.start([sys.executable, "-c", code], log_path=str(tmp_path / "p.log"), cwd=str(tmp_path),
                       env=owned.clean_env())
    grandchild = int(wait_for(lambda: proc.tail().strip(), 10, "the grandchild's PID"))
    adopted = owned.OwnedProcess(proc.pid, proc.started)  # as after a restart: not our child
    assert owned.stop_all([adopted], timeout=0.5) == [proc.pid]
    wait_for(lambda: not procs.alive(grandchild), 10, "the group to be killed")
    proc.popen.wait(5)


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a process as another user needs root")
def test_a_process_started_as_a_user_writes_a_log_it_cannot_open(tmp_path):
    nobody = pwd.getpwnam("nobody")
    user = SystemUser("nobody", nobody.pw_uid, nobody.pw_gid, "/nonexistent")
    os.chmod(tmp_path, 0o711)
    logs = private_dir(str(tmp_path / "logs"), 0o700)
    log = os.path.join(logs, "p.log")
    code = (f"import os; print('uid', os.getuid(), flush=True)\n"
            f"try:\n    open({log!r})\nexcept OSError as e:\n    print('open', type(e).__name__, flush=True)")
    proc = owned.start([sys.executable, "-c", code], log_path=log, cwd="/", env=owned.clean_env(), run_as=user)
    proc.popen.wait(30)
    assert proc.tail().splitlines() == [f"uid {nobody.pw_uid}", "open PermissionError"]
    st = os.stat(log)
    assert (st.st_uid, st.st_mode & 0o777) == (0, 0o600)
    assert proc.exit_status() == "it exited with code 0"
