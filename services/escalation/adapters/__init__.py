"""Escalation's adapters: its own deadlines store."""
