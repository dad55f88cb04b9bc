"""What one user may pick: the catalogue filtered by their :class:`Entitlements`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from types import MappingProxyType

from jupyterhub_platform.policy.entitlements import OPEN, Entitlements, ProfileRule

from .catalogue import Catalogue
from .model import CUSTOM_CHOICE, IMAGE_OPTION, SIZE_OPTION, CustomImage, ImageChoice, Profile, Size


def entitlements_from_rules(rules: Iterable[ProfileRule], groups: Iterable[str]) -> Entitlements:
    """Entitlements from the profile files' ``allowed_groups`` alone (no policy file configured).

    Same membership rule as the group policy: OPEN means anyone, otherwise one shared group;
    a profile with an option that has nothing left to pick is not offered.
    """
    mine = frozenset(groups)

    def member(allowed: frozenset[str] | None) -> bool:
        return allowed is OPEN or bool(allowed & mine)

    profiles = {}
    for rule in rules:
        if not member(rule.allowed_groups):
            continue
        options = {
            option: frozenset(key for key, allowed in choices.items() if member(allowed))
            for option, choices in rule.choices.items()
        }
        if all(options.values()):
            profiles[rule.slug] = MappingProxyType(options)
    return Entitlements(groups=mine, login_allowed=True, profiles=MappingProxyType(profiles))


@dataclass(frozen=True)
class Offer:
    """One profile as a given user sees it: only the choices they are entitled to."""

    profile: Profile
    images: tuple[ImageChoice, ...]
    custom_image: CustomImage | None
    sizes: tuple[Size, ...]

    @property
    def slug(self) -> str:
        return self.profile.slug

    def default_image(self) -> ImageChoice | None:
        return _default(self.images)

    def default_size(self) -> Size:
        return _default(self.sizes)

    def image(self, key: str) -> ImageChoice | None:
        return next((c for c in self.images if c.key == key), None)

    def size(self, key: str) -> Size | None:
        return next((s for s in self.sizes if s.key == key), None)


def _default(items):
    return next((i for i in items if i.default), items[0] if items else None)


def offers(catalogue: Catalogue, entitlements: Entitlements) -> tuple[Offer, ...]:
    """The profiles ``entitlements`` allow, each cut down to its allowed choices, in display order."""
    out = []
    for profile in catalogue.profiles:
        allowed = entitlements.profiles.get(profile.slug)
        if allowed is None:
            continue
        images_ok = allowed.get(IMAGE_OPTION, frozenset())
        sizes_ok = allowed.get(SIZE_OPTION, frozenset())
        offer = Offer(
            profile=profile,
            images=tuple(c for c in profile.images if c.key in images_ok),
            custom_image=profile.custom_image if CUSTOM_CHOICE in images_ok else None,
            sizes=tuple(s for s in profile.sizes if s.key in sizes_ok),
        )
        if (offer.images or offer.custom_image) and offer.sizes:
            out.append(offer)
    return tuple(out)


def default_offer(available: tuple[Offer, ...]) -> Offer | None:
    """The profile marked default if this user may use it, else the first one shown."""
    return next((o for o in available if o.profile.default), available[0] if available else None)
