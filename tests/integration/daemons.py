"""Long-running carepath processes without HTTP (`carepath worker`, `carepath scheduler`).

    worker = Daemon.worker(env, log_dir=tmp_path)
    worker.start()        # own session (process group); returns at once
    worker.kill()         # SIGKILL to the whole group, as a crash would; waits until it is gone
    worker.stop()         # SIGTERM, then SIGKILL after a grace period; records the exit code

Built on `servers.ServerProcess`, so killing, reaping and the process-group handling are the same;
only readiness differs: a daemon answers no HTTP, so `start()` waits for nothing (or for a line in
its log), and `exit_codes` records how every run ended.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path

from tests.integration.servers import ServerProcess, carepath_command


class Daemon(ServerProcess):
    """One carepath daemon as a real process group, restartable after a kill."""

    def __init__(self, argv: list[str], env: Mapping[str, str], *, log_path: Path) -> None:
        super().__init__(argv, env, port=0, log_path=log_path)
        self.exit_codes: list[int] = []

    @classmethod
    def worker(cls, env: Mapping[str, str], *, log_dir: Path, name: str = "worker") -> Daemon:
        return cls(carepath_command("worker"), env, log_path=log_dir / f"{name}.log")

    @classmethod
    def scheduler(
        cls, env: Mapping[str, str], *, log_dir: Path, name: str, interval: float = 0.5
    ) -> Daemon:
        argv = carepath_command("scheduler", "--interval", str(interval))
        return cls(argv, env, log_path=log_dir / f"{name}.log")

    def _wait_ready(self) -> None:
        """Nothing to wait for: a daemon's work starts whenever it gets there."""

    def wait_for_log(self, text: str, *, timeout: float = 30) -> None:
        """Wait until `text` appears in the log of this run (fail if the process exits first)."""
        deadline = time.monotonic() + timeout
        while text not in self.current_log():
            if not self.running:
                raise AssertionError(f"{self.argv} exited before logging {text!r}\n{self.tail()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.argv} did not log {text!r}\n{self.tail()}")
            time.sleep(0.05)

    def current_log(self) -> str:
        """The log of the latest start only."""
        text = self.log_text()
        marker = f"--- start {self.starts}:"
        return text[text.rfind(marker) :] if marker in text else text

    def tail(self, chars: int = 4000) -> str:
        return self.log_text()[-chars:]

    def kill(self) -> None:
        """SIGKILL a running daemon's group; fails if it had already exited on its own."""
        if not self.running:
            raise AssertionError(f"{self.argv} was not running when killed\n{self.tail()}")
        assert self.process is not None
        process = self.process
        super().kill()
        self.exit_codes.append(process.returncode)

    def stop(self, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; records the exit code."""
        if self.process is None:
            return
        process = self.process
        super().stop(grace)
        self.exit_codes.append(process.returncode)
