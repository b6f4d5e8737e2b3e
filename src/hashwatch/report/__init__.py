"""report stage of hashwatch."""
