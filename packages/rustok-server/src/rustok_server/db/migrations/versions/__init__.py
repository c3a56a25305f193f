"""Migration revisions, one module per schema change."""
