"""Pull-request commands: diff, --changed, canary analysis and edits, PR comments."""
