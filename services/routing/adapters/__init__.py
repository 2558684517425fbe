"""Routing's adapters: the rules file."""
