"""index stage of hashwatch."""
