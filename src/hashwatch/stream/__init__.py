"""stream stage of hashwatch."""
