"""Render a kustomize overlay: `kubectl kustomize` when installed, else a small renderer.

The renderer covers what deploy/k8s uses and nothing more: ``resources`` (files and
directories with a kustomization), ``namespace``, ``labels`` (metadata only),
``images`` (newName/newTag/digest) and ``patches`` given as strategic-merge files, with an
optional ``target`` kind. Lists of named items (containers, env) merge by ``name``.
A test renders every overlay both ways where kubectl exists and compares the results.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

from fleet_runtime.errors import ConfigError

Resource = dict[str, Any]
_UNSUPPORTED = ("helmCharts", "components", "replacements", "patchesJson6902", "generators")


def render(directory: Path, *, use_kubectl: bool = True) -> list[Resource]:
    """The resources an overlay (or base) directory renders to."""
    kubectl = shutil.which("kubectl") if use_kubectl else None
    if kubectl is not None:
        result = subprocess.run(
            [kubectl, "kustomize", str(directory)],
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        if result.returncode != 0:
            raise ConfigError(
                f"kubectl kustomize {directory} failed: {result.stderr.strip()}",
                fix="fix the kustomization it names",
            )
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]
    return _render(directory)


def _load_documents(path: Path) -> list[Resource]:
    try:
        return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(
            f"cannot read {path}: {exc}", fix="fix the YAML or the path in kustomization.yaml"
        ) from None


def _render(directory: Path) -> list[Resource]:
    path = directory / "kustomization.yaml"
    if not path.exists():
        raise ConfigError(f"{directory} has no kustomization.yaml", fix="point at an overlay")
    spec = _load_documents(path)[0] if path.read_text().strip() else {}
    unsupported = [key for key in _UNSUPPORTED if key in spec]
    if unsupported:
        raise ConfigError(
            f"{path}: {', '.join(unsupported)} need kubectl kustomize",
            fix="install kubectl, or keep to resources/namespace/labels/images/patches",
        )
    resources: list[Resource] = []
    for entry in spec.get("resources") or []:
        target = directory / entry
        resources += _render(target) if target.is_dir() else _load_documents(target)
    for patch in spec.get("patches") or []:
        for document in _load_documents(directory / patch["path"]):
            kind = (patch.get("target") or {}).get("kind")
            for resource in resources:
                if _matches(resource, document, kind):
                    merged = _merge(resource, document)
                    if kind is not None:
                        merged["metadata"]["name"] = resource["metadata"]["name"]
                    resource.clear()
                    resource.update(merged)
    for item in spec.get("labels") or []:
        for resource in resources:
            resource["metadata"].setdefault("labels", {}).update(item.get("pairs") or {})
    for resource in resources:
        _set_images(resource, spec.get("images") or [])
        if spec.get("namespace"):
            resource["metadata"]["namespace"] = spec["namespace"]
    return resources


def _matches(resource: Resource, patch: Resource, kind: str | None) -> bool:
    if kind is not None:
        return bool(resource.get("kind") == kind)
    return bool(
        resource.get("kind") == patch.get("kind")
        and resource["metadata"].get("name") == patch["metadata"].get("name")
    )


def _merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = copy.deepcopy(base)
        for key, value in patch.items():
            merged[key] = _merge(base[key], value) if key in base else copy.deepcopy(value)
        return merged
    if isinstance(base, list) and isinstance(patch, list) and _named(base + patch):
        # Strategic merge of named items: merged in place, new ones appended.
        patches = {item["name"]: item for item in patch}
        merged_list = [
            _merge(item, patches[item["name"]]) if item["name"] in patches else item
            for item in base
        ]
        present = {item["name"] for item in base}
        return merged_list + [copy.deepcopy(i) for i in patch if i["name"] not in present]
    return copy.deepcopy(patch)


def _named(items: list[Any]) -> bool:
    return all(isinstance(item, dict) and "name" in item for item in items)


def _set_images(node: Any, images: list[dict[str, str]]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                node[key] = _new_image(value, images)
            else:
                _set_images(value, images)
    elif isinstance(node, list):
        for item in node:
            _set_images(item, images)


def _new_image(ref: str, images: list[dict[str, str]]) -> str:
    name, _, tag = ref.partition(":")
    for image in images:
        if image.get("name") == name:
            name = image.get("newName", name)
            if image.get("digest"):
                return f"{name}@{image['digest']}"
            tag = image.get("newTag", tag)
    return f"{name}:{tag}" if tag else name
