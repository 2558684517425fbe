"""Notify: tells people what happened to a ticket. It e-mails customers (an
acknowledgement when their ticket opens, the resolution, public notes), threaded
under their first mail and in their language; it notifies agents and levels on
escalation and assignment by SMS, phone call, pager, alarm, a flag on the ticket
or e-mail, as the recipients file says; it posts signed webhooks to integrations;
and it sends the notifications other services request. Each is sent once per
cause as far as its transport allows, within rate limits.
"""
