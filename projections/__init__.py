"""carepath's read side and storage wiring: persistence settings, read models and their runner."""
