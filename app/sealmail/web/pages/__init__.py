"""The web admin's pages, one module per room of the admin (``sealmail.web.views`` mounts them all)."""
