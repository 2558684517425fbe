"""``python -m helpdesk_client`` is the ``helpdesk`` command line."""

from helpdesk_client.cli import main

main()
