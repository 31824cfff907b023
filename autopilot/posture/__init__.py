"""Vault security posture: each vault's security settings read and graded as Business Continuity
Center grades them, the controls it lacks with their remedies, and the fixes the rules allow."""
