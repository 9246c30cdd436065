"""The jobs component: background workers (webhooks, outbound delivery, scheduled tasks)."""
