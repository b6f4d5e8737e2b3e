"""signals stage of hashwatch."""
