"""Stage 6: executing slices — where a slice's commands run (subprocess or Docker)."""
