"""Tools for running the whole suite on one machine: the process launcher,
a mailbox (SMTP catcher) for demos and tests, and the demo itself.

Not a service and not imported by one.
"""
