"""Generated from proto/contactrouter/v1 by `make proto`; do not edit."""
