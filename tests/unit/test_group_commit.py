"""Group commit: many requests' saves in one transaction, each answered only after its commit."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from eventsourcing.persistence import IntegrityError, OperationalError

from domain import errors
from domain.group_commit import GroupCommitter
from domain.registry import Registry
from tests.conftest import SECRET, about_you


class FakeStore:
    """Records the batches it is asked to write; refuses any batch holding a poisoned event."""

    def __init__(self, poisoned=(), down=False):
        self.batches: list[tuple] = []
        self.written: list = []
        self.poisoned = set(poisoned)
        self.down = down
        self.gate = threading.Event()
        self.gate.set()

    def write(self, *events):
        self.gate.wait()
        self.batches.append(events)
        if self.down:
            raise OperationalError("server closed the connection")
        if self.poisoned & set(events):
            raise IntegrityError("duplicate")
        self.written.extend(events)
        return [f"recording-of-{e}" for e in events]


def test_concurrent_saves_share_transactions_and_each_gets_its_own_recordings():
    store = FakeStore()
    store.gate.clear()  # hold the first write so that the others queue up behind it
    committer = GroupCommitter(store.write, max_batch=50, max_wait=0.01)
    with ThreadPoolExecutor(20) as pool:
        futures = [pool.submit(committer.save, [f"e{n}a", f"e{n}b"]) for n in range(20)]
        store.gate.set()
        results = [f.result(timeout=10) for f in futures]
    committer.close()
    assert results == [[f"recording-of-e{n}a", f"recording-of-e{n}b"] for n in range(20)]
    assert len(store.batches) < 20
    assert sorted(store.written) == sorted(f"e{n}{x}" for n in range(20) for x in "ab")
    for batch in store.batches:  # a request's events stay together, in order
        for n in range(20):
            if f"e{n}a" in batch:
                assert batch.index(f"e{n}b") == batch.index(f"e{n}a") + 1


def test_a_conflicting_save_in_a_batch_fails_alone():
    store = FakeStore(poisoned={"bad"})
    store.gate.clear()
    committer = GroupCommitter(store.write, max_batch=50, max_wait=0.01)
    with ThreadPoolExecutor(10) as pool:
        good = [pool.submit(committer.save, [f"ok{n}"]) for n in range(9)]
        bad = pool.submit(committer.save, ["bad"])
        store.gate.set()
        assert [f.result(timeout=10) for f in good] == [[f"recording-of-ok{n}"] for n in range(9)]
        with pytest.raises(IntegrityError):
            bad.result(timeout=10)
    committer.close()
    assert sorted(store.written) == sorted(f"ok{n}" for n in range(9))


def test_when_the_database_is_down_every_request_of_the_batch_fails_and_nothing_is_written():
    store = FakeStore(down=True)
    committer = GroupCommitter(store.write)
    with pytest.raises(OperationalError):
        committer.save(["x"])
    committer.close()
    assert store.written == []


def test_registry_with_group_commit_refuses_the_duplicate_and_keeps_the_rest(registry):
    assert registry.group_commit is not None
    people = [*range(1, 41), 7, 7, 13]  # three attempts to register someone twice

    def attempt(i, n):
        try:
            # one key per attempt: a key per thread made a thread's second attempt at the same
            # person an idempotent replay (answered, not refused), so the count depended on
            # which thread ran it
            return registry.register(
                "test", about_you(n), language="en", idempotency_key=f"key-{i}-{n}"
            )
        except errors.DuplicateRegistration:
            return None

    with ThreadPoolExecutor(16) as pool:
        outcomes = list(pool.map(attempt, range(len(people)), people))
    registered = [o for o in outcomes if o is not None]
    assert len(registered) == 40
    assert outcomes.count(None) == 3
    assert len({o.case_id for o in registered}) == 40
    for done in registered:
        assert registry.get_case(done.case_id).reference == done.reference


def test_registry_without_group_commit_saves_directly():
    registry = Registry(
        env={"PERSISTENCE_MODULE": "eventsourcing.popo", "GROUP_COMMIT": "n"}, secret=SECRET
    )
    assert registry.group_commit is None
    registry.close()
