"""Notify's adapters: its own store, the SMTP server, the HTTP providers (Twilio,
PagerDuty, Alertmanager, webhooks) and the ticket service's command topic (flags)."""
