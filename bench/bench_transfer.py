"""Benchmark (c): a branch DP's verified pull against curl, from the same peerdp DP.

    .venv/bin/python bench/bench_transfer.py [--mib 1024] [--rounds 5]

Starts a peerdp DP (the content app with os.sendfile, as `peerdp dp serve` mounts it)
holding one file, then alternates, round by round in one run: curl fetching the file
into a file next to the store, and `download_package` (what `peerdp branch serve` runs)
pulling it into a fresh object store. download_package's time includes what curl does
not do: hashing every byte, checking the digest, making the file durable (fsync) and
publishing it into the store. Target: ratio >= 0.8. Prints each round and the medians.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from bench_content import PACKAGE, VERSION, start_dp, write_store

from peerdp.content.manifest import Manifest, ManifestFile
from peerdp.content.objects import ObjectStore
from peerdp.security.signing import SiteKey
from peerdp.transfer.download import Source, download_package


def time_curl(url: str, token: str, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-sS", "--fail", "-H", f"Authorization: Bearer {token}", "-o", str(out), url],
        check=True,
    )
    elapsed = time.perf_counter() - started
    out.unlink()
    return elapsed


def time_pull(manifest: Manifest, base_url: str, token: str, store_root: Path) -> float:
    store = ObjectStore(store_root)
    started = time.perf_counter()
    report = download_package(
        manifest, [Source("dp", base_url)], store, token_for=lambda _source: token
    )
    elapsed = time.perf_counter() - started
    assert report.files_downloaded == 1 and report.network_bytes == manifest.total_size
    shutil.rmtree(store_root)
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--tmp", default=None, help="where the store and the copies go")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="peerdp-bench-", dir=opts.tmp))
    dp = None
    try:
        files = write_store(tmp / "dp", opts.mib, 1)
        sha256, size = files["big.bin"]
        manifest = Manifest(
            PACKAGE, VERSION, "2024-05-01T12:00:00Z", (ManifestFile("big.bin", size, sha256),)
        )
        key = SiteKey.generate()
        token = key.access_token(PACKAGE, VERSION, "bench", ttl_s=24 * 3600)
        dp, port = start_dp(tmp / "dp", key.public_key_b64, 1024, "zerocopy")
        base = f"http://127.0.0.1:{port}"
        url = f"{base}/content/{PACKAGE}/{VERSION}/files/big.bin"
        time_curl(url, token, tmp / "warm.out")  # the DP's page cache, warm for both
        curl_s, pull_s = [], []
        print(f"file: {opts.mib} MiB, load average {os.getloadavg()[0]:.1f}")
        for n in range(opts.rounds):
            curl_s.append(time_curl(url, token, tmp / "curl.out"))
            pull_s.append(time_pull(manifest, base, token, tmp / "store"))
            ratio = curl_s[-1] / pull_s[-1]
            print(
                f"round {n + 1}: curl {opts.mib / curl_s[-1]:7.1f} MiB/s, "
                f"pull {opts.mib / pull_s[-1]:7.1f} MiB/s, ratio {ratio:.2f}"
            )
        curl_m, pull_m = statistics.median(curl_s), statistics.median(pull_s)
        print(f"median curl -o file              : {opts.mib / curl_m:7.1f} MiB/s")
        print(f"median download_package (verify) : {opts.mib / pull_m:7.1f} MiB/s")
        print(f"ratio of medians (pull / curl)   : {curl_m / pull_m:7.2f}  (target >= 0.80)")
    finally:
        if dp is not None:
            dp.terminate()
            dp.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
