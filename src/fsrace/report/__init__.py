"""Reports: every report reads the same search result."""
