"""The ticket service: the help desk's event-sourced log of tickets. It opens a
ticket (number HD-<n>) for every identified incident, applies routing and
escalation commands and agents' claims and resolutions as new events in the
ticket's stream, keeps a read model for queues and lists in the same
transaction, and relays every stored event, in log order, to the ticket events
topic, which is the only way ticket events reach Kafka.
"""
