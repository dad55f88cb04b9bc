"""What one user may pick: the catalogue filtered by their :class:`Entitlements`."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from jupyterhub_platform.policy.entitlements import Entitlements, ProfileRule
from jupyterhub_platform.policy.model import Policy

from .catalogue import Catalogue
from .model import CUSTOM_CHOICE, IMAGE_OPTION, SIZE_OPTION, CustomImage, ImageChoice, Profile, Size


def entitlements_from_rules(rules: Iterable[ProfileRule], groups: Iterable[str]) -> Entitlements:
    """Entitlements from the profile files' ``allowed_groups`` alone (no policy file configured):
    the group policy's own membership rule (:meth:`Policy.profiles_for`) with no grants."""
    mine = frozenset(groups)
    profiles = Policy(profile_rules=tuple(rules)).profiles_for(mine)
    return Entitlements(groups=mine, login_allowed=True, profiles=profiles)


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
