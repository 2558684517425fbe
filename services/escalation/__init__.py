"""Escalation: holds every open ticket to the three targets of its SLA policy
(first response, next update, resolution), each counted in the policy
calendar's business hours and paused while the ticket waits on the customer
or a third party; warns the ticket's level at set percentages; and when a
target passes (or criteria such as unanswered customer replies are met) moves
the ticket one support level up: ``command.escalate_ticket`` to the ticket
service, ``command.assign_ticket`` when that level names an on-call agent, and
``notification.requested`` for each way the level is told. Every change of a
ticket's deadlines is published as ``sla.deadlines_changed``. The policies,
calendars and levels live in YAML files a team lead edits.
"""
