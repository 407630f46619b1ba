"""First page (1,000 keys) of a 100,000-object prefix through the odh API vs a raw boto3 list_objects_v2 of the
same page (target ratio <= 1.3), the same first page at 1,000 objects (scaling target <= 1.5x), and
jupyterlab-s3-browser 0.12's listing of the same prefix (installed in its own venv under bench/.venv-s3browser).
"""

import os
import subprocess
import sys
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import HERE, median, write_result  # noqa: E402
from bench._servers import Platform  # noqa: E402
from odh_spawner.credentials import rgw_uid  # noqa: E402
from odh_spawner.host.ports import free_port  # noqa: E402
from tests.support.bulk import bulk_create  # noqa: E402

N_BIG, N_SMALL, REPEAT = 100_000, 1_000, 15
S3BROWSER = "jupyterlab-s3-browser==0.12.0"
S3B_VENV = os.path.join(HERE, ".venv-s3browser")


def timed(fn, repeat=REPEAT) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return median(samples) * 1000


def s3browser_env() -> str:
    py = os.path.join(S3B_VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", S3B_VENV], check=True)
    if subprocess.run([py, "-c", "import jupyterlab_s3_browser"], capture_output=True).returncode != 0:
        subprocess.run([py, "-m", "pip", "install", "-q", S3BROWSER], check=True)
    return py


def s3browser_listing_ms(p, bucket: str, prefix: str) -> tuple[float, int]:
    py = s3browser_env()
    port, token = free_port(), "s3b-" + os.urandom(6).hex()
    env = dict(os.environ, JUPYTERLAB_S3_ENDPOINT=p.ceph.endpoint, JUPYTERLAB_S3_ACCESS_KEY_ID=p.creds.access_key,
               JUPYTERLAB_S3_SECRET_ACCESS_KEY=p.creds.secret_key, AWS_REQUEST_CHECKSUM_CALCULATION="WHEN_REQUIRED",
               AWS_RESPONSE_CHECKSUM_VALIDATION="WHEN_REQUIRED")
    env.pop("JUPYTER_CONFIG_DIR", None)
    log = open(os.path.join(p.tmp.name, "s3browser.log"), "wb")
    proc = subprocess.Popen([py, "-m", "jupyter", "server", "--allow-root", "--no-browser", f"--port={port}",
                             "--ip=127.0.0.1", f"--IdentityProvider.token={token}",
                             "--ServerApp.jpserver_extensions=jupyterlab_s3_browser=True"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}/jupyterlab_s3_browser/files/{bucket}/{prefix}"
        headers = {"Authorization": f"token {token}"}
        for _ in range(300):
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/status", headers=headers, timeout=2).ok:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.2)
        listing = requests.get(url, headers=headers, timeout=600).json()
        if not isinstance(listing, list):
            raise RuntimeError(f"jupyterlab-s3-browser answered {str(listing)[:200]}")
        count = len(listing)
        return timed(lambda: requests.get(url, headers=headers, timeout=600).json(), repeat=3), count
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


def main() -> None:
    with Platform() as p:
        client, s3 = p.server.client(), p.boto3()
        client.create_bucket("big")
        client.create_bucket("small")
        t0 = time.monotonic()
        bulk_create(p.ceph, rgw_uid("bench"), "big", N_BIG, folders=1)  # all under dir0/
        bulk_create(p.ceph, rgw_uid("bench"), "small", N_SMALL, folders=1)
        print(f"created {N_BIG + N_SMALL} objects in {time.monotonic() - t0:.0f}s", flush=True)

        def ours(bucket):
            page = client.list_page(bucket, prefix="dir0/", page_size=1000)
            assert len(page.objects) == 1000
        ours_big = timed(lambda: ours("big"))
        boto3_big = timed(lambda: s3.list_objects_v2(Bucket="big", Prefix="dir0/", Delimiter="/", MaxKeys=1000))
        ours_small = timed(lambda: ours("small"))
        s3b_ms, s3b_count = s3browser_listing_ms(p, "big", "dir0/")
    write_result(
        "list_first_page",
        figure="first page (1,000 keys) of a 100,000-object prefix: odh API (client -> notebook server -> RGW) "
               f"vs raw boto3 list_objects_v2 of the same page; median of {REPEAT}",
        ours=ours_big, baseline=boto3_big, target=1.3, units="ms (ratio ours/boto3)",
        met=ours_big / boto3_big <= 1.3 and ours_big / ours_small <= 1.5,
        first_page_ms_at_1000_objects=round(ours_small, 2),
        scaling_ratio_100k_vs_1k=round(ours_big / ours_small, 3), scaling_target=1.5,
        jupyterlab_s3_browser={"version": S3BROWSER, "listing_ms": round(s3b_ms, 1), "objects_returned": s3b_count,
                               "ratio_vs_our_first_page": round(s3b_ms / ours_big, 1),
                               "note": "lists the whole prefix in one call (s3fs listdir), so it returns all objects"},
    )


if __name__ == "__main__":
    main()
