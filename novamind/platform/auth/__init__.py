"""Bearer-token authentication and SMART-scope authorisation for the intake and worker views."""
