"""The escalation rules, in plain Python (no I/O; import-linter keeps it so).

- ``policy``: the support levels, and the SLA targets as the clocks count them.
- ``deadline``: a ticket's deadlines, one record with three clocks (first
  response, next update, resolution), and how their times are counted.
- ``ticket_events``: how each ticket event moves them (``apply``, ``fold``).
- ``breaches``: what a passed time asks for (``on_time``): warnings, and one
  escalation per breach.
- ``message_ids``: the ids of everything escalation sends, derived from their cause.

The caller loads and stores the deadlines and publishes what the rules decide.
"""
