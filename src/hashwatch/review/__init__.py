"""Review: a scan's case in the database for a team (cases now; votes and consensus later)."""
