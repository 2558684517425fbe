"""Notify: tells people what happened to a ticket. It remembers each ticket's
customer from ``ticket.opened``, e-mails the customer when the ticket is
resolved, and sends the notifications other services request (e-mail to the
escalation level). Each e-mail is sent at most once per cause, as far as SMTP
allows, with a Message-ID derived from its cause so replies thread back.
"""
