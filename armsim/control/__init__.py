"""The control API under /_armsim/: seeding, the clock, settings, faults, statistics, tokens."""
