"""dagpar's built-in runner plugins (installed as ``dagpar_plugins``)."""
