"""Throughput of download_package against curl, from the same nginx, same run.

    .venv/bin/python bench/bench_transfer.py

Environment: PEERDP_BENCH_MIB (file size, default 256; 1024 for the 1 GiB
figure), PEERDP_BENCH_RUNS (default 3, best run of each counts),
PEERDP_BENCH_DIR (where the temp files go, default the system temp dir).

download_package's time includes what curl does not do: hashing every byte,
fsync, and the rename into the store. Target: ratio >= 0.8.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from peerdp.content.manifest import Manifest, ManifestFile
from peerdp.content.objects import ObjectStore
from peerdp.transfer.download import Source, download_package

MIB = 1 << 20
NGINX_CONF = """
{user}
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    default_type application/octet-stream;
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    sendfile on;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_nginx(tmp: Path, root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = tmp / "nginx.conf"
    user = "user root;" if os.geteuid() == 0 else ""
    conf.write_text(NGINX_CONF.format(user=user, tmp=tmp, port=port, root=root))
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    proc = subprocess.Popen(
        [binary, "-p", str(tmp), "-c", str(conf), "-e", str(tmp / "error.log"), "-g", "daemon off;"]
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    proc.terminate()
    raise RuntimeError("nginx did not start")


def write_random_file(path: Path, size_mib: int) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with path.open("wb") as out:
        for i in range(size_mib):
            # Vary each block cheaply so the content is not one repeated MiB.
            chunk = i.to_bytes(8, "little") + block[8:]
            out.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


def time_curl(url: Path | str, out: Path) -> float:
    started = time.perf_counter()
    subprocess.run(["curl", "-sS", "--fail", "-o", str(out), str(url)], check=True)
    elapsed = time.perf_counter() - started
    out.unlink()
    return elapsed


def time_download(manifest: Manifest, base_url: str, store_root: Path) -> float:
    store = ObjectStore(store_root)
    started = time.perf_counter()
    report = download_package(manifest, [Source("nginx", base_url)], store)
    elapsed = time.perf_counter() - started
    assert report.files_downloaded == 1 and report.network_bytes == manifest.total_size
    shutil.rmtree(store_root)
    return elapsed


def main() -> None:
    size_mib = int(os.environ.get("PEERDP_BENCH_MIB", "256"))
    runs = int(os.environ.get("PEERDP_BENCH_RUNS", "3"))
    tmp = Path(tempfile.mkdtemp(prefix="peerdp-bench-", dir=os.environ.get("PEERDP_BENCH_DIR")))
    proc = None
    try:
        root = tmp / "www"
        rel = "content/PS100001/1/files/big.bin"
        sha256 = write_random_file(root / rel, size_mib)
        size = size_mib * MIB
        manifest = Manifest(
            "PS100001", 1, "2024-05-01T12:00:00Z", (ManifestFile("big.bin", size, sha256),)
        )
        proc, base_url = start_nginx(tmp, root)
        url = f"{base_url}/{rel}"
        time_curl(url, tmp / "warm.out")  # page cache warm for both
        curl_times, ours_times = [], []
        for _ in range(runs):
            curl_times.append(time_curl(url, tmp / "curl.out"))
            ours_times.append(time_download(manifest, base_url, tmp / "store"))
        curl_best, ours_best = min(curl_times), min(ours_times)
        print(f"file: {size_mib} MiB, runs: {runs} (best of each)")
        print(f"curl -o file            : {size_mib / curl_best:8.1f} MiB/s ({curl_best:.2f} s)")
        print(f"download_package+verify : {size_mib / ours_best:8.1f} MiB/s ({ours_best:.2f} s)")
        print(f"ratio (ours / curl)     : {curl_best / ours_best:8.2f}  (target >= 0.80)")
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
