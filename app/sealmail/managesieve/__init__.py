"""ManageSieve (RFC 5804): the server users manage their Sieve scripts with, on port 4190.

``parser`` assembles a command from its lines and literals and returns it typed; ``wire`` writes
strings and responses; ``reader`` reads commands off a connection within the limits; ``session``
is the state machine (non-authenticated, authenticated; STARTTLS, AUTHENTICATE, UNAUTHENTICATE)
over ``services.sievescripts`` and the config store; ``server`` is the component. The scripts live
in the config store, readable by the server: the MX runs them while the user is offline.
"""
