"""The audit log: who created, changed, paused, resumed, cancelled, resent, imported or deleted
what, when, and from where (the API, the admin console or the command line)."""
