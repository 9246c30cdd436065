"""SMTP: the inbound MX, submission, and what they share."""
