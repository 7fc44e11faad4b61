"""The application surface: the CLI, the demo, status, dataset export and the local services.

Nothing imports it except its own modules, the tests and the benchmarks.
"""
