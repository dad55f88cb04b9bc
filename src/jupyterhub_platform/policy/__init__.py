"""The group policy: one place that says what each identity-provider group gets."""

from .config import PlatformPolicy
from .entitlements import OPEN, Entitlements, ProfileRule
from .errors import PolicyError
from .loader import load_policy, parse_policy, policy_from_text
from .model import GroupGrant, Policy, ProfileGrant, RoleSpec

__all__ = [
    "OPEN",
    "Entitlements",
    "GroupGrant",
    "PlatformPolicy",
    "Policy",
    "PolicyError",
    "ProfileGrant",
    "ProfileRule",
    "RoleSpec",
    "load_policy",
    "parse_policy",
    "policy_from_text",
]
