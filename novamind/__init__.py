"""NOVAMIND runtime glue: settings, logging, Kafka and MongoDB clients, local services, CLI."""
