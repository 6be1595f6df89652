"""Browser tests: real Chromium against a real carepath server."""
