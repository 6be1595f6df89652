"""carepath's domain: intakes, cases and the Registry (eventsourcing and stdlib only)."""
