"""1 GiB upload and download through the odh extension (Python client -> notebook server -> RGW) vs. boto3's
own managed transfer (upload_file/download_file, default TransferConfig) of the same file to the same RGW, in
the same run. Also the notebook server's RSS growth during our transfers.

Writes bench/results/transfer.json: the upload at the top level (ours = extension upload, baseline = boto3
upload_file) and both directions under "directions" (download: ours = extension download, baseline = boto3
download_file), each with both throughputs measured here (MiB/s, median of the rounds); ratio = ours / baseline. Targets: ratio >= 0.8; server RSS growth <= 64 MiB. Within a round the two paths
alternate which goes first, so neither always meets a warmer (or busier) RGW."""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from bench._servers import Platform  # noqa: E402
from tests.integration.test_buckets_scale import RssWatcher  # noqa: E402

GiB = 2**30
MiB = 2**20
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
TARGET_RATIO = 0.8
RSS_TARGET_MIB = 64


def make_file(path: str) -> None:
    block = os.urandom(8 * MiB)
    with open(path, "wb") as f:
        for i in range(GiB // len(block)):
            f.write(block[:8] + i.to_bytes(8, "big") + block[16:])


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    seconds = {"upload": {"ours": [], "baseline": []}, "download": {"ours": [], "baseline": []}}
    rss = {"upload": 0.0, "download": 0.0}
    with Platform() as p:
        src = os.path.join(p.tmp.name, "one-gib.bin")
        dst = os.path.join(p.tmp.name, "back.bin")
        make_file(src)
        client, s3 = p.server.client(), p.boto3()
        client.create_bucket("bench-ours")
        s3.create_bucket(Bucket="bench-boto3")
        server_pid = p.server.proc.pid

        def ours(direction: str):
            def run():
                with RssWatcher(server_pid) as w:
                    if direction == "upload":
                        client.upload("bench-ours", "f.bin", src, concurrency=8)
                    else:
                        client.download("bench-ours", "f.bin", dst)
                rss[direction] = max(rss[direction], w.growth_mib)
            return run

        def baseline(direction: str):
            if direction == "upload":
                return lambda: s3.upload_file(src, "bench-boto3", "f.bin")
            return lambda: s3.download_file("bench-boto3", "f.bin", dst)

        for i in range(ROUNDS):
            for direction in ("upload", "download"):
                order = [("ours", ours), ("baseline", baseline)]
                for who, make in (order if i % 2 == 0 else order[::-1]):
                    seconds[direction][who].append(timed(make(direction)))
                    if os.path.exists(dst):
                        os.remove(dst)
    results = {}
    for direction, path in (("upload", "extension upload (client -> notebook server -> RGW)"),
                            ("download", "extension download (RGW -> notebook server -> client)")):
        ours_mibs = round(GiB / MiB / median(seconds[direction]["ours"]), 1)
        base_mibs = round(GiB / MiB / median(seconds[direction]["baseline"]), 1)
        results[direction] = {
            "figure": f"1 GiB {direction} throughput: {path} vs boto3 "
                      f"{'upload_file' if direction == 'upload' else 'download_file'} to the same RGW, "
                      f"median of {ROUNDS} rounds",
            "ours": ours_mibs, "baseline": base_mibs,
            "ratio": round(ours_mibs / base_mibs, 4), "target": TARGET_RATIO,
            "met": ours_mibs / base_mibs >= TARGET_RATIO and rss[direction] <= RSS_TARGET_MIB,
            "samples_mib_per_s": {who: [round(GiB / MiB / s, 1) for s in times]
                                  for who, times in seconds[direction].items()},
            "server_rss_growth_mib": round(rss[direction], 1),
        }
    # the headline is the upload (the direction whose bytes pass through the server and boto3's signing);
    # both directions, measured in this one run, are under "directions"
    up = results["upload"]
    write_result(
        "transfer", figure=up["figure"], ours=up["ours"], baseline=up["baseline"], target=TARGET_RATIO,
        units="MiB/s (ratio = ours / baseline, target: ratio >= 0.8 in each direction)",
        met=all(r["met"] for r in results.values()), directions=results, rss_target_mib=RSS_TARGET_MIB,
    )

if __name__ == "__main__":
    main()
