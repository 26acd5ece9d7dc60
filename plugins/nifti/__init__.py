"""NIfTI labelmaps with label-table sidecars."""
