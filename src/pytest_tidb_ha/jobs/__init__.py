"""See docs/contracts.md."""
