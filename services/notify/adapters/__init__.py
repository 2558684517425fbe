"""Notify's adapters: its own store, and the SMTP server e-mails are handed to."""
