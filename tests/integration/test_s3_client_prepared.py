"""A notebook server prepares its user's S3 client in the background once it runs, so the bucket browser's first
listing does not pay for importing boto3 and loading S3's models (bench/hub_load measured that first listing at
seconds on a busy machine); `prepare_s3_client = False` leaves it to the first bucket call."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time

import pytest
import requests

from odh_spawner.credentials.rgw import RgwCredentialStore
from odh_spawner.host.ports import free_port

PREPARED = "odh: S3 client prepared in"


@pytest.fixture(scope="module")
def keys(ceph):
    store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key)
    return asyncio.run(store.ensure("s3prep"))


def start_server(tmp_path, keys, *args: str):
    port, token = free_port(), "t-" + os.urandom(8).hex()
    log = tmp_path / f"server-{port}.log"
    env = dict(os.environ, AWS_ACCESS_KEY_ID=keys.access_key, AWS_SECRET_ACCESS_KEY=keys.secret_key,
               S3_ENDPOINT_URL=keys.endpoint)
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--allow-root", "--no-browser", f"--port={port}",
             "--ip=127.0.0.1", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
             "--ServerApp.jpserver_extensions=server_extension=True", *args],
            env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url, headers = f"http://127.0.0.1:{port}/", {"Authorization": f"token {token}"}
    deadline = time.monotonic() + 90
    while True:
        try:
            if requests.get(url + "api/status", headers=headers, timeout=5).ok:
                break
        except requests.RequestException:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
        time.sleep(0.2)
    return proc, url, headers, log


def stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_the_client_is_prepared_before_the_first_listing(tmp_path, keys):
    proc, url, headers, log = start_server(tmp_path, keys)
    try:
        deadline = time.monotonic() + 60
        while PREPARED not in log.read_text():  # no bucket request was made: the server did it by itself
            assert time.monotonic() < deadline and proc.poll() is None, log.read_text()
            time.sleep(0.2)
        r = requests.get(url + "odh/api/buckets", headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        assert "odh-models-s3prep" in {b["name"] for b in r.json()["buckets"]}  # the user's own, made at ensure
        assert log.read_text().count(PREPARED) == 1  # one client, made once
    finally:
        stop(proc)


def test_without_preparation_the_first_call_builds_it(tmp_path, keys):
    proc, url, headers, log = start_server(tmp_path, keys, "--OdhExtensionApp.prepare_s3_client=False")
    try:
        time.sleep(2)  # time a preparation would have had to say so
        assert PREPARED not in log.read_text()
        r = requests.get(url + "odh/api/buckets", headers=headers, timeout=60)
        assert r.status_code == 200, r.text
        assert "odh-models-s3prep" in {b["name"] for b in r.json()["buckets"]}
    finally:
        stop(proc)
