"""scan stage of hashwatch."""
