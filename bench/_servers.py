"""Benchmark plumbing: a real Ceph RGW and a Jupyter server with the odh extension, for one user's keys."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import requests

from odh_spawner.localplatform.ceph import CephCluster
from odh_spawner.host.ports import free_port


def terminate(proc: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM a child we started, SIGKILL it if it has not exited within `timeout`."""
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


class NotebookServer:
    """`jupyter server` with the odh extension, holding the given S3 keys in its environment."""

    def __init__(self, endpoint: str, access_key: str, secret_key: str, workdir: str):
        self.port = free_port()
        self.token = "bench-" + os.urandom(8).hex()
        self.url = f"http://127.0.0.1:{self.port}/"
        env = dict(os.environ, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key, S3_ENDPOINT_URL=endpoint,
                   AWS_REQUEST_CHECKSUM_CALCULATION="WHEN_REQUIRED", AWS_RESPONSE_CHECKSUM_VALIDATION="WHEN_REQUIRED")
        self.log = open(os.path.join(workdir, "server.log"), "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "server", "--allow-root", "--no-browser", f"--port={self.port}",
             "--ip=127.0.0.1", f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={workdir}",
             "--ServerApp.jpserver_extensions=server_extension=True"],
            env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(self.url + "api/status", headers=self.headers, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError("jupyter server did not start")
            time.sleep(0.2)

    @property
    def headers(self) -> dict:
        return {"Authorization": f"token {self.token}"}

    def client(self):
        from server_extension.client import BucketClient

        return BucketClient(self.url, self.token)

    def stop(self):
        terminate(self.proc)
        self.log.close()


class Platform:
    """Ceph + one RGW user + a notebook server with that user's keys."""

    def __enter__(self):
        from odh_spawner.credentials.rgw import RgwCredentialStore
        import asyncio

        self.tmp = tempfile.TemporaryDirectory()
        self.ceph = CephCluster(os.path.join(self.tmp.name, "ceph")).start()
        store = RgwCredentialStore(self.ceph.endpoint, self.ceph.admin.access_key, self.ceph.admin.secret_key)
        self.creds = asyncio.run(store.ensure("bench"))
        self.server = NotebookServer(self.ceph.endpoint, self.creds.access_key, self.creds.secret_key, self.tmp.name)
        return self

    def boto3(self):
        import boto3
        from botocore.config import Config

        return boto3.client("s3", endpoint_url=self.ceph.endpoint, aws_access_key_id=self.creds.access_key,
                            aws_secret_access_key=self.creds.secret_key, region_name="us-east-1",
                            config=Config(s3={"addressing_style": "path"}, max_pool_connections=32,
                                          request_checksum_calculation="when_required",
                                          response_checksum_validation="when_required"))

    def __exit__(self, *exc):
        self.server.stop()
        self.ceph.stop()
        self.tmp.cleanup()
