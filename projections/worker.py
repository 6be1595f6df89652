"""The worker: the allocator and the read models, following their logs in order.

The allocator and the casework view follow the Registry's log; the allocation view follows the
Allocator's.

Run as its own process (`carepath worker`) or as threads of the embedded server. Only one worker
is active per database; a second one waits as a standby.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from domain.allocator import Allocator
from domain.registry import Registry
from projections.allocation import AllocationView
from projections.casework import CaseworkView
from projections.locks import single_instance
from projections.persistence import application_env
from projections.runner import catch_up, run_supervised
from projections.views import make_engine

log = logging.getLogger(__name__)


class Worker:
    """Builds its own applications per follower thread (each with its own connections)."""

    def __init__(self, environ: Mapping[str, str], secret: bytes) -> None:
        self.environ = dict(environ)
        self.secret = secret

    def registry(self) -> Registry:
        """The Registry as the worker uses it: only read, so without a group-commit writer."""
        env = application_env(self.environ, Registry.name, create_table=False)
        env[f"{Registry.name.upper()}_GROUP_COMMIT"] = "n"
        return Registry(env=env, secret=self.secret)

    def allocator(self) -> Allocator:
        return Allocator(env=application_env(self.environ, Allocator.name, create_table=False))

    def _allocator_follower(self) -> tuple[Any, Any, list[Callable[[], None]]]:
        registry, allocator = self.registry(), self.allocator()
        return registry, allocator, [registry.close, allocator.close]

    def _view_follower(self) -> tuple[Any, Any, list[Callable[[], None]]]:
        allocator, engine = self.allocator(), make_engine(self.environ)
        return allocator, AllocationView(engine), [allocator.close, engine.dispose]

    def _casework_follower(self) -> tuple[Any, Any, list[Callable[[], None]]]:
        registry, engine = self.registry(), make_engine(self.environ)
        return registry, CaseworkView(engine), [registry.close, engine.dispose]

    def settle(self) -> tuple[int, int]:
        """Process everything already logged, once: (registry events read, ledger events read).

        The casework view's reading of the Registry's log is not counted: the first number is
        what the allocator read, as before.
        """
        registry, allocator = self.registry(), self.allocator()
        engine = make_engine(self.environ)
        try:
            decided = catch_up(registry, allocator)
            catch_up(registry, CaseworkView(engine))
            viewed = catch_up(allocator, AllocationView(engine))
        finally:
            registry.close()
            allocator.close()
            engine.dispose()
        return decided, viewed

    def run(self, stop: threading.Event) -> None:
        """Follow until `stop` is set, holding the worker lock (waits for it as a standby)."""
        with single_instance(self.environ, "worker", stop) as held:
            if not held:
                return
            log.info("worker active")
            threads = [
                threading.Thread(
                    target=run_supervised,
                    args=(build, stop),
                    kwargs={"name": name},
                    name=name,
                    daemon=True,
                )
                for name, build in (
                    ("allocator", self._allocator_follower),
                    ("allocation-view", self._view_follower),
                    ("casework-view", self._casework_follower),
                )
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
