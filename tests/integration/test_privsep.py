"""The privileged helper (odh_spawner.host.privsep) as the platform service uses it: a real helper process, real
system accounts, real processes. Each refusal is proven by the helper's own message, and by what did not
change on disk.

Needs root (the helper starts processes as other users, changes owners): skipped otherwise, saying so."""

import os
import pwd
import signal
import stat
import subprocess
import time

import pytest

from odh_spawner.host import privsep
from odh_spawner.host.procs import alive, start_time
from odh_spawner.host.safefiles import open_log
from odh_spawner.host.users import ensure_system_user
from tests.support.secretscan import process_children

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(os.geteuid() != 0, reason="the privileged helper needs root")]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    base = tmp_path_factory.mktemp("privsep")
    os.chmod(base, 0o711)
    root = base / "state"
    root.mkdir(mode=0o711)
    os.chmod(root, 0o711)
    svc = privsep.ensure_platform_user(privsep.platform_user_name("testpriv1"))
    os.chown(root, svc.pw_uid, svc.pw_gid)
    home = base / "home"
    home.mkdir(mode=0o711)
    alice = ensure_system_user("privsep-alice", str(home / "privsep-alice"))
    helper = privsep.start_helper(privsep.Policy((str(root),), svc.pw_uid, svc.pw_gid))
    yield {"root": root, "svc": svc, "alice": alice, "helper": helper}
    helper.close()


def as_service(svc, fn):
    """Run `fn` in a child that became the service's user (what the service itself does after dropping root)."""
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(svc.pw_gid)
            os.setuid(svc.pw_uid)
            fn()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def service_log(setup, name):
    """A log file of the service (in a directory of its own), opened for a start."""
    d = setup["root"] / "logs"
    d.mkdir(exist_ok=True)
    os.chown(d, setup["svc"].pw_uid, setup["svc"].pw_gid)
    path = d / name
    fd, _ = open_log(str(path))
    os.fchown(fd, setup["svc"].pw_uid, setup["svc"].pw_gid)
    return fd, path


def wait_for(cond, timeout=10):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return cond()


def test_start_runs_as_the_user_in_its_directory_with_the_log_the_service_opened(setup):
    helper, alice = setup["helper"], setup["alice"]
    fd, log = service_log(setup, "id.log")
    try:
        answer = helper.call("start", (fd,), user=alice.name, argv=["/bin/sh", "-c", "id -u; pwd; cat"],
                             cwd=alice.home, env={"PATH": "/usr/bin:/bin"}, stdin="from stdin\n")
    finally:
        os.close(fd)
    assert wait_for(lambda: not alive(answer["pid"], answer["started"]))
    assert log.read_text().splitlines() == [str(alice.uid), alice.home, "from stdin"]
    assert helper.call("returncode", pid=answer["pid"], started=answer["started"]) == 0


@pytest.mark.parametrize("user, cause", [
    ("root", "'root' is not a hub user's system account."),
    ("odh-nobody-at-all", "There is no system account named odh-nobody-at-all."),
])
def test_start_refuses_any_identity_but_a_hub_users(setup, user, cause):
    fd, _ = service_log(setup, "refused.log")
    try:
        with pytest.raises(privsep.PrivsepError) as e:
            setup["helper"].call("start", (fd,), user=user, argv=["/bin/true"], cwd="/", env={})
    finally:
        os.close(fd)
    assert str(e.value) == cause


def test_start_refuses_the_services_own_account_and_a_log_it_does_not_own(setup):
    helper, svc = setup["helper"], setup["svc"]
    with pytest.raises(privsep.PrivsepError, match="must be a list of strings"):
        helper.call("start", user=setup["alice"].name, argv=["true"], cwd="/", env={})
    fd = os.open("/etc/hostname", os.O_RDONLY)
    try:
        with pytest.raises(privsep.PrivsepError) as e:
            helper.call("start", (fd,), user=setup["alice"].name, argv=["/bin/true"], cwd="/", env={})
    finally:
        os.close(fd)
    assert str(e.value) == "The log must be a regular file of the platform service."
    policy = privsep.Policy(("/x",), svc.pw_uid)
    with pytest.raises(privsep.PrivsepError, match="is not a hub user's system account"):
        policy.user_by_uid(svc.pw_uid)


def test_signal_reaches_a_users_process_and_refuses_roots(setup):
    helper, alice = setup["helper"], setup["alice"]
    fd, _ = service_log(setup, "sleep.log")
    try:
        users = helper.call("start", (fd,), user=alice.name, argv=["/bin/sleep", "60"], cwd="/", env={})
    finally:
        os.close(fd)
    roots = subprocess.Popen(["/bin/sleep", "60"])
    try:
        with pytest.raises(privsep.PrivsepError) as e:
            helper.call("signal", pid=roots.pid, started=start_time(roots.pid), signal="KILL")
        assert str(e.value) == "root is not a hub user's system account."
        assert roots.poll() is None
        # a recycled PID (another start time) is never signalled
        assert helper.call("signal", pid=users["pid"], started=users["started"] + 1, signal="KILL") is False
        assert alive(users["pid"], users["started"])
        assert helper.call("signal", pid=users["pid"], started=users["started"], signal="TERM", group=True)
        assert wait_for(lambda: not alive(users["pid"], users["started"]))
        assert helper.call("returncode", pid=users["pid"], started=users["started"]) == -signal.SIGTERM
    finally:
        roots.kill()
        roots.wait()


def test_give_dir_hands_over_a_fresh_directory_once_and_never_follows_a_link(setup):
    helper, alice, svc, root = setup["helper"], setup["alice"], setup["svc"], setup["root"]
    fresh = root / "fresh"
    fresh.mkdir()
    os.chown(fresh, svc.pw_uid, svc.pw_gid)
    assert helper.call("give_dir", path=str(fresh), user=alice.name) is True
    st = os.stat(fresh)
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (alice.uid, 0o700)
    assert helper.call("give_dir", path=str(fresh), user=alice.name) is False  # once: already hers

    # a link planted by (say) the service itself, to a directory outside: refused, its target untouched
    os.symlink("/etc", root / "planted")
    with pytest.raises(privsep.PrivsepError) as e:
        helper.call("give_dir", path=str(root / "planted"), user=alice.name)
    assert str(e.value) == "planted cannot be opened without following a link (Too many levels of symbolic links)."
    assert os.stat("/etc").st_uid == 0
    # below alice's own directory: she could swap what is there, so the helper never walks it
    inner = fresh / "inner"
    subprocess.run(["setpriv", f"--reuid={alice.uid}", f"--regid={alice.gid}", "--clear-groups", "mkdir",
                    str(inner)], check=True)
    with pytest.raises(privsep.PrivsepError) as e:
        helper.call("give_dir", path=str(inner), user=alice.name)
    assert str(e.value) == f"fresh belongs to uid {alice.uid}; not followed."
    with pytest.raises(privsep.PrivsepError) as e:
        helper.call("give_dir", path="/etc/ssl", user=alice.name)
    assert str(e.value) == "/etc/ssl is outside the platform's directories."
    with pytest.raises(privsep.PrivsepError) as e:
        helper.call("give_dir", path=str(root / ".." / "x"), user=alice.name)
    assert str(e.value) == "A path must be absolute and normalised."


def test_share_dir_sets_the_group_and_neither_follows_links_nor_blocks_on_fifos(setup):
    helper, alice, svc, root = setup["helper"], setup["alice"], setup["svc"], setup["root"]
    tree = root / "model"
    (tree / "sub").mkdir(parents=True)
    (tree / "model.joblib").write_bytes(b"x")
    (tree / "sub" / "more").write_bytes(b"y")
    os.symlink("/etc/shadow", tree / "link")
    os.mkfifo(tree / "fifo")
    for p in (tree, tree / "sub", tree / "model.joblib", tree / "sub" / "more", tree / "fifo"):
        os.chown(p, svc.pw_uid, svc.pw_gid)
        os.chmod(p, 0o700 if p.is_dir() else 0o600)
    shadow = os.stat("/etc/shadow")
    t0 = time.monotonic()
    assert helper.call("share_dir", path=str(tree), user=alice.name) == 4
    assert time.monotonic() - t0 < 5
    for p, mode in ((tree, 0o2750), (tree / "sub", 0o2750), (tree / "model.joblib", 0o640),
                    (tree / "sub" / "more", 0o640)):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (svc.pw_uid, alice.gid, mode), p
    assert os.stat("/etc/shadow") == shadow
    assert os.stat(tree / "fifo").st_gid == svc.pw_gid
    # alice reads the model; she cannot write into the directory
    out = subprocess.run(["setpriv", f"--reuid={alice.uid}", f"--regid={alice.gid}", "--init-groups", "sh", "-c",
                          f"cat {tree}/model.joblib; touch {tree}/new"], capture_output=True, text=True)
    assert out.stdout == "x" and "Permission denied" in out.stderr


def test_take_over_gives_roots_entries_to_the_service_and_never_enters_a_users_directory(setup):
    alice, svc, root = setup["alice"], setup["svc"], setup["root"]
    d = root / "cluster"
    (d / "conf").mkdir(parents=True)
    (d / "conf" / "spark-defaults.conf").write_text("a")
    users = d / "work"
    users.mkdir()
    (users / "roots-file").write_text("b")  # root made it there; alice owns the directory
    os.chown(users, alice.uid, alice.gid)
    os.symlink("/etc/passwd", d / "link")
    assert setup["helper"].call("take_over", path=str(d)) == 2  # conf/ and its file (d itself is not counted)
    assert os.stat(d).st_uid == svc.pw_uid
    assert os.stat(d / "conf" / "spark-defaults.conf").st_uid == svc.pw_uid
    assert os.stat(users / "roots-file").st_uid == 0  # inside alice's directory: not entered
    assert os.stat("/etc/passwd").st_uid == 0
    assert os.lstat(d / "link").st_uid == 0


def test_the_service_user_cannot_do_any_of_it_itself(setup):
    """What the helper does is not something the service's user could do alone (else it needs no helper)."""
    alice, svc = setup["alice"], setup["svc"]
    probe = setup["root"] / "probe"
    probe.mkdir()
    os.chown(probe, svc.pw_uid, svc.pw_gid)
    assert as_service(svc, lambda: os.chown(probe, alice.uid, alice.gid)) == 1
    assert as_service(svc, lambda: os.kill(1, 0)) == 1


def test_unknown_commands_and_bad_arguments_answer_with_a_message(setup):
    helper = setup["helper"]
    with pytest.raises(privsep.PrivsepError) as e:
        helper.call("rm_rf", path="/")
    assert str(e.value) == "Unknown command 'rm_rf'."
    with pytest.raises(privsep.PrivsepError) as e:
        helper.call("signal", pid=1, started=0, signal="HUP")
    assert str(e.value) == "Signal 'HUP' is not one of TERM, KILL, STOP, CONT, INT."
    with pytest.raises(privsep.PrivsepError) as e:
        helper.call("guard", ports=[22])
    assert str(e.value) == "Ports must be a list of at most 64 numbers from 1024 to 65535."


def test_the_helper_exits_when_the_service_goes(setup, tmp_path):
    svc = setup["svc"]
    client = privsep.start_helper(privsep.Policy((str(tmp_path),), svc.pw_uid, svc.pw_gid))
    pid = client.process.pid
    assert client.call("capabilities") == {"guard": False, "cgroups": False}
    client.sock.close()  # what a kill -9 of the service does to its end
    client.process.wait(timeout=10)
    assert not alive(pid)
    assert pwd.getpwuid(svc.pw_uid).pw_gecos == privsep.PLATFORM_MARK  # the account made for the service


def _status_ids(pid: int) -> tuple[list[int], list[int]]:
    """(real, effective, saved, fs) uids and gids of a process, from /proc/PID/status."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            fields[key] = value.split()
    return [int(u) for u in fields["Uid"]], [int(g) for g in fields["Gid"]]


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]


def test_the_running_platform_service_is_not_root_and_its_helper_is_its_only_root_child(hub):
    """The hub's platform service (started as root by the hub, as `make up` does) runs as its own system user
    with every uid and gid unprivileged; the privileged helper is the one root process below it (users'
    processes the helper started run as their users: test_deploy, test_ingest_platform)."""
    tree = process_children()
    below_hub, todo = [], list(tree.get(hub.proc.pid, []))
    while todo:
        pid = todo.pop()
        below_hub.append(pid)
        todo += tree.get(pid, [])
    services = [p for p in below_hub if _cmdline(p)[1:3] == ["-m", "odh_spawner.platform"]]
    assert len(services) == 1, [(p, _cmdline(p)) for p in below_hub]
    service = services[0]
    uids, gids = _status_ids(service)
    assert 0 not in uids and 0 not in gids, (uids, gids)
    assert pwd.getpwuid(uids[0]).pw_name.startswith("odh_platform_")
    below, todo = [], list(tree.get(service, []))
    while todo:
        pid = todo.pop()
        below.append(pid)
        todo += tree.get(pid, [])
    root_below = [p for p in below if 0 in _status_ids(p)[0]]
    assert [_cmdline(p)[1:3] for p in root_below] == [["-m", "odh_spawner.host.privsep"]], \
        [(p, _cmdline(p)) for p in root_below]
