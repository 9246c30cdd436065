"""The web admin (``sealmail serve web``): FastAPI + Jinja2 pages over ``sealmail.services``."""
