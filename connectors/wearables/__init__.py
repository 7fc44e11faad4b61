"""Wearable adapters (Fitbit Web API, Apple Health export, Open mHealth) and device registry."""

from enum import StrEnum


class WearableFormat(StrEnum):
    """The wearable exports the connectors read (the values are ``novamind connect`` subcommands)."""

    FITBIT = "fitbit"
    APPLE_HEALTH = "apple-health"
    OPENMHEALTH = "openmhealth"
