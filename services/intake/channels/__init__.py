"""Channel adapters: each speaks one channel's protocol or one provider's format
and turns a contact into an ``incident.reported`` on the intake topic."""
