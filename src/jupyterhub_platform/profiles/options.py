"""Validate what a user asked for (spawn form or REST ``user_options``) against what they may use.

Fail closed: unknown keys, unknown choices, wrong types and custom images outside the pattern are
400 errors naming the option; asking for something that exists but is not granted is a 403.
Nothing reaches KubeSpawner's override machinery before it passed here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tornado import web

from .access import Offer, default_offer
from .catalogue import Catalogue
from .model import CUSTOM_CHOICE, IMAGE_OPTION, SIZE_OPTION, UNLISTED_SUFFIX, ImageChoice, Size
from .schema import IMAGE_REF

PROFILE_KEY = "profile"
CUSTOM_IMAGE_KEY = IMAGE_OPTION + UNLISTED_SUFFIX
KNOWN_KEYS = (PROFILE_KEY, IMAGE_OPTION, CUSTOM_IMAGE_KEY, SIZE_OPTION)
FORM_PREFIX = "profile-option-{slug}--"


class OptionError(web.HTTPError):
    """A refused spawn request; the message is shown on the form and returned by the REST API."""

    def __init__(self, status: int, message: str, refusal: str = ""):
        """``refusal``: the reason word when it is neither "not_entitled" (403) nor
        "invalid_options" (400), e.g. ``quota``."""
        super().__init__(
            status, "%s", message, reason="Forbidden" if status == 403 else "Bad Request"
        )
        self.jupyterhub_message = message
        self.refusal = refusal


@dataclass(frozen=True)
class Selection:
    """A validated request: one offered profile and one allowed value per option."""

    offer: Offer
    size: Size
    image: ImageChoice | None = None
    custom_image: str | None = None

    def as_user_options(self) -> dict[str, str]:
        """The canonical user_options KubeSpawner's ``_load_profile`` reads."""
        options = {PROFILE_KEY: self.offer.slug, SIZE_OPTION: self.size.key}
        if self.custom_image is not None:
            options[CUSTOM_IMAGE_KEY] = self.custom_image
        else:
            assert self.image is not None
            options[IMAGE_OPTION] = self.image.key
        return options


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def validate_options(
    user_options: Any, catalogue: Catalogue, available: tuple[Offer, ...]
) -> Selection:
    """The :class:`Selection` ``user_options`` ask for, or :class:`OptionError`."""
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, Mapping):
        raise OptionError(400, "user_options must be an object")
    for key, value in user_options.items():
        if key not in KNOWN_KEYS:
            raise OptionError(
                400, f"Unknown option {_shown(key)}; known options: {', '.join(KNOWN_KEYS)}"
            )
        if not isinstance(value, str) or not value:
            raise OptionError(
                400, f"Option {key!r} must be a non-empty string, got {_shown(value)}"
            )
    offer = _profile(user_options.get(PROFILE_KEY), catalogue, available)
    size = _size(offer, user_options.get(SIZE_OPTION))
    custom = user_options.get(CUSTOM_IMAGE_KEY)
    if custom is not None:
        if user_options.get(IMAGE_OPTION, CUSTOM_CHOICE) != CUSTOM_CHOICE:
            raise OptionError(
                400, f"Options {IMAGE_OPTION!r} and {CUSTOM_IMAGE_KEY!r} conflict; send one of them"
            )
        return Selection(offer, size, custom_image=_custom_image(offer, custom))
    return Selection(offer, size, image=_image(offer, user_options.get(IMAGE_OPTION)))


def _profile(slug: str | None, catalogue: Catalogue, available: tuple[Offer, ...]) -> Offer:
    if slug is None:
        offer = default_offer(available)
        if offer is None:
            raise OptionError(403, "No server profile is available to you; ask an administrator")
        return offer
    offer = next((o for o in available if o.slug == slug), None)
    if offer is not None:
        return offer
    if catalogue.get(slug) is None:
        raise OptionError(400, f"Option 'profile': there is no profile {_shown(slug)}")
    raise OptionError(403, f"Option 'profile': you are not allowed to use profile {slug!r}")


def _size(offer: Offer, key: str | None) -> Size:
    if key is None:
        return offer.default_size()
    size = offer.size(key)
    if size is not None:
        return size
    if not any(s.key == key for s in offer.profile.sizes):
        raise OptionError(400, f"Option 'size': profile {offer.slug!r} has no size {_shown(key)}")
    raise OptionError(403, f"Option 'size': you are not allowed to use size {key!r}")


def _image(offer: Offer, key: str | None) -> ImageChoice:
    if key == CUSTOM_CHOICE:
        raise OptionError(400, f"Option 'image': a custom image needs {CUSTOM_IMAGE_KEY!r}")
    if key is None:
        image = offer.default_image()
        if image is None:
            raise OptionError(400, f"Option 'image': profile {offer.slug!r} needs an image")
        return image
    image = offer.image(key)
    if image is not None:
        return image
    if not any(c.key == key for c in offer.profile.images):
        raise OptionError(400, f"Option 'image': profile {offer.slug!r} has no image {_shown(key)}")
    raise OptionError(403, f"Option 'image': you are not allowed to use image {key!r}")


def _custom_image(offer: Offer, value: str) -> str:
    if offer.profile.custom_image is None:
        raise OptionError(
            400, f"Option {CUSTOM_IMAGE_KEY!r}: profile {offer.slug!r} takes no custom image"
        )
    if offer.custom_image is None:
        raise OptionError(
            403, f"Option {CUSTOM_IMAGE_KEY!r}: you are not allowed to use a custom image"
        )
    if not (IMAGE_REF.fullmatch(value) and offer.custom_image.accepts(value)):
        raise OptionError(
            400,
            f"Option {CUSTOM_IMAGE_KEY!r}: {_shown(value)} is not an image this profile allows",
        )
    return value


def options_from_form(formdata: Mapping[str, list]) -> dict[str, str]:
    """Form fields of the chosen profile as user_options; empty fields and other profiles' dropped.

    The custom image text box counts only when the image select says "custom", so a value left in
    the box while a listed image is chosen is not sent.
    """
    slug = (formdata.get(PROFILE_KEY) or [""])[0]
    if not slug:
        return {}
    prefix = FORM_PREFIX.format(slug=slug)
    options: dict[str, str] = {PROFILE_KEY: slug}
    for name, values in formdata.items():
        value = values[0].strip() if values and isinstance(values[0], str) else ""
        if name.startswith(prefix) and value:
            options[name[len(prefix) :]] = value
    if options.get(IMAGE_OPTION) != CUSTOM_CHOICE:
        options.pop(CUSTOM_IMAGE_KEY, None)
    elif CUSTOM_IMAGE_KEY in options:
        del options[IMAGE_OPTION]
    return options
