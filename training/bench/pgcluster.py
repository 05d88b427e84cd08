"""A throwaway PostgreSQL cluster for tests that pause, stop or slow the database: its own
folder and port, never the machine's shared server; removed afterwards."""

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from training.bench.server import free_port

PG_ROOT = Path("/usr/lib/postgresql")


def pg_bin() -> Path | None:
    versions = sorted(PG_ROOT.glob("*/bin/initdb"), key=lambda p: int(p.parent.parent.name))
    return versions[-1].parent if versions else None


@dataclass
class Cluster:
    bin: Path
    data: Path
    port: int

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def ctl(self, *args: str) -> None:
        _run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", *args])

    def start(self) -> None:
        options = f"-p {self.port} -k {self.data} -c listen_addresses=127.0.0.1"
        self.ctl("-o", options, "-l", str(self.data / "server.log"), "start")

    def stop(self) -> None:
        self.ctl("-m", "fast", "stop")

    def processes(self) -> list[int]:
        """The postmaster and every backend it started."""
        postmaster = int((self.data / "postmaster.pid").read_text().split()[0])
        children = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == postmaster:
                    children.append(int(stat.parent.name))
        return [postmaster, *children]

    def signal(self, signum: int) -> None:
        for pid in self.processes():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    def pause(self) -> None:
        self.signal(signal.SIGSTOP)  # hung, not down: connections stay open, nothing answers

    def resume(self) -> None:
        self.signal(signal.SIGCONT)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    binary = pg_bin()
    if binary is None:
        raise RuntimeError(f"no PostgreSQL server binaries under {PG_ROOT}")
    folder = Path(tempfile.mkdtemp(prefix="recsys-pg-"))
    data = folder / "data"
    data.mkdir()
    if os.geteuid() == 0:  # initdb and pg_ctl refuse root
        shutil.chown(folder, "postgres")
        shutil.chown(data, "postgres")
    cluster = Cluster(binary, data, free_port())
    try:
        _run([str(binary / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
        cluster.start()
        yield cluster
    finally:
        with contextlib.suppress(Exception):
            cluster.resume()
            cluster.ctl("-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _run(command: list[str]) -> None:
    if os.geteuid() == 0:
        command = ["runuser", "-u", "postgres", "--", *command]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}")
