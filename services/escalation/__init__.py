"""Escalation: holds an SLA clock for every open ticket (the first-response
target of its SLA policy, counted in the policy calendar's business hours,
paused while the ticket waits on the customer or a third party), warns the
ticket's level at set percentages, and when the target passes (or criteria
such as unanswered customer replies are met) asks the ticket service to move
the ticket up a support level (``command.escalate_ticket``) and notify to
tell that level by each of its methods (``notification.requested``). Every
change of a ticket's deadlines is published as ``sla.deadlines_changed``. The
policies, calendars and levels live in YAML files a team lead edits.
"""
