"""Timed jobs (open and close intakes, run draws, expire invitations) and their APScheduler wiring."""
