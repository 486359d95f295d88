"""Backup sets: manifest (what a set holds, HMAC-signed), crypto (GPG + HMAC keys),
retention (which sets a prune keeps). Pure code: the runtime does the I/O on services."""
