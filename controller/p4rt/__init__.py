"""P4Runtime client glue over finsy: the connection to the switch, with reconnect and backoff."""
