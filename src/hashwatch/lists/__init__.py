"""lists stage of hashwatch."""
