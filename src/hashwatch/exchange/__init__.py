"""exchange stage of hashwatch."""
