"""``jupyterhub-platform-backup``: home-volume backups with restic, per user (docs/backup.md)."""
