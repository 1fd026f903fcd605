"""Stage 5: planning — cutting a split call's items into slices."""
