"""Real services run on loopback for integration tests and Molecule scenarios."""
