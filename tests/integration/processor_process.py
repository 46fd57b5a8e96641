"""`mailpulse process` run as a subprocess on a chDB directory this test process never opens (chDB allows
one per process), and its tables read back by another subprocess: for the fault tests."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from mailpulse.broker import EmbeddedBroker, die_with_parent
from mailpulse.settings import Settings
from tests.integration.groundtruth import Tables

REPO = Path(__file__).resolve().parents[2]
PARTITIONS = 6
# Small batches: many load cycles (record the ranges, insert, commit) per second for a kill to land in.
BATCH_MAX_RECORDS = 500


class ProcessorProcess:
    """`mailpulse process` in a subprocess; its output goes to ``log``."""

    def __init__(self, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.env = env
        self.cwd = cwd
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None
        self.started_at = 0  # where this incarnation's output starts in the log

    def start(self, label: str) -> None:
        with self.log.open("ab") as out:
            out.write(f"\n=== {label} ===\n".encode())
            out.flush()
            self.started_at = out.tell()
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "mailpulse.cli", "-v", "process"],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

    async def ready(self, timeout_s: float = 120.0) -> None:
        """Until this incarnation printed its banner: its SIGTERM handler is in place from then on (a
        SIGTERM before it would kill it, as for any process that has not set one up yet)."""
        deadline = time.monotonic() + timeout_s
        while b"processing " not in self.log.read_bytes()[self.started_at :]:
            self.alive()
            assert time.monotonic() < deadline, f"no banner in {timeout_s}s; see {self.log}"
            await asyncio.sleep(0.1)

    def alive(self) -> None:
        assert self.popen is not None
        if self.popen.poll() is not None:
            raise RuntimeError(f"processor exited with {self.popen.returncode}; see {self.log}")

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.send_signal(signal.SIGKILL)
            self.popen.wait(timeout=10)
        self.popen = None

    def terminate(self, timeout_s: float = 30.0) -> int:
        """SIGTERM: the processor flushes, loads and commits, then exits."""
        assert self.popen is not None
        self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        finally:
            self.kill()


def processor_env(settings: Settings, chdb_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAILPULSE_")}
    assert settings.kafka_bootstrap is not None
    env.update(
        {
            "MAILPULSE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "MAILPULSE_CLICKHOUSE_URL": f"chdb://{chdb_dir}",
            "MAILPULSE_CLICKHOUSE_DATABASE": settings.clickhouse_database,
            "MAILPULSE_STATUS_TOPIC": settings.status_topic,
            "MAILPULSE_DEADLETTER_TOPIC": settings.deadletter_topic,
            "MAILPULSE_CONSUMER_GROUP": settings.consumer_group,
            "MAILPULSE_PARTITIONS": str(settings.partitions),
            "MAILPULSE_DATA_DIR": str(chdb_dir.parent),
            "MAILPULSE_BATCH_MAX_RECORDS": str(BATCH_MAX_RECORDS),
            "MAILPULSE_BATCH_WAIT_MS": "200",
            "MAILPULSE_CONSUMER_SESSION_TIMEOUT_MS": "2000",
            "MAILPULSE_METRICS_PORT": "0",
        }
    )
    return env


def dump_tables(chdb_dir: Path, database: str, out: Path) -> Tables:
    subprocess.run(
        [sys.executable, "-m", "tests.integration.dump_tables", f"chdb://{chdb_dir}", database, str(out)],
        cwd=REPO,
        check=True,
        timeout=120,
    )
    return Tables.from_json(out.read_bytes())


def subprocess_settings(broker: EmbeddedBroker, prefix: str, tmp_path: Path) -> tuple[Settings, Path]:
    """Settings with this test's own database, topics and group, and the chDB directory that only the
    processor subprocesses open (chDB: one directory per process)."""
    suffix = uuid.uuid4().hex[:10]
    settings = Settings(
        kafka_bootstrap=broker.bootstrap,
        clickhouse_database=f"{prefix}_{suffix}",
        status_topic=f"{prefix}-status-{suffix}",
        deadletter_topic=f"{prefix}-dead-{suffix}",
        consumer_group=f"{prefix}-group-{suffix}",
        partitions=PARTITIONS,
    )
    chdb_dir = tmp_path / "processor" / "clickhouse"
    chdb_dir.parent.mkdir()
    return settings, chdb_dir
