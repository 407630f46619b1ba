"""Scale through the real API: paging a 100,000-object bucket; 1 GiB up and down with bounded server memory."""

import hashlib
import os
import threading
import time

import psutil
import pytest

from odh_spawner.credentials import rgw_uid
from tests.support.bulk import bulk_create

N_OBJECTS = 100_000
GiB = 2**30


@pytest.fixture(scope="module")
def big_bucket(user_server, ceph):
    client = user_server("alice").client()
    client.create_bucket("alice-big")
    t0 = time.monotonic()
    keys = bulk_create(ceph, rgw_uid("alice"), "alice-big", N_OBJECTS)
    print(f"created {N_OBJECTS} objects in {time.monotonic() - t0:.0f}s")
    return sorted(keys)


def test_paging_through_100k_objects_one_page_at_a_time(big_bucket, user_server):
    client = user_server("alice").client()
    seen, token, pages, slowest = [], None, 0, 0.0
    while True:
        t0 = time.perf_counter()
        page = client.list_page("alice-big", delimiter="", page_size=1000, token=token)
        slowest = max(slowest, time.perf_counter() - t0)
        assert len(page.objects) <= 1000 and not page.folders
        seen += [o["key"] for o in page.objects]
        pages += 1
        if not page.next_token:
            break
        token = page.next_token
    assert pages == N_OBJECTS // 1000
    assert seen == big_bucket  # every key once, in order
    assert all(o["path"].startswith("s3://alice-big/") for o in page.objects)
    print(f"{pages} pages, slowest {slowest * 1000:.0f} ms")


def test_folders_and_small_pages(big_bucket, user_server):
    client = user_server("alice").client()
    top = client.list_page("alice-big")
    assert [f["name"] for f in top.folders] == [f"dir{i}" for i in range(10)] and top.objects == []
    page = client.list_page("alice-big", prefix="dir3/", page_size=25)
    assert len(page.objects) == 25 and page.next_token
    assert page.objects[0]["name"] == "obj-000003.txt" and page.objects[0]["path"] == "s3://alice-big/dir3/obj-000003.txt"
    more = client.list_page("alice-big", prefix="dir3/", page_size=25, token=page.next_token)
    assert more.objects[0]["key"] > page.objects[-1]["key"]


class RssWatcher:
    """Samples a process's RSS in a thread; reports the peak growth over the starting value."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.start_rss = self.proc.memory_info().rss
        self.peak = self.start_rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self.proc.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def growth_mib(self) -> float:
        return (self.peak - self.start_rss) / 2**20


@pytest.fixture(scope="module")
def gib_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("gib") / "one-gib.bin"
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        block = os.urandom(8 * 2**20)
        for i in range(GiB // len(block)):
            chunk = block[:8] + i.to_bytes(8, "big") + block[16:]  # every block differs
            f.write(chunk)
            digest.update(chunk)
    yield str(path), digest.hexdigest()
    os.remove(path)


def test_one_gib_upload_and_download_with_bounded_server_memory(gib_file, user_server, tmp_path):
    path, sha = gib_file
    server = user_server("alice")
    client = server.client()
    if "alice-transfer" not in [b["name"] for b in client.list_buckets()]:
        client.create_bucket("alice-transfer")
    progress = []
    with RssWatcher(server.pid) as up:
        t0 = time.perf_counter()
        obj = client.upload("alice-transfer", "data/one-gib.bin", path, progress=lambda d, t: progress.append(d))
        up_s = time.perf_counter() - t0
    assert obj["size"] == GiB and obj["path"] == "s3://alice-transfer/data/one-gib.bin"
    assert progress[-1] == GiB and progress == sorted(progress)
    out = tmp_path / "back.bin"
    with RssWatcher(server.pid) as down:
        t0 = time.perf_counter()
        assert client.download("alice-transfer", "data/one-gib.bin", str(out)) == GiB
        down_s = time.perf_counter() - t0
    digest = hashlib.sha256()
    with open(out, "rb") as f:
        for chunk in iter(lambda: f.read(8 * 2**20), b""):
            digest.update(chunk)
    assert digest.hexdigest() == sha
    print(f"upload {GiB / up_s / 2**20:.0f} MiB/s (+{up.growth_mib:.0f} MiB RSS), "
          f"download {GiB / down_s / 2**20:.0f} MiB/s (+{down.growth_mib:.0f} MiB RSS)")
    assert up.growth_mib <= 96, f"server RSS grew {up.growth_mib:.0f} MiB during upload"
    assert down.growth_mib <= 64, f"server RSS grew {down.growth_mib:.0f} MiB during download"
    client.delete("alice-transfer", "data/one-gib.bin")


def test_resume_an_interrupted_upload(user_server):
    """Parts already sent are listed by the server; the client sends only the rest, then completes."""
    client = user_server("alice").client()
    if "alice-transfer" not in [b["name"] for b in client.list_buckets()]:
        client.create_bucket("alice-transfer")
    data = os.urandom(20 * 2**20)
    up = client._json("POST", client._url("alice-transfer", "uploads"), json={"key": "resumed.bin", "size": len(data)})
    ps, uid = up["part_size"], up["upload_id"]
    first = client._json("PUT", client._url("alice-transfer", "uploads", uid, "parts", "1"), params={"key": "resumed.bin"},
                         data=data[:ps])
    # ... connection lost; later:
    have = {p["part_number"]: p["etag"] for p in client.upload_parts("alice-transfer", "resumed.bin", uid)}
    assert have == {1: first["etag"]}
    parts = [{"part_number": 1, "etag": have[1]}]
    for n in range(2, up["parts"] + 1):
        d = client._json("PUT", client._url("alice-transfer", "uploads", uid, "parts", str(n)),
                         params={"key": "resumed.bin"}, data=data[(n - 1) * ps:n * ps])
        parts.append({"part_number": n, "etag": d["etag"]})
    # completing with a part missing is refused with what is missing
    from server_extension.client import OdhApiError

    with pytest.raises(OdhApiError, match="Received"):
        client._json("POST", client._url("alice-transfer", "uploads", uid, "complete"), params={"key": "resumed.bin"},
                     json={"parts": parts[:-1]})
    client._json("POST", client._url("alice-transfer", "uploads", uid, "complete"), params={"key": "resumed.bin"},
                 json={"parts": parts})
    assert client.get_bytes("alice-transfer", "resumed.bin") == data
    # a corrupted part (Content-MD5 mismatch) is refused
    up2 = client._json("POST", client._url("alice-transfer", "uploads"), json={"key": "bad.bin", "size": 10})
    with pytest.raises(OdhApiError, match="Content-MD5"):
        client._json("PUT", client._url("alice-transfer", "uploads", up2["upload_id"], "parts", "1"),
                     params={"key": "bad.bin"}, data=b"0123456789", headers={"Content-MD5": "AAAAAAAAAAAAAAAAAAAAAA=="})
    client.abort_upload("alice-transfer", "bad.bin", up2["upload_id"])
