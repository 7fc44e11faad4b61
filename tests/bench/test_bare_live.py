"""The bare live consumer reads a trickle as the worker does: same fetch settings, own group."""

from __future__ import annotations

from bench.bare_live import WORKER_FETCH, bare_config
from novamind.platform.settings import Settings
from workers.runtime import clients


def test_the_bare_consumer_fetches_as_the_worker_does_from_the_log_end_in_a_group_of_its_own():
    settings = Settings()
    bare, worker = bare_config(settings), clients.main_consumer(settings)
    assert {key: bare[key] for key in WORKER_FETCH} == {key: worker[key] for key in WORKER_FETCH}
    assert bare["fetch.min.bytes"] > 1  # a trickle is fetched in batches, as the worker fetches it
    assert bare["group.id"] != worker["group.id"]  # never takes the worker's partitions
    assert bare["auto.offset.reset"] == "latest" and bare["enable.auto.commit"] is False
