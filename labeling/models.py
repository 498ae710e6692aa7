"""Models of the labeling app arrive with their issue (see ../shared/DESIGN.md)."""
