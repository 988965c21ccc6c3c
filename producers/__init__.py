"""Producers that feed modelmon's input topics: the seeded fraud-model simulator."""
