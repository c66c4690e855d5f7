"""Tools around contact-router, built on its client: the simulator, scenarios, and the
`report` and `staffing` commands (reached as `contact-router simulate|report|staffing`)."""
