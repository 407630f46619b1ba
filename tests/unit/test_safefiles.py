"""Reading what a user's process could have replaced (host.safefiles, host.owned.log_tail, the ingestion status
reader): a link, a FIFO or a hard link is refused by its cause, never followed, never waited on. Real files in a
temporary directory; nothing runs."""

import logging
import os
import time

import pytest

from odh_spawner.host.owned import OwnedProcess, log_tail
from odh_spawner.host.safefiles import RefusedFile, open_log, private_dir, read_bytes
from odh_spawner.ingest.local import read_json_nofollow

SECRET = "root:$6$not-for-users:19000:0:99999:7:::\n"


@pytest.fixture
def secret(tmp_path):
    path = tmp_path / "shadow"
    path.write_text(SECRET)
    return path


def test_a_regular_file_reads_whole_from_an_offset_or_its_tail(tmp_path):
    path = tmp_path / "log"
    path.write_bytes(b"0123456789")
    assert read_bytes(str(path)) == b"0123456789"
    assert read_bytes(str(path), offset=4) == b"456789"
    assert read_bytes(str(path), max_bytes=3) == b"012"
    assert read_bytes(str(path), max_bytes=3, tail=True) == b"789"
    assert read_bytes(str(path), max_bytes=30, offset=8, tail=True) == b"89"
    with pytest.raises(FileNotFoundError):
        read_bytes(str(tmp_path / "missing"))


def test_a_symbolic_link_is_refused_not_followed(tmp_path, secret):
    link = tmp_path / "mlserver.log"
    link.symlink_to(secret)
    with pytest.raises(RefusedFile) as e:
        read_bytes(str(link))
    assert e.value.cause == "is a symbolic link"
    assert log_tail(str(link)) == "(odh-hub: the log was not read: it is a symbolic link)"
    assert "not-for-users" not in OwnedProcess(1, None, str(link)).tail()


def test_a_fifo_is_refused_at_once_without_a_writer(tmp_path):
    fifo = tmp_path / "status.json"
    os.mkfifo(fifo)
    t0 = time.monotonic()
    with pytest.raises(RefusedFile) as e:
        read_bytes(str(fifo))
    assert e.value.cause == "is a FIFO" and time.monotonic() - t0 < 1


def test_a_hard_link_and_a_directory_are_refused(tmp_path, secret):
    hard = tmp_path / "worker.log"
    os.link(secret, hard)
    with pytest.raises(RefusedFile) as e:
        read_bytes(str(hard))
    assert e.value.cause == "has 2 hard links"
    with pytest.raises(RefusedFile) as e:
        read_bytes(str(tmp_path))
    assert e.value.cause == "is a directory"


def test_a_missing_log_has_no_tail_and_a_tail_keeps_the_last_lines_since_the_offset(tmp_path):
    assert log_tail(str(tmp_path / "missing")) == "" and log_tail("") == ""
    path = tmp_path / "log"
    path.write_text("old run\n" + "".join(f"line {i}\n" for i in range(10)))
    assert log_tail(str(path), offset=len("old run\n"), lines=3) == "line 7\nline 8\nline 9"
    assert "old run" not in log_tail(str(path), offset=len("old run\n"), lines=100)


def test_the_status_reader_refuses_a_fifo_and_a_link_and_says_why(tmp_path, secret, caplog):
    fifo, link, good = tmp_path / "fifo.json", tmp_path / "link.json", tmp_path / "status.json"
    os.mkfifo(fifo)
    link.symlink_to(secret)
    good.write_text('{"records": 3}')
    caplog.set_level(logging.WARNING, "odh_spawner.ingest")
    t0 = time.monotonic()
    assert read_json_nofollow(str(fifo)) == {} and read_json_nofollow(str(link)) == {}
    assert time.monotonic() - t0 < 1
    assert "it is a FIFO" in caplog.text and "it is a symbolic link" in caplog.text
    assert read_json_nofollow(str(good)) == {"records": 3}
    (tmp_path / "big.json").write_text('{"x": "' + "a" * 100 + '"}')
    assert read_json_nofollow(str(tmp_path / "big.json"), max_bytes=50) == {}  # cut short: not JSON, not read


def test_private_dirs_are_made_with_their_mode_and_a_link_is_refused(tmp_path):
    d = private_dir(str(tmp_path / "logs"), 0o700)
    assert os.stat(d).st_mode & 0o7777 == 0o700
    os.chmod(d, 0o755)
    private_dir(d, 0o700)  # repaired
    assert os.stat(d).st_mode & 0o7777 == 0o700
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(RefusedFile) as e:
        private_dir(str(tmp_path / "linked"))
    assert e.value.cause == "is a symbolic link"


def test_a_log_opens_for_appending_never_through_a_link(tmp_path, secret):
    path = tmp_path / "v1.log"
    path.write_bytes(b"earlier\n")
    fd, offset = open_log(str(path))
    try:
        assert offset == len(b"earlier\n") and os.fstat(fd).st_mode & 0o777 == 0o600
        os.write(fd, b"now\n")
    finally:
        os.close(fd)
    assert path.read_bytes() == b"earlier\nnow\n"
    (tmp_path / "planted.log").symlink_to(secret)
    with pytest.raises(OSError):
        open_log(str(tmp_path / "planted.log"))
    assert secret.read_text() == SECRET


def test_runtime_records_from_before_logs_moved_read_the_old_place_safely(tmp_path, secret):
    """A record written before logs moved to root's `logs/` names no log: the backends read the old place (in
    the user's directory) safely, so a link planted there is refused, and a real old log still reads."""
    from odh_spawner.deploy.local import LocalMLServerBackend
    from odh_spawner.ingest.local import LocalIngestBackend

    gone = 2**22 + 7  # above pid_max's default: no process; the log is read all the same
    version, run = tmp_path / "v1", tmp_path / "run"
    version.mkdir()
    run.mkdir()
    (version / "mlserver.log").symlink_to(secret)
    (run / "worker.log").write_text("consumer started\nflushed 10 records\n")
    serving = LocalMLServerBackend(run_as_owner=False)
    assert serving.log_tail({"pid": gone, "started": 1, "dir": str(version)}) == [
        "(odh-hub: the log was not read: it is a symbolic link)"]
    assert serving.log_path(str(version)) == str(tmp_path / "logs" / "v1.log")
    ingest = LocalIngestBackend(run_as_owner=False)
    assert ingest.log_tail({"pid": gone, "started": 1, "run_dir": str(run)}, str(run), 5) == [
        "consumer started", "flushed 10 records"]
    assert ingest.log_path(str(run)) == str(tmp_path / "logs" / "worker.log")


def test_an_adopted_spark_daemon_reads_its_last_run_and_never_through_a_link(tmp_path, secret):
    from odh_spawner.spark.adopt import adopted
    from odh_spawner.spark.state import ProcessRecord

    first, second = "---- odh-hub: starting master at 1\nold run\n", "---- odh-hub: starting master at 2\nnew run\n"
    (tmp_path / "master.log").write_text(first + second)
    master = adopted(ProcessRecord("master", 2**22 + 7, 1, 7077, 8080), str(tmp_path))
    assert master.proc.log_offset == len(first) and master.tail() == second.rstrip("\n")
    (tmp_path / "worker-1.log").symlink_to(secret)
    worker = adopted(ProcessRecord("worker-1", 2**22 + 8, 1, 7078, 8081), str(tmp_path))
    assert worker.proc.log_offset == 0 and "not-for-users" not in worker.tail() and worker.exited()
