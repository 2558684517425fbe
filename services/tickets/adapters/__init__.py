"""Storage of the ticket service: the event store, the read model, the database they live in."""
