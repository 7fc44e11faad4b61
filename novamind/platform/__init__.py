"""The platform: settings, logging, metrics, Kafka and MongoDB clients, privacy and identity.

It imports only ``schemas``; connectors, workers and the application import it.
"""
