"""Email: templates rendered to HTML and plain text, and sending over SMTP (from the worker)."""
