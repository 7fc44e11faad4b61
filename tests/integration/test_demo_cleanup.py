"""``make demo-clean`` on the real broker and FerretDB: a run's topics, consumer group,
database and folder go; names of other shapes stay."""

from __future__ import annotations

import random
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pymongo import MongoClient

from novamind.app.demo.cleanup import find_runs, remove_runs
from novamind.platform.kafka import admin_config, consumer_config
from novamind.platform.settings import Settings


def test_a_run_is_removed_everywhere_and_nothing_else(
    settings: Settings, run_id: str, tmp_path: Path
) -> None:
    stamp = f"2000{random.randrange(10**10):010d}"  # an old, unique run of this test
    prefix = f"demo-{stamp}."
    admin = AdminClient(admin_config(settings.kafka))
    bystander = f"keep-{run_id}.{prefix}twin-updates"  # contains the prefix, does not start with it
    created = [f"{prefix}twin-updates", f"{prefix}patient-reports", bystander]
    for future in admin.create_topics([NewTopic(t, 1, 1) for t in created]).values():
        future.result()
    group = f"{prefix}novamind-workers"
    consumer = Consumer(consumer_config(settings.kafka, group_id=group, client_id="cleanup-test"))
    consumer.commit(offsets=[TopicPartition(f"{prefix}twin-updates", 0, 0)], asynchronous=False)
    consumer.close()
    mongo: MongoClient[dict[str, object]] = MongoClient(settings.mongo.uri.get_secret_value())
    mongo[f"novamind_demo_{stamp}"].twins.insert_one({"_id": "p_x"})
    (tmp_path / stamp / "logs").mkdir(parents=True)
    (tmp_path / "notes").mkdir()
    try:
        runs = find_runs(settings, tmp_path)
        run = runs[stamp]
        assert sorted(run.topics) == sorted(created[:2])
        assert run.groups == [group]
        assert run.databases == [f"novamind_demo_{stamp}"]
        assert run.folders == [tmp_path / stamp]

        remove_runs(settings, {stamp: run})

        assert stamp not in find_runs(settings, tmp_path)
        topics = admin.list_topics(timeout=30).topics
        assert bystander in topics and not any(t.startswith(prefix) for t in topics)
        groups = {g.group_id for g in admin.list_consumer_groups(request_timeout=30).result().valid}
        assert group not in groups
        assert f"novamind_demo_{stamp}" not in mongo.list_database_names()
        assert (tmp_path / "notes").is_dir() and not (tmp_path / stamp).exists()
    finally:
        admin.delete_topics([bystander], operation_timeout=30)
        mongo.drop_database(f"novamind_demo_{stamp}")
        mongo.close()
