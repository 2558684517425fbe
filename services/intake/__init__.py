"""Intake: where an incident enters the help desk. It takes incidents posted
over HTTP (web, mobile, integrations) and puts them on the reported topic;
from that topic (where integrations may also publish directly) it identifies
the customer in the directory, fills in what is known of them (contact data,
location, department, VIP, hardware, software) and publishes the identified
incident, from which the ticket service opens a ticket.
"""
