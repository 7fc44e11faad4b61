"""Subcommands of the novamind CLI, one module each."""
