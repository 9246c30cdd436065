"""What every HTTP front end shares: the listener (``server``), the app factory (``app``), the
request state and helpers (``state``) and the DNS page's resolver (``dnslookup``).

The web admin (``sealmail.web``) and the REST API (``sealmail.api``) are routers mounted by
``app.build_app``; DAV (``sealmail.dav``) uses the listener only. Nothing here imports them.
"""
