"""Escalation: holds a deadline for every open ticket nobody has claimed, and
when it passes, asks the ticket service to move the ticket up a support level
(``command.escalate_ticket``) and asks notify to tell that level
(``notification.requested``). The levels live in a YAML file a team lead edits;
the deadlines live in the service's own database, fed by the ticket events.
"""
