"""Updates: campaign news to subscribers. Owns ``subscribers``."""
