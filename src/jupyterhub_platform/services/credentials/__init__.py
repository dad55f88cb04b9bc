"""Per-user platform credentials: declared as sets in the policy, issued by providers, injected at
spawn through one per-server Secret and renewed in running servers by the credentials service
(docs/credentials.md)."""
