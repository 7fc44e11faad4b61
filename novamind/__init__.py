"""NOVAMIND's two outer layers.

``novamind.platform`` is the bottom everything stands on (settings, logging, metrics, Kafka and
MongoDB clients, privacy and identity primitives); ``novamind.app`` is the top (the CLI, the demo,
status, dataset export, the local services). Connectors and workers sit between them.
"""
