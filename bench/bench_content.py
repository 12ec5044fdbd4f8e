"""Benchmark: the DP content server against nginx serving the same files.

Run by hand (not part of the tests)::

    .venv/bin/python bench/bench_content.py            # full run, ~1.2 GiB of temp files
    .venv/bin/python bench/bench_content.py --big-mib 256 --repeat 1   # quick look
    .venv/bin/python bench/bench_content.py --tls      # both over HTTPS, same certificate

(a) one large file to curl: throughput ours / nginx         (target >= 0.8)
(b) N concurrent ranged downloads of a mid-size file:
    aggregate throughput ours / nginx                       (target >= 0.7)
(d) peak RSS (VmHWM) of the DP process during (b)          (target <= 150 MiB)

Both servers run on loopback, single process / single worker each, and serve
the very same object files (nginx with sendfile on). Runs alternate between
the two servers so background load hits both alike. Temp files are deleted.

With --tls both serve HTTPS with the same certificate (a throwaway CA made here; curl
trusts it). The DP then streams bodies (uvicorn's httptools with its TLS, as `peerdp dp
serve --tls-cert` does: sendfile cannot encrypt) and nginx encrypts in user space too
(sendfile is off for TLS without kernel TLS).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "PS100001"
VERSION = 1
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listening on port {port}")


def make_object(objects: Path, name: str, size: int) -> tuple[str, str, int]:
    """Write `size` random bytes as a content-addressed object; (name, sha, size)."""
    tmp = objects / f".{name}.tmp"
    digest = hashlib.sha256()
    block = os.urandom(16 * MIB)  # repeated blocks: cheap to make, still incompressible
    with tmp.open("wb") as fh:
        left = size
        while left:
            piece = block[: min(left, len(block))]
            fh.write(piece)
            digest.update(piece)
            left -= len(piece)
    sha = digest.hexdigest()
    final = objects / sha[:2] / sha
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp.rename(final)
    return name, sha, size


def write_store(root: Path, big_mib: int, mid_mib: int) -> dict[str, tuple[str, int]]:
    objects = root / "objects"
    objects.mkdir(parents=True)
    files = [make_object(objects, "big.bin", big_mib * MIB)]
    files.append(make_object(objects, "mid.bin", mid_mib * MIB))
    manifest = {
        "package_id": PACKAGE,
        "source_version": VERSION,
        "created_at": "2024-05-01T12:00:00Z",
        "files": [{"path": n, "size": s, "sha256": h} for n, h, s in files],
    }
    (root / "manifests" / PACKAGE).mkdir(parents=True)
    (root / "manifests" / PACKAGE / f"{VERSION}.json").write_text(json.dumps(manifest))
    return {n: (h, s) for n, h, s in files}


NGINX_TLS = """
        ssl_certificate {cert};
        ssl_certificate_key {key};"""

NGINX_CONF = """\
worker_processes 1;
daemon off;
user root;
pid {tmp}/nginx.pid;
error_log {tmp}/nginx-error.log warn;
events {{ worker_connections 1024; }}
http {{
    sendfile on;
    tcp_nopush on;
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path {tmp}/nginx-body;
    proxy_temp_path {tmp}/nginx-proxy;
    fastcgi_temp_path {tmp}/nginx-fastcgi;
    uwsgi_temp_path {tmp}/nginx-uwsgi;
    scgi_temp_path {tmp}/nginx-scgi;
    server {{
        listen 127.0.0.1:{port}{ssl};{tls}
        root {objects};
        max_ranges 64;
    }}
}}
"""


def start_nginx(
    tmp: Path, objects: Path, tls: tuple[Path, Path] | None
) -> tuple[subprocess.Popen[bytes], int, int]:
    """nginx master process, its port, and the pid of its one worker (which serves);
    over HTTPS with `tls` (certificate and key files)."""
    port = free_port()
    conf = tmp / "nginx.conf"
    ssl = " ssl" if tls else ""
    tls_lines = NGINX_TLS.format(cert=tls[0], key=tls[1]) if tls else ""
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, objects=objects, ssl=ssl, tls=tls_lines))
    proc = subprocess.Popen(["nginx", "-c", str(conf), "-p", str(tmp)])
    wait_port(port)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
    return proc, port, int(children[0])


def start_dp(
    root: Path, public_key: str, chunk_kib: int, mode: str, tls: tuple[Path, Path] | None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    args = [sys.executable, __file__, "--serve", str(root), str(port), public_key, str(chunk_kib)]
    args.append(mode)
    env = dict(os.environ)
    if tls:
        env.update(BENCH_TLS_CERT=str(tls[0]), BENCH_TLS_KEY=str(tls[1]))
    proc = subprocess.Popen(args, env=env)
    wait_port(port)
    return proc, port


def serve(root: str, port: str, public_key: str, chunk_kib: str, mode: str) -> None:
    """The DP side: the content app alone, as `peerdp dp serve` would mount it.

    mode "zerocopy": ZeroCopyHttpToolsProtocol (os.sendfile); "stream": plain
    uvicorn httptools, bodies read and sent in chunks. With BENCH_TLS_CERT/KEY set it
    serves HTTPS the way `peerdp dp serve --tls-cert` does (dp.zerocopy.server_config):
    httptools streaming, whatever the mode.
    """
    import uvicorn

    from peerdp.dp.routes import ContentOptions, create_content_app
    from peerdp.dp.zerocopy import ZeroCopyHttpToolsProtocol
    from peerdp.security.signing import SitePublicKey

    # The test-only directory source lives with the tests, at the repository root.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests.dp.directory_source import DirectoryContentSource

    options = ContentOptions(
        max_transfers=None,  # the benchmark measures throughput, not the limiter
        chunk_size=int(chunk_kib) * 1024,
    )
    app = create_content_app(
        DirectoryContentSource(Path(root)), SitePublicKey.from_b64(public_key), options
    )
    http = ZeroCopyHttpToolsProtocol if mode == "zerocopy" else "httptools"
    tls = {}
    if os.environ.get("BENCH_TLS_CERT"):
        http = "httptools"
        tls = {
            "ssl_certfile": os.environ["BENCH_TLS_CERT"],
            "ssl_keyfile": os.environ["BENCH_TLS_KEY"],
        }
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(port),
        loop="uvloop",
        http=http,
        log_level="warning",
        **tls,
    )


@dataclass
class Target:
    name: str
    url_of: dict[str, str]  # file name -> URL
    headers: list[str]
    pid: int
    curl_options: tuple[str, ...] = ()  # --cacert FILE over HTTPS


def curl_speed(target: Target, name: str) -> float:
    """Bytes per second of one whole-file download to /dev/null."""
    args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{speed_download}", *target.curl_options]
    for h in target.headers:
        args += ["-H", h]
    out = subprocess.run([*args, target.url_of[name]], capture_output=True, text=True, check=True)
    return float(out.stdout)


def concurrent_ranges(size: int, count: int, seed: int = 7) -> list[tuple[int, int] | None]:
    """Every fifth download is whole, the others a random range of 10-60% of the file."""
    rnd = random.Random(seed)
    out: list[tuple[int, int] | None] = []
    for i in range(count):
        if i % 5 == 0:
            out.append(None)
            continue
        length = int(size * rnd.uniform(0.1, 0.6))
        start = rnd.randrange(0, size - length)
        out.append((start, start + length - 1))
    return out


def run_concurrent(target: Target, name: str, ranges: list[tuple[int, int] | None]) -> float:
    """Aggregate bytes per second of all downloads started at once (curl processes)."""
    procs = []
    start = time.perf_counter()
    for rng in ranges:
        args = ["curl", "-sS", "-o", "/dev/null", "-w", "%{size_download} %{http_code}"]
        args += target.curl_options
        for h in target.headers:
            args += ["-H", h]
        if rng is not None:
            args += ["-r", f"{rng[0]}-{rng[1]}"]
        procs.append(subprocess.Popen([*args, target.url_of[name]], stdout=subprocess.PIPE))
    total = 0
    for proc, rng in zip(procs, ranges, strict=True):
        out, _ = proc.communicate()
        size, code = out.decode().split()
        assert code == ("200" if rng is None else "206"), (target.name, code)
        total += int(size)
    return total / (time.perf_counter() - start)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def vm_hwm_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM")


def reset_peak_rss(pid: int) -> None:
    # Writing 5 to clear_refs resets VmHWM to the current RSS (Linux >= 4.0).
    Path(f"/proc/{pid}/clear_refs").write_text("5")


def measure(
    opts: argparse.Namespace,
    targets: list[Target],
    files: dict[str, tuple[str, int]],
    report: dict[str, object],
) -> None:
    """(a), (b) and (d), alternating targets within each repetition."""
    # Server CPU seconds per GiB sent: unlike MiB/s, barely moved by other
    # load on the machine, so it shows the cost of each body path honestly.
    names = [t.name for t in targets]
    speeds: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, float] = dict.fromkeys(names, 0.0)
    for _ in range(opts.repeat):
        for t in targets:
            before = cpu_seconds(t.pid)
            speeds[t.name].append(curl_speed(t, "big.bin"))
            cpu[t.name] += cpu_seconds(t.pid) - before
    a = {n: statistics.median(v) / MIB for n, v in speeds.items()}
    report["a_single_MiB_s"] = a
    report["a_runs_MiB_s"] = {n: [round(x / MIB) for x in v] for n, v in speeds.items()}
    report["a_ratio"] = {n: a[n] / a["nginx"] for n in names[1:]}
    gib = opts.repeat * files["big.bin"][1] / (1024 * MIB)
    report["a_server_cpu_s_per_GiB"] = {n: c / gib for n, c in cpu.items()}
    print(f"(a) one {opts.big_mib} MiB file, MiB/s: {a}", flush=True)
    print(f"    server CPU s/GiB: {report['a_server_cpu_s_per_GiB']}", flush=True)

    ranges = concurrent_ranges(files["mid.bin"][1], opts.concurrency)
    for t in targets:  # VmHWM from here on covers (b) only
        reset_peak_rss(t.pid)
    agg: dict[str, list[float]] = {n: [] for n in names}
    cpu = dict.fromkeys(names, 0.0)
    for _ in range(opts.repeat):
        for t in targets:
            before = cpu_seconds(t.pid)
            agg[t.name].append(run_concurrent(t, "mid.bin", ranges))
            cpu[t.name] += cpu_seconds(t.pid) - before
    b = {n: statistics.median(v) / MIB for n, v in agg.items()}
    report["b_concurrent_MiB_s"] = b
    report["b_runs_MiB_s"] = {n: [round(x / MIB) for x in v] for n, v in agg.items()}
    report["b_ratio"] = {n: b[n] / b["nginx"] for n in names[1:]}
    mid = files["mid.bin"][1]
    gib = opts.repeat * sum(mid if r is None else r[1] - r[0] + 1 for r in ranges) / (1024 * MIB)
    report["b_server_cpu_s_per_GiB"] = {n: c / gib for n, c in cpu.items()}
    print(f"    server CPU s/GiB: {report['b_server_cpu_s_per_GiB']}", flush=True)
    report["d_peak_rss_MiB_during_b"] = {t.name: vm_hwm_kib(t.pid) / 1024 for t in targets}
    print(f"(b) {opts.concurrency} concurrent, aggregate MiB/s: {b}", flush=True)
    print(f"(d) peak RSS during (b), MiB: {report['d_peak_rss_MiB_during_b']}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--big-mib", type=int, default=1024)
    parser.add_argument("--mid-mib", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--chunk-kib",
        type=int,
        default=None,
        help="the DP's body piece (default: as the DP serves, 1024 plain, 512 under --tls)",
    )
    parser.add_argument("--tmp", default=None, help="where to put the temp files")
    parser.add_argument(
        "--tls", action="store_true", help="both servers over HTTPS, same certificate"
    )
    parser.add_argument(
        "--modes", default="zerocopy,stream", help="DP body paths to compare with nginx"
    )
    opts = parser.parse_args()

    from peerdp.dp.http.response import DEFAULT_CHUNK_SIZE, TLS_CHUNK_SIZE
    from peerdp.security.signing import SiteKey

    if opts.chunk_kib is None:  # as `dp serve` and `branch serve` serve
        opts.chunk_kib = (TLS_CHUNK_SIZE if opts.tls else DEFAULT_CHUNK_SIZE) // 1024

    tmp = Path(tempfile.mkdtemp(prefix="peerdp-bench-", dir=opts.tmp))
    procs: list[subprocess.Popen[bytes]] = []
    try:
        root = tmp / "store"
        files = write_store(root, opts.big_mib, opts.mid_mib)
        for h, _ in files.values():  # warm the page cache for both servers alike
            with (root / "objects" / h[:2] / h).open("rb") as fh:
                while fh.read(16 * MIB):
                    pass
        key = SiteKey.generate()
        token = key.access_token(PACKAGE, VERSION, "bench", ttl_s=24 * 3600)
        tls, curl_options, scheme = None, (), "http"
        if opts.tls:
            sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
            from tests.helpers.tls import TestCA

            ca = TestCA.create(tmp / "ca")
            server = ca.server(tmp / "ca", "bench")
            tls, curl_options, scheme = (
                (server.cert, server.key),
                ("--cacert", str(ca.ca_file)),
                "https",
            )
            # sendfile cannot encrypt: under TLS the DP has one body path (streaming).
            opts.modes = "stream"
        nginx, ng_port, ng_worker = start_nginx(tmp, root / "objects", tls)
        procs.append(nginx)
        ng_base = f"{scheme}://127.0.0.1:{ng_port}"
        targets = [
            Target(
                "nginx",
                {n: f"{ng_base}/{h[:2]}/{h}" for n, (h, _) in files.items()},
                [],
                ng_worker,
                curl_options,
            )
        ]
        for mode in opts.modes.split(","):
            dp, dp_port = start_dp(root, key.public_key_b64, opts.chunk_kib, mode, tls)
            procs.append(dp)
            base = f"{scheme}://127.0.0.1:{dp_port}/content/{PACKAGE}/{VERSION}/files"
            targets.append(
                Target(
                    f"peerdp-{mode}",
                    {n: f"{base}/{n}" for n in files},
                    [f"Authorization: Bearer {token}"],
                    dp.pid,
                    curl_options,
                )
            )
        report: dict[str, object] = {
            "big_mib": opts.big_mib,
            "mid_mib": opts.mid_mib,
            "concurrency": opts.concurrency,
            "repeat": opts.repeat,
            "chunk_kib": opts.chunk_kib,
            "tls": opts.tls,
            "cpus": os.cpu_count(),
            "loadavg_start": os.getloadavg(),
        }
        measure(opts, targets, files, report)
        report["loadavg_end"] = os.getloadavg()
        print(json.dumps(report, indent=2))
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(timeout=10)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        serve(*sys.argv[2:7])
    else:
        main()
