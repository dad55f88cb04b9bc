"""The spawn form: display data only, rendered with our own template.

The template never sees a :class:`~.model.Profile`: it gets the view built here (names,
descriptions, sizes), so images, env, mounts or other override content cannot reach the browser.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PackageLoader, select_autoescape

from .access import Offer, default_offer
from .model import CUSTOM_CHOICE, IMAGE_OPTION, SIZE_OPTION, Profile, Resources, Sidecar, Size
from .options import CUSTOM_IMAGE_KEY, FORM_PREFIX, Selection

TEMPLATE = "profiles_form.html"


@dataclass(frozen=True)
class ChoiceView:
    key: str
    label: str
    selected: bool


@dataclass(frozen=True)
class OptionView:
    field: str
    label: str
    choices: tuple[ChoiceView, ...]
    custom_field: str | None = None
    custom_label: str | None = None
    custom_value: str = ""


@dataclass(frozen=True)
class ProfileView:
    slug: str
    display_name: str
    description: str
    kind: str
    selected: bool
    options: tuple[OptionView, ...]
    #: the sidecar applications started with the server, with their own resources
    sidecars: tuple[str, ...] = ()


def _resource_parts(res: Resources) -> list[str]:
    return [f"{res.cpu_limit:g} CPU", f"{format_bytes(res.mem_limit)} RAM"]


def size_label(size: Size) -> str:
    parts = _resource_parts(size.resources)
    if size.gpu:
        parts.append(f"{size.gpu.count} GPU")
    return f"{size.display_name} ({', '.join(parts)})"


def sidecar_label(sidecar: Sidecar) -> str:
    return f"{sidecar.label} ({', '.join(_resource_parts(sidecar.resources))})"


def format_bytes(amount: int) -> str:
    for unit, factor in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if amount >= factor:
            return f"{amount / factor:g} {unit}"
    return f"{amount} B"


Refusal = Callable[[Profile, Size], str | None]
"""Why a server of a profile at a size would be refused now (a quota), or None."""


def _no_refusal(profile: Profile, size: Size) -> None:
    return None


def form_view(
    available: Sequence[Offer], last: Selection | None, refusal: Refusal = _no_refusal
) -> tuple[ProfileView, ...]:
    """One card per offer; ``last`` (the user's previous valid choices) preselected; a size
    ``refusal`` refuses says so next to it."""
    default = default_offer(tuple(available))
    chosen = last.offer.slug if last else (default.slug if default else None)
    return tuple(
        _profile_view(
            o, o.slug == chosen, last if last and last.offer.slug == o.slug else None, refusal
        )
        for o in available
    )


def _size_choice(offer: Offer, size: Size, selected: bool, refusal: Refusal) -> ChoiceView:
    label = size_label(size)
    if refusal(offer.profile, size):
        label += " (over your quota: stop a server first)"
    return ChoiceView(size.key, label, selected)


def _profile_view(
    offer: Offer, selected: bool, last: Selection | None, refusal: Refusal
) -> ProfileView:
    prefix = FORM_PREFIX.format(slug=offer.slug)
    if last is None:
        default = offer.default_image()
        image_key = default.key if default else CUSTOM_CHOICE
    else:
        image_key = last.image.key if last.image else CUSTOM_CHOICE
    images = [ChoiceView(c.key, c.display_name, c.key == image_key) for c in offer.images]
    custom = offer.custom_image
    if custom is not None:
        images.append(
            ChoiceView(CUSTOM_CHOICE, f"{custom.display_name}…", image_key == CUSTOM_CHOICE)
        )
    size_key = last.size.key if last else offer.default_size().key
    image_option = OptionView(
        field=prefix + IMAGE_OPTION,
        label="Image",
        choices=tuple(images),
        custom_field=prefix + CUSTOM_IMAGE_KEY if custom else None,
        custom_label=custom.display_name if custom else None,
        custom_value=(last.custom_image or "") if last else "",
    )
    size_option = OptionView(
        field=prefix + SIZE_OPTION,
        label="Size",
        choices=tuple(_size_choice(offer, s, s.key == size_key, refusal) for s in offer.sizes),
    )
    # A profile defined with one fixed image has nothing to choose or tell: no Image row.
    fixed_image = len(offer.profile.images) == 1 and offer.profile.custom_image is None
    return ProfileView(
        slug=offer.slug,
        display_name=offer.profile.display_name,
        description=offer.profile.description,
        kind=offer.profile.kind,
        selected=selected,
        options=(size_option,) if fixed_image else (image_option, size_option),
        sidecars=tuple(sidecar_label(s) for s in offer.profile.sidecars),
    )


@functools.lru_cache(maxsize=8)
def _environment(extra_template_paths: tuple[str, ...]) -> Environment:
    """One Jinja environment per template path list: compiled templates are cached in it (and
    recompiled when a template file changes), instead of compiling the form on every request."""
    return Environment(
        loader=ChoiceLoader(
            [FileSystemLoader(list(extra_template_paths)), PackageLoader("jupyterhub_platform")]
        ),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )


def render_form(
    views: Sequence[ProfileView],
    extra_template_paths: Sequence[str] = (),
    quota_lines: Sequence[str] = (),
) -> str:
    """The form; ``quota_lines`` (each limit and its use) are shown above the profiles."""
    template = _environment(tuple(extra_template_paths)).get_template(TEMPLATE)
    return template.render(profiles=views, quota_lines=list(quota_lines))
