"""web stage of hashwatch."""
