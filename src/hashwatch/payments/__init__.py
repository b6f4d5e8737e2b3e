"""payments stage of hashwatch."""
