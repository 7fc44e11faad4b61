"""The worker pipeline's batch steps: pure cores the Faust agents call, one module per stage."""
