"""The settings of an isolated agent's gateway, as the controller passes them in its environment and the
gateway (`controller.gateway`) reads them. Stdlib only: the gateway imports nothing heavier at start."""

UPSTREAM_ENV = "WC_GATEWAY_UPSTREAM"
"""`host:port` of the agent on its internal network."""
LISTEN_ENV = "WC_GATEWAY_LISTEN"
"""The port relayed to the agent (the agent port)."""
PROXY_ENV = "WC_GATEWAY_PROXY"
"""The egress proxy's port; unset: no proxy (egress None)."""
ALLOW_ENV = "WC_GATEWAY_ALLOW"
"""The allow-list, `host:port,*.domain:port,...` (`core.egress.parse_rules`)."""
