"""The worker runtime: Kafka in and out (confluent-kafka), state checkpoints, web views.

Thin I/O around the pure stages in :mod:`workers.pipeline`. See :mod:`workers.runtime.worker`.
"""
