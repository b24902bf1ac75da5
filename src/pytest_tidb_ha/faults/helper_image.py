"""The fault-helper image: built by the plugin when it is missing, on a public base.

Without root (a GitHub runner, a developer's laptop) network faults run from a helper
container that joins the target's network namespace (:class:`.netns.HelperRunner`);
that image needs ``sh``, ``iptables``, ``tc``, ``ip`` and ``python3``. The pingcap
images have none of them, and a user's machine has no image of ours -- so the plugin
builds one from the small Dockerfile below when it is missing: ``alpine`` from
Docker Hub plus those packages. An image the user names with
``--ha-fault-helper-image`` is used as given, never built or pulled: if it is missing,
the fault fails, and the test with it, naming the image.

``PYTEST_TIDB_HA_FAULT_HELPER_BASE`` changes the base (an internal mirror, or an image
that already has the tools: then the build needs no network at all).
"""

from __future__ import annotations

import io
import logging
import os
import threading
from typing import Any

log = logging.getLogger("pytest_tidb_ha.faults")

#: The plugin's own helper image; built from :data:`DOCKERFILE` when missing.
DEFAULT_HELPER_IMAGE = "pytest-tidb-ha/fault-helper:1"
DEFAULT_BASE = "alpine:3.20"
BASE_ENV = "PYTEST_TIDB_HA_FAULT_HELPER_BASE"
TOOLS = ("sh", "iptables", "tc", "ip", "python3")

#: Installs the tools only when the base lacks them (so a base that has them builds offline).
DOCKERFILE = """\
ARG BASE=alpine:3.20
FROM ${BASE}
RUN missing=""; for t in iptables tc ip python3; do command -v "$t" >/dev/null 2>&1 \\
      || missing="$missing $t"; done; \\
    if [ -n "$missing" ]; then apk add --no-cache iptables iproute2 python3; fi; \\
    for t in iptables tc ip python3; do command -v "$t" >/dev/null \\
      || { echo "fault helper: $t missing" >&2; exit 1; }; done
LABEL org.pytest-tidb-ha.image="fault-helper"
"""

_BUILD_LOCK = threading.Lock()


class HelperImageError(RuntimeError):
    """The helper image is missing and could not be built (the message says what to do)."""


def helper_base() -> str:
    return os.environ.get(BASE_ENV, "").strip() or DEFAULT_BASE


def _exists(docker: Any, image: str) -> bool:
    try:
        docker.images.get(image)
    except Exception:  # noqa: BLE001 - docker.errors.ImageNotFound (or an engine error)
        return False
    return True


def ensure_helper_image(docker: Any, image: str, *, base: str | None = None,
                        network_mode: str | None = None) -> str:
    """*image*, present locally: the plugin's own is built when missing, any other must exist.

    ``network_mode``: of the build's RUN step (``none`` when the base already has the tools).
    """
    if _exists(docker, image):
        return image
    if image != DEFAULT_HELPER_IMAGE:
        raise HelperImageError(
            f"fault helper image {image!r} is not present locally (named by "
            f"--ha-fault-helper-image; it is never pulled or built: it needs "
            f"{', '.join(TOOLS)})")
    base = base or helper_base()
    with _BUILD_LOCK:
        if _exists(docker, image):
            return image
        log.info("building the fault helper image %s from %s", image, base)
        try:
            kwargs: dict[str, Any] = {"fileobj": io.BytesIO(DOCKERFILE.encode()), "tag": image,
                                      "buildargs": {"BASE": base}, "rm": True, "pull": False}
            if network_mode:
                kwargs["network_mode"] = network_mode
            docker.images.build(**kwargs)
        except Exception as exc:
            raise HelperImageError(
                f"fault helper image {image!r} is missing and could not be built from {base!r} "
                f"({type(exc).__name__}: {exc}); run as root next to the Docker engine "
                f"(nsenter), set {BASE_ENV} to a reachable base, or name an image with "
                f"{', '.join(TOOLS)} in --ha-fault-helper-image") from exc
    return image
