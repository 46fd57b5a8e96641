"""Measurements 2 and 3: ingest and the baseline receiver over loopback HTTP, each its own process on
the server core, driven by the load generator process on the load core."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson

from bench.layout import LOAD_CORE, SERVER_CORE
from bench.loadgen import LoadResult, LoadSpec
from bench.report import percentile
from mailpulse.broker import die_with_parent, free_port
from mailpulse.runtime import wait_listening


@dataclass(frozen=True, slots=True)
class HttpFigures:
    events_per_s: float
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: dict[str, int]
    # Server CPU time (user + system) per acknowledged event and request, warm-up included: unlike the
    # rates, it hardly moves when other processes take turns on the server's core.
    cpu_us_per_event: float
    cpu_us_per_request: float


def figures(result: LoadResult, server_cpu_s: float) -> HttpFigures:
    elapsed = max(result.elapsed_s, 1e-9)
    return HttpFigures(
        events_per_s=result.events_ok / elapsed,
        requests_per_s=result.ok / elapsed,
        p50_ms=percentile(result.latencies_ms, 50),
        p99_ms=percentile(result.latencies_ms, 99),
        errors=result.errors,
        cpu_us_per_event=server_cpu_s / max(result.events_ok_all, 1) * 1e6,
        cpu_us_per_request=server_cpu_s / max(result.ok_all, 1) * 1e6,
    )


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far (Linux /proc; 0.0 where there is none)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS


async def start_server(
    kind: str, bootstrap: str, topic: str, port: int, extra: Sequence[str] = ()
) -> asyncio.subprocess.Process:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.serve", kind, "--bootstrap", bootstrap, "--topic", topic,
        "--port", str(port), "--core", str(SERVER_CORE), *extra, preexec_fn=die_with_parent,
    )  # fmt: skip
    await wait_listening("127.0.0.1", port, timeout_s=30)
    return process


async def stop_server(process: asyncio.subprocess.Process) -> None:
    if process.returncode is None:
        process.terminate()
        try:
            await asyncio.wait_for(process.wait(), 15)
        except TimeoutError:
            process.kill()
            await process.wait()


async def run_load(spec: LoadSpec, workdir: Path, name: str) -> LoadResult:
    spec_path, out_path = workdir / f"{name}.spec.json", workdir / f"{name}.out.json"
    spec_path.write_bytes(orjson.dumps(asdict(spec)))
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen", str(spec_path), str(out_path),
        preexec_fn=die_with_parent,
    )  # fmt: skip
    if await process.wait() != 0:
        raise RuntimeError(f"load generator {name} exited with {process.returncode}")
    raw = orjson.loads(out_path.read_bytes())
    raw["acked"] = [tuple(a) for a in raw["acked"]]
    return LoadResult(**raw)


def write_bodies(workdir: Path, name: str, bodies: list[bytes]) -> str:
    path = workdir / f"{name}.bodies"
    path.write_bytes(b"\n".join(bodies))
    return str(path)


async def measure(
    kind: str,
    endpoint: str,
    bodies: list[bytes],
    events_per_body: list[int],
    bootstrap: str,
    topic: str,
    workdir: Path,
    connections: int,
    duration_s: float,
    warmup_s: float,
) -> HttpFigures:
    """Closed loop on ``connections`` keep-alive connections for ``duration_s`` after ``warmup_s``."""
    name = f"{kind}-{endpoint}"
    port = free_port()
    server = await start_server(kind, bootstrap, topic, port)
    try:
        spec = LoadSpec(
            host="127.0.0.1",
            port=port,
            path=f"/webhooks/{endpoint}/events",
            bodies=write_bodies(workdir, name, bodies),
            events_per_body=events_per_body,
            connections=connections,
            duration_s=duration_s,
            warmup_s=warmup_s,
            core=LOAD_CORE,
        )
        cpu_before = cpu_seconds(server.pid)
        result = await run_load(spec, workdir, name)
        return figures(result, cpu_seconds(server.pid) - cpu_before)
    finally:
        await stop_server(server)
