"""1 GiB upload and download through the odh extension (Python client -> notebook server -> RGW) vs. boto3's
own managed transfer (upload_file/download_file, default TransferConfig) of the same file to the same RGW.
Also the notebook server's RSS growth during the transfer. Targets: throughput ratio >= 0.8; RSS <= 64 MiB."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from bench._servers import Platform  # noqa: E402
from tests.integration.test_buckets_scale import RssWatcher  # noqa: E402

GiB = 2**30
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def make_file(path: str) -> None:
    block = os.urandom(8 * 2**20)
    with open(path, "wb") as f:
        for i in range(GiB // len(block)):
            f.write(block[:8] + i.to_bytes(8, "big") + block[16:])


def main() -> None:
    with Platform() as p:
        src = os.path.join(p.tmp.name, "one-gib.bin")
        make_file(src)
        client, s3 = p.server.client(), p.boto3()
        client.create_bucket("bench-ours")
        s3.create_bucket(Bucket="bench-boto3")
        times = {"ours_up": [], "ours_down": [], "boto3_up": [], "boto3_down": []}
        rss = {"up": 0.0, "down": 0.0}
        for _ in range(ROUNDS):
            with RssWatcher(p.server.proc.pid) as w:
                t0 = time.perf_counter()
                client.upload("bench-ours", "f.bin", src, concurrency=8)
                times["ours_up"].append(time.perf_counter() - t0)
            rss["up"] = max(rss["up"], w.growth_mib)
            t0 = time.perf_counter()
            s3.upload_file(src, "bench-boto3", "f.bin")
            times["boto3_up"].append(time.perf_counter() - t0)
            dst = os.path.join(p.tmp.name, "back.bin")
            with RssWatcher(p.server.proc.pid) as w:
                t0 = time.perf_counter()
                client.download("bench-ours", "f.bin", dst)
                times["ours_down"].append(time.perf_counter() - t0)
            rss["down"] = max(rss["down"], w.growth_mib)
            os.remove(dst)
            t0 = time.perf_counter()
            s3.download_file("bench-boto3", "f.bin", dst)
            times["boto3_down"].append(time.perf_counter() - t0)
            os.remove(dst)
    mibs = {k: GiB / 2**20 / median(v) for k, v in times.items()}
    ours = min(mibs["ours_up"] / mibs["boto3_up"], mibs["ours_down"] / mibs["boto3_down"])
    write_result(
        "transfer",
        figure="1 GiB upload and download throughput through the extension vs boto3 upload_file/download_file "
               f"to the same RGW (median of {ROUNDS}); ours/baseline = the worse of the two directions",
        ours=round(ours, 3), baseline=1.0, target=0.8, units="throughput ratio (MiB/s ours / MiB/s boto3)",
        met=ours >= 0.8 and max(rss.values()) <= 64,
        mib_per_s={k: round(v, 1) for k, v in mibs.items()},
        server_rss_growth_mib={k: round(v, 1) for k, v in rss.items()}, rss_target_mib=64,
    )


if __name__ == "__main__":
    main()
