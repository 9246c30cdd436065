"""The REST API (``sealmail serve api``): ``/v1``, token auth, RFC 9457 problem details."""
