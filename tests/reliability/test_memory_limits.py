"""Defect 4 of issue 11: gzip bombs, and replicas without the memory limit of their descriptor.

A 388 KB upload was decompressed to 3.36 GB before it was refused. Now a reader decompresses at
most a quarter of the memory the process may use (``EAS_MEMORY_LIMIT_BYTES``, rlimits, cgroup)
and refuses the rest with a message; a replica started by the embedded runtime runs under its
Service's ``limits.memory`` (RLIMIT_DATA), so an allocation beyond it fails that request only.

The bombs are built streaming (never held in memory) and read in a subprocess whose limit is
lowered to 256 MiB (64 MiB per input), so the peak resident size of the reader can be compared
with what the bomb would decompress to.
"""
from __future__ import annotations

import gzip
import json
import os
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve, read_lightcurve, write_lightcurve
from eas_runtime.lightcurve._common import load_bytes
from eas_runtime.memory import MemoryLimit, read_memory_limit
from eas_runtime.serving import LocalServing
from eas_runtime.settings import PROJECT_ROOT, Settings

MiB = 1 << 20
LIMIT = 256 * MiB                 # the lowered memory limit of the reading subprocess
BOMB = 1024 * MiB                 # what each bomb decompresses to: 16 times the input limit
ALLOCATE_SOURCE = "tests/reliability/fixtures/allocate/main.py"


def _write_bomb(path: Path, head: bytes, filler: bytes, size: int, *, members: bool) -> None:
    """``head`` then ``filler`` repeated to about ``size`` bytes, gzipped without holding it.

    ``members``: one gzip member of 16 MiB of filler, compressed once and written again and
    again (a gzip file may hold many members); the last member's trailer declares 16 MiB, so the
    reader cannot refuse the stream from the declaration and must stop while decompressing.
    Otherwise one member (written in 16 MiB pieces at the fastest level) whose trailer declares
    the whole size."""
    piece = filler * (16 * MiB // len(filler))
    with open(path, "wb") as raw:
        if members:
            raw.write(gzip.compress(head, mtime=0))
            member = gzip.compress(piece, compresslevel=9, mtime=0)
            for _ in range(size // len(piece)):
                raw.write(member)
            return
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as out:
            out.write(head)
            for _ in range(size // len(piece)):
                out.write(piece)


def _fits_head(rows: int) -> bytes:
    """The header blocks of a product FITS whose LIGHTCURVE table holds ``rows`` rows."""
    cards = [("SIMPLE", "T"), ("BITPIX", "8"), ("NAXIS", "0"), ("EXTEND", "T"), ("EASFMT", "1")]
    table = [("XTENSION", "'BINTABLE'"), ("BITPIX", "8"), ("NAXIS", "2"), ("NAXIS1", "25"),
             ("NAXIS2", str(rows)), ("PCOUNT", "0"), ("GCOUNT", "1"), ("TFIELDS", "4"),
             ("TTYPE1", "'TIME'"), ("TFORM1", "'D'"), ("TTYPE2", "'FLUX'"), ("TFORM2", "'D'"),
             ("TTYPE3", "'FLUX_ERR'"), ("TFORM3", "'D'"), ("TTYPE4", "'FLAG'"), ("TFORM4", "'B'"),
             ("EXTNAME", "'LIGHTCURVE'"), ("EASFMT", "1")]

    def block(items):
        text = "".join(f"{k:<8}= {v:>20}".ljust(80) for k, v in items) + "END".ljust(80)
        return text.encode("ascii").ljust(-(-len(text) // 2880) * 2880, b" ")
    return block(cards) + block(table)


_READER = textwrap.dedent("""
    import json, resource, sys
    from functions.ingest_external_lcs.science import ingest
    from eas_runtime.lightcurve import FormatError
    from eas_runtime.memory import peak_rss
    try:
        lc = ingest(sys.argv[1])
        outcome = {"read": len(lc)}
    except FormatError as exc:
        outcome = {"refused": str(exc)}
    outcome["maxrss_bytes"] = peak_rss()
    print(json.dumps(outcome))
""")


def _ingest_in_subprocess(path: Path, limit: int = LIMIT) -> dict:
    """Ingest ``path`` in a fresh process limited to ``limit`` bytes as local serving limits a
    replica: ``EAS_MEMORY_LIMIT_BYTES`` and ``RLIMIT_DATA``."""
    done = subprocess.run([sys.executable, "-c", _READER, str(path)], cwd=PROJECT_ROOT,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT),
                               "EAS_MEMORY_LIMIT_BYTES": str(limit)},
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_DATA, (limit, limit)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.timeout(600)
@pytest.mark.parametrize("name, members", [("bomb.csv.gz", True), ("bomb.fits.gz", False)])
def test_defect_4_gzip_bomb_is_refused_within_the_limit(tmp_path, name, members):
    path = tmp_path / name
    if name.endswith(".csv.gz"):
        _write_bomb(path, b"time,flux\n", b"0,0\n", BOMB, members=members)
    else:
        _write_bomb(path, _fits_head(BOMB // 25), b"\0", BOMB, members=members)
    assert path.stat().st_size < BOMB // 100

    outcome = _ingest_in_subprocess(path)

    message = outcome.get("refused", "")
    assert str(path) in message, outcome
    assert "gzip stream of" in message and "decompresses to more than the limit of 64 MiB" in message
    assert "1/4 of the 256 MiB this function may use, from EAS_MEMORY_LIMIT_BYTES" in message
    assert ("stopped after 64 MiB" if members else "its trailer declares 1 GiB") in message
    # the reader never held the decompressed stream: its whole process stayed far below it
    assert outcome["maxrss_bytes"] < BOMB / 4, outcome


def test_defect_4_normal_gzipped_light_curves_read_identically(tmp_path):
    rng = np.random.default_rng(4)
    time = np.arange(20000) * (600 / 86400)
    lc = LightCurve(time, 1 + 1e-4 * rng.standard_normal(time.size), np.full(time.size, 1e-4),
                    (rng.random(time.size) < 0.01).astype(np.uint8), {"object": "star 4"})
    for fmt, plain_name in (("product", "lc.fits"), ("prototype", "lc.txt")):
        plain = read_lightcurve(write_lightcurve(lc, tmp_path / plain_name, fmt=fmt))
        zipped = read_lightcurve(write_lightcurve(lc, tmp_path / (plain_name + ".gz"), fmt=fmt))
        for column in ("time", "flux", "flux_err", "flags"):
            assert np.array_equal(getattr(plain, column), getattr(zipped, column)), (fmt, column)
        assert {k: v for k, v in plain.meta.items() if k != "source_file"} == \
               {k: v for k, v in zipped.meta.items() if k != "source_file"}
    # a gzipped content exactly at the limit is read; one byte more is refused by name
    content = (tmp_path / "lc.txt").read_bytes()
    (tmp_path / "exact.gz").write_bytes(gzip.compress(content))
    exact = MemoryLimit(4 * len(content), "test")
    assert load_bytes(tmp_path / "exact.gz", exact) == (content, True)
    with pytest.raises(ValueError, match=r"exact\.gz: gzip stream of .* decompresses to more"):
        load_bytes(tmp_path / "exact.gz", MemoryLimit(4 * (len(content) - 1), "test"))


@pytest.mark.timeout(300)
def test_defect_4_largest_plato_light_curve_fits_under_2_gib(tmp_path):
    """Two years at 25 s (2.5 million samples), gzipped, under the ingest function's 2 GiB."""
    n = int(2 * 365.25 * 86400 / 25)
    rng = np.random.default_rng(25)
    lc = LightCurve(np.arange(n) * (25 / 86400), 1 + 1e-4 * rng.standard_normal(n),
                    np.full(n, 1e-4), np.zeros(n, np.uint8), {})
    path = write_lightcurve(lc, tmp_path / "plato_2y_25s.fits.gz")
    outcome = _ingest_in_subprocess(path, limit=2 * 1024 * MiB)
    assert outcome.get("read") == n, outcome


def test_defect_4_memory_limit_is_the_smallest_declared(tmp_path):
    unlimited = lambda _which: (-1, -1)  # noqa: E731 - RLIM_INFINITY
    assert read_memory_limit({}, cgroup_root=tmp_path, getrlimit=unlimited).source.startswith("default")
    (tmp_path / "memory.max").write_text("1073741824\n")
    got = read_memory_limit({"EAS_MEMORY_LIMIT_BYTES": str(2 << 30)}, cgroup_root=tmp_path,
                            getrlimit=unlimited)
    assert (got.bytes, got.source, got.input_bytes) == (1 << 30, "cgroup memory limit", 1 << 28)
    (tmp_path / "memory.max").write_text("max\n")
    got = read_memory_limit({"EAS_MEMORY_LIMIT_BYTES": "536870912"}, cgroup_root=tmp_path,
                            getrlimit=unlimited)
    assert (got.bytes, got.source) == (512 << 20, "EAS_MEMORY_LIMIT_BYTES")
    with pytest.raises(ValueError, match="EAS_MEMORY_LIMIT_BYTES='2Gi'"):
        read_memory_limit({"EAS_MEMORY_LIMIT_BYTES": "2Gi"}, cgroup_root=tmp_path, getrlimit=unlimited)


def _allocate_service(memory: str) -> dict:
    return {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
            "metadata": {"name": "allocate"},
            "spec": {"template": {"spec": {"containerConcurrency": 1, "containers": [{
                "image": "eas-allocate:dev", "command": ["functions-framework"],
                "args": ["--target", "handle", "--source", ALLOCATE_SOURCE,
                         "--signature-type", "http"],
                "resources": {"limits": {"cpu": "1", "memory": memory}}}]}}}}


@pytest.mark.timeout(300)
def test_defect_4_replica_runs_under_its_descriptor_memory_limit(tmp_path):
    import yaml

    folder = tmp_path / "knative"
    folder.mkdir()
    (folder / "allocate.yaml").write_text(yaml.safe_dump(_allocate_service("256Mi")))
    settings = Settings.load(environ={}, home=str(tmp_path / "home"), knative_dir=str(folder),
                             max_replicas=1, idle_s=60.0, cold_start_timeout_s=60.0)
    serving = LocalServing(settings, "http://127.0.0.1:1/eas/default", grace_s=3.0)
    serving.start()
    try:
        def allocate(n: int) -> dict:
            status, _headers, body = serving.post(
                {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                         "name": "allocate"}},
                {"Content-Type": "application/json"}, json.dumps({"bytes": n}).encode(), 120.0)
            assert status == 200, body
            return json.loads(body)

        small = allocate(16 * MiB)
        assert small["outcome"] == f"allocated {16 * MiB} bytes"
        assert small["max_data_size"] == [str(256 * MiB)] * 2
        assert small["env"] == str(256 * MiB)
        (replica,) = next(s for s in serving.status() if s["name"] == "allocate")["replicas"]
        limits = Path(f"/proc/{replica['pid']}/limits").read_text()
        assert f"Max data size             {256 * MiB:<21d}{256 * MiB:<21d}bytes" in limits

        # beyond the limit: that request fails with MemoryError; the replica serves the next
        assert allocate(1024 * MiB)["outcome"] == "MemoryError"
        after = allocate(16 * MiB)
        assert after["outcome"] == f"allocated {16 * MiB} bytes" and after["pid"] == small["pid"]
    finally:
        serving.stop()


def test_defect_4_nested_compression_is_not_left_to_astropy(tmp_path):
    """astropy decompresses a gzip stream it is handed, unbounded: with a FITS format forced, a
    file gzipped twice must be refused, not passed on after the first decompression."""
    inner = tmp_path / "lc.fits.gz"
    lc = LightCurve(np.arange(10.0), np.ones(10), None, np.zeros(10, np.uint8), {})
    write_lightcurve(lc, inner)
    twice = tmp_path / "lc.fits.gz.gz"
    twice.write_bytes(gzip.compress(inner.read_bytes()))
    for fmt in ("product", "mission"):
        with pytest.raises(ValueError, match=r"lc\.fits\.gz\.gz: not a FITS file: the first card"):
            read_lightcurve(twice, fmt=fmt)


def test_defect_4_service_memory_limit_is_parsed_or_refused_by_name():
    from eas_runtime.serving.spec import ServiceSpecError, spec_from_document

    settings = Settings.load(environ={})
    assert spec_from_document(_allocate_service("1536Mi"), settings).memory_limit_bytes == 1536 * MiB
    assert spec_from_document(_allocate_service("2G"), settings).memory_limit_bytes == 2 * 10 ** 9
    with pytest.raises(ServiceSpecError, match="Service allocate: resources.limits.memory: 'lots'"):
        spec_from_document(_allocate_service("lots"), settings)
