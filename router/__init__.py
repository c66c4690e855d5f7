"""contact-router: omni-channel contact routing service."""
