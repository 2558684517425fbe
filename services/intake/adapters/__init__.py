"""Intake's adapters: the customer directory file."""
