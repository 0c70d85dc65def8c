"""Partners, partner uploads and code mappings (R-PART) — built in issue #6."""
