"""store stage of hashwatch."""
