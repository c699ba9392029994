"""Image references: every image a deployment runs is pinned to a release."""

from __future__ import annotations

import re

# Images whose releases are numbered with two parts (SeaweedFS 4.48, PostgreSQL 18.6);
# every other image needs major.minor.patch, so floating tags such as `postgres:18` or
# `mongo:8.0` fail.
TWO_PART_RELEASES = frozenset({"chrislusf/seaweedfs", "postgres"})
_FLOATING = frozenset({"latest", "stable", "edge", "main", "master", "nightly", "dev"})
_VERSION = re.compile(r"^v?(\d+(?:\.\d+)*)")


def split_image(ref: str) -> tuple[str, str | None, str | None]:
    """``registry/name:tag@digest`` -> (repository, tag, digest)."""
    rest, _, digest = ref.partition("@")
    slash = rest.rfind("/")
    colon = rest.rfind(":")
    if colon > slash:
        return rest[:colon], rest[colon + 1 :], digest or None
    return rest, None, digest or None


def _repository_name(repository: str) -> str:
    parts = repository.split("/")
    if len(parts) > 1 and ("." in parts[0] or ":" in parts[0] or parts[0] == "localhost"):
        parts = parts[1:]
    name = "/".join(parts)
    return name.removeprefix("library/")


def unpinned_reason(ref: str, *, built_here: bool = False) -> str | None:
    """Why ``ref`` is not pinned, or None when it is.

    An image built from this repository (``built_here``) needs an explicit tag other than
    a floating one; an image pulled from a registry needs a digest or a full release tag.
    """
    repository, tag, digest = split_image(ref.strip())
    if digest and digest.startswith("sha256:"):
        return None
    if not tag:
        return "no tag: it means `latest`, whatever that is on the day of the pull"
    if "${" in tag or tag.startswith("$"):
        return None if built_here else "its tag is a variable: the file does not say what runs"
    if tag.lower() in _FLOATING:
        return f"tag {tag!r} floats to a new image on every release"
    if built_here:
        return None
    match = _VERSION.match(tag)
    if match is None:
        return f"tag {tag!r} is not a release number"
    parts = match.group(1).count(".") + 1
    needed = 2 if _repository_name(repository) in TWO_PART_RELEASES else 3
    if parts < needed:
        return (
            f"tag {tag!r} names a release line, not a release "
            f"({needed} version parts needed): it moves with every patch"
        )
    return None


_FROM = re.compile(
    r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)(?:\s+AS\s+(?P<stage>\S+))?", re.I
)
_COPY_FROM = re.compile(r"^\s*COPY\s+.*--from=(?P<image>\S+)", re.I)


def dockerfile_images(text: str) -> list[str]:
    """Images a Dockerfile pulls: its FROM lines and ``COPY --from=image`` (stages left out)."""
    stages: set[str] = set()
    images = []
    for line in text.splitlines():
        match = _FROM.match(line) or _COPY_FROM.match(line)
        if match is None:
            continue
        image = match["image"]
        if image.lower() not in stages and image != "scratch":
            images.append(image)
        stage = match.groupdict().get("stage")
        if stage:
            stages.add(stage.lower())
    return images
