"""Real carepath processes for integration tests: the CLI, and servers that can be killed and restarted.

    env = carepath_env(sqlite_env)
    run_carepath(env, "db", "init")
    with ServerProcess.embedded(env, log_dir=tmp_path) as server:   # `carepath serve` (waitress)
        requests.get(server.url("/api/v1/intakes"))
        server.kill()          # SIGKILL to the whole process group, as a crash would
        server.start()         # same port, same storage

`ServerProcess.gunicorn(env, workers=2, ...)` runs `carepath web` instead. Every server runs in a
new session (its own process group), so a kill takes its workers with it, and leaving the `with`
block (or calling `stop()`) always kills whatever is left.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO

# Inherited variables that would silently point a test's processes at other storage.
_STORAGE_PREFIXES = ("CAREPATH_", "PERSISTENCE_MODULE", "REGISTRY_", "POSTGRES_", "SQLITE_")
READY_PATH = "/api/v1/intakes"


def carepath_env(storage: Mapping[str, str], **extra: str) -> dict[str, str]:
    """The environment of a carepath child process: this one's, minus any storage settings it
    inherited, plus `storage` (e.g. the `sqlite_env` or `postgres_db` fixture), with the rate
    limits off and unbuffered output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_STORAGE_PREFIXES)}
    env.update({"CAREPATH_RATELIMIT_ENABLED": "n", "PYTHONUNBUFFERED": "1"})
    env.update(storage)
    env.update(extra)
    return env


def carepath_command(*args: str) -> list[str]:
    """argv for the `carepath` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("carepath")
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from carepath.cli import main; main()", *args]


def run_carepath(
    env: Mapping[str, str], *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run one `carepath` command to completion; fail with its output if it fails."""
    done = subprocess.run(
        carepath_command(*args),
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(
            f"carepath {' '.join(args)} exited {done.returncode}\n"
            f"stdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
    return done


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _live_members(pgid: int) -> list[int]:
    """Processes of a process group that are not yet dead (zombies count as dead)."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: ask the kernel whether the group still has anyone
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return []
        return [pgid]
    members = []
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...: comm may hold spaces, so split after its ')'
        fields = stat[stat.rfind(")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in {"Z", "X"}:
            members.append(int(entry.name))
    return members


class ServerProcess:
    """One carepath server as a real process group on a fixed port, restartable after a kill."""

    def __init__(
        self,
        argv: Sequence[str],
        env: Mapping[str, str],
        *,
        port: int,
        log_path: Path,
        host: str = "127.0.0.1",
        ready_timeout: float = 30,
    ) -> None:
        self.argv = list(argv)
        self.env = dict(env)
        self.host = host
        self.port = port
        self.log_path = log_path
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.kills = 0
        self._log: IO[bytes] | None = None

    @classmethod
    def embedded(
        cls, env: Mapping[str, str], *, log_dir: Path, threads: int = 16, port: int | None = None
    ) -> ServerProcess:
        """`carepath serve`: waitress, one process."""
        port = port or free_port()
        argv = carepath_command("serve", "--port", str(port), "--threads", str(threads))
        return cls(argv, env, port=port, log_path=log_dir / f"serve-{port}.log")

    @classmethod
    def gunicorn(
        cls,
        env: Mapping[str, str],
        *,
        log_dir: Path,
        workers: int = 2,
        threads: int = 1,
        port: int | None = None,
    ) -> ServerProcess:
        """`carepath web`: a gunicorn master and its forked workers."""
        port = port or free_port()
        argv = carepath_command(
            "web",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        )
        return cls(argv, env, port=port, log_path=log_dir / f"web-{port}.log")

    # Life cycle

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> ServerProcess:
        """Start the server and return once it answers HTTP; fail with its log if it cannot."""
        if self.running:
            raise RuntimeError("the server is already running")
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._log.write(f"--- start {self.starts + 1}: {' '.join(self.argv)}\n".encode())
        self._log.flush()
        self.process = subprocess.Popen(
            self.argv,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: a kill reaches every worker
        )
        self.starts += 1
        self._wait_ready()
        return self

    def kill(self) -> None:
        """SIGKILL the whole process group, as a crash or an OOM kill would; wait until it is gone."""
        if self.process is None:
            return
        self._signal_group(signal.SIGKILL)
        self.kills += 1
        self._reap()

    def stop(self, grace: float = 5) -> None:
        """SIGTERM, then SIGKILL whatever is left after `grace` seconds. Safe to call twice."""
        if self.process is None:
            return
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace)
        self._signal_group(signal.SIGKILL)
        self._reap()

    def restart(self) -> ServerProcess:
        self.kill()
        return self.start()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    # Internals

    def _signal_group(self, sig: signal.Signals) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, sig)  # start_new_session: the group id is the pid

    def _reap(self) -> None:
        """Wait for the leader and every other member of its group, and close the log."""
        assert self.process is not None
        pgid = self.process.pid
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(pgid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self._wait_group_gone(pgid)
        self.process = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def _wait_group_gone(self, pgid: int, timeout: float = 10) -> None:
        """Workers are children of the killed master, not ours: wait for the kernel to end them."""
        deadline = time.monotonic() + timeout
        while live := _live_members(pgid):
            if time.monotonic() > deadline:
                raise RuntimeError(f"processes {live} of group {pgid} outlived SIGKILL")
            time.sleep(0.02)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        while True:
            assert self.process is not None
            if self.process.poll() is not None:
                code = self.process.returncode
                self._reap()
                raise RuntimeError(
                    f"server exited with {code} before answering\n{self.log_text()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(self.url(READY_PATH), timeout=2) as response:  # noqa: S310
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"server did not answer within {self.ready_timeout} s\n{self.log_text()[-4000:]}"
                )
            time.sleep(0.05)
