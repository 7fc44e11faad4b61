"""Source connectors: EHR (FHIR), wearables and the synthetic cohort simulator."""
