"""carepath's domain: intakes, cases and the Registry that records them (eventsourcing + stdlib only)."""
