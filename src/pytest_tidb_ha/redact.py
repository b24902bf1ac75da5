"""Secret redaction for everything the plugin prints or stores.

IMPORT INTO URLs carry S3 credentials as query parameters (seed #46735:
``access-key=...&secret-access-key=...``). TiDB itself masks them as ``xxxxxx``
in ``mysql.tidb_import_jobs.parameters``; we do the same for every string that
reaches a log line, a timeline event, a JUnit property or an artifact file.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

MASK = "xxxxxx"

# Query/option keys whose values are secrets (S3, GCS, Azure, generic).
SECRET_KEYS = (
    "access-key",
    "access_key",
    "accesskey",
    "secret-access-key",
    "secret_access_key",
    "secretaccesskey",
    "session-token",
    "session_token",
    "sas-token",
    "sas_token",
    "credentials-file",
    "account-key",
    "account_key",
    "password",
    "passwd",
)

_KEY_ALT = "|".join(re.escape(k) for k in sorted(SECRET_KEYS, key=len, reverse=True))
# key=value inside URLs or option lists; value runs to the next separator.
_KV_RE = re.compile(rf"(?i)(?<![A-Za-z0-9_-])({_KEY_ALT})(\s*[=:]\s*)([^&\s'\"`,;)]+)")
# JSON-ish "key": "value"
_JSON_RE = re.compile(rf"(?i)(\"(?:{_KEY_ALT})\"\s*:\s*\")([^\"]*)(\")")
# mysql://user:password@host
_URL_PW_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^:/@\s]+:)([^@\s/]+)(@)")


def redact(text: str) -> str:
    """Mask every secret value in *text*; idempotent."""
    if not text:
        return text
    text = _JSON_RE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    text = _KV_RE.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _URL_PW_RE.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", text)
    return text


def redact_obj(obj: Any) -> Any:
    """Recursively redact strings inside dicts/lists/tuples (for JSON artifacts)."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if isinstance(k, str) and k.lower() in SECRET_KEYS and isinstance(v, str) and v:
                out[k] = MASK
            else:
                out[k] = redact_obj(v)
        return out
    if isinstance(obj, Sequence) and not isinstance(obj, (bytes, bytearray)):
        return [redact_obj(v) for v in obj]
    return obj
