"""search layer (see DESIGN.md)."""
