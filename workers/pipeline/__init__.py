"""The worker pipeline's batch steps: pure cores the consumer loop calls, one module per stage."""
