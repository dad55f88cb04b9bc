"""What every hub-managed service shares: the application base, the hub REST client, the
HubOAuth web base and the policy/profile loader. Nothing here imports ``devcluster`` or needs
the ``dev`` extra: services run in the hub image."""
