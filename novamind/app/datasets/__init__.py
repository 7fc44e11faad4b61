"""De-identified training datasets: ``novamind dataset export``.

The pure core turns the last revision of every patient-day of ``patient-daily-features`` and
the twins' static attributes into three Avro files (train, validation, test) and a manifest:

* ``rows`` keeps the last revision per patient-day and copies only whitelisted fields
  (:mod:`novamind.app.datasets.schema`); there is no free text and no source identifier.
* ``quality`` is the gate: days the workers marked below the quality standards are never
  exported, and the export is refused when their share is too high (naming them).
* ``split`` assigns days to splits by their real date, with an embargo gap at each boundary.
* ``deidentify`` re-keys pseudonyms with a per-export random key that is never stored and
  shifts each patient's dates by a random number of days.
* ``manifest`` records schema, counts, quality and SHA-256 hashes, and verifies them.

``sources`` (Kafka and MongoDB reads) and ``export`` (file writing) are the thin I/O edges;
``job`` runs one audited export with them.
Import the submodules directly; this module stays empty.
"""
