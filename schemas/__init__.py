"""Event contracts: Avro schemas, pydantic models, codec, topic registry and scoring.

Import what you need from the submodules (``schemas.models``, ``schemas.codec``,
``schemas.topics``, ``schemas.assessments``, ``schemas.exceptions``); importing the package
does no work.
"""
