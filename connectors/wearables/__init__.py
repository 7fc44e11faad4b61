"""Wearable adapters (Fitbit Web API, Apple Health export, Open mHealth) and device registry."""
