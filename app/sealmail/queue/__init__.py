"""Durable work queues: outbound SMTP copies (forwarding, submission) and webhook calls."""
