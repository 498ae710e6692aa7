"""Models of the exports app arrive with their issue (see ../shared/DESIGN.md)."""
