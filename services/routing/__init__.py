"""Routing: decides every new ticket's priority (1-5) and queue from rules a
team lead keeps in a YAML file (an ITIL impact x urgency matrix, then ordered
priority rules and queue rules), and sends the decision to the ticket service
as a ``command.route_ticket``, naming the rule that fired and why.
"""
