"""formats stage of hashwatch."""
