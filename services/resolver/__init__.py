"""Resolver: postcode → constituency → MP (or a campaign's fixed target). Owns ``resolutions``."""
