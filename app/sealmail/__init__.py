"""Sealmail: a self-hosted mail server where every mailbox is its own encrypted database."""

__version__ = "0.1.0"
