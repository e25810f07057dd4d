"""Status pushes from synchronous code go through one long-lived event loop per process (payments/realtime.py,
infrastructure/overrides/push_loop.py), and Django's cache shares one Redis pool per process
(infrastructure/redis_pools.py): both on the real Redis."""

import threading

from django.core.cache.backends.redis import RedisCache

from infrastructure.overrides import push_loop
from payments import realtime
from payments.realtime import payment_group_name, payment_push_status
from tests.conftest import group_messages


def test_pushes_from_many_threads_all_arrive_through_one_loop():
    loops = []

    def push(seq: int) -> None:
        payment_push_status({"id": "p-threads", "seq": seq, "status": "processing"})
        loops.append(realtime._push_loop._loop)

    def eight_threads_push_at_once() -> None:  # a worker's job threads
        threads = [threading.Thread(target=push, args=(seq,)) for seq in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    messages = group_messages(payment_group_name("p-threads"), eight_threads_push_at_once, count=8)

    # every push arrived, and all went through the same running event loop
    assert sorted(message["payment"]["seq"] for message in messages) == list(range(8))
    assert len({id(loop) for loop in loops}) == 1 and loops[0].is_running()


def test_a_forked_child_gets_a_loop_of_its_own(monkeypatch):
    payment_push_status({"id": "p-fork", "seq": 1, "status": "processing"})
    parent_loop = realtime._push_loop._loop
    # as if this were a child process forked after the parent started its loop thread
    monkeypatch.setattr(push_loop.os, "getpid", lambda: -1)

    (message,) = group_messages(
        payment_group_name("p-fork"),
        lambda: payment_push_status({"id": "p-fork", "seq": 2, "status": "succeeded"}),
    )

    assert realtime._push_loop._loop is not parent_loop
    assert message["payment"]["seq"] == 2


def test_cache_objects_share_one_redis_pool(settings):
    # Django builds a cache object per request context under ASGI; they must not each open connections
    options = {"OPTIONS": settings.CACHES["default"]["OPTIONS"]}
    first = RedisCache(settings.CACHES["default"]["LOCATION"], options)
    second = RedisCache(settings.CACHES["default"]["LOCATION"], options)
    first.set("shared-pool-check", 7, 10)

    assert second.get("shared-pool-check") == 7
    assert first._cache._get_connection_pool(True) is second._cache._get_connection_pool(True)
