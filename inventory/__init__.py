"""The ledger: what runs where across the unified cloud and the clouds that must move onto it."""
