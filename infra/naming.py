"""Names the unified cloud gives things: Kubernetes objects, buckets and Pulumi resources."""

from __future__ import annotations

import hashlib
import re

# RFC 1123 label: what Kubernetes accepts as a namespace or object name.
K8S_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
K8S_LABEL_MAX = 63
# S3 bucket names as every S3-compatible store accepts them (no dots: path-style and TLS).
BUCKET_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")


def slug(text: str) -> str:
    """Lowercase ASCII letters, digits and single dashes; everything else becomes a dash."""
    return re.sub(r"-{2,}", "-", re.sub(r"[^a-z0-9]", "-", text.lower())).strip("-")


def short_hash(text: str, length: int = 6) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:length]


def bounded(name: str, limit: int, *, identity: str) -> str:
    """`name` if it fits, else its head plus a hash of `identity`, so truncation stays unique."""
    if len(name) <= limit:
        return name
    suffix = short_hash(identity)
    return name[: limit - len(suffix) - 1].rstrip("-") + "-" + suffix


def k8s_name(*parts: str) -> str:
    """A valid, deterministic Kubernetes name from readable parts (department, system code…)."""
    raw = "-".join(slug(p) for p in parts if slug(p))
    if not raw:
        raise ValueError(f"no usable characters for a Kubernetes name in {parts!r}")
    return bounded(raw, K8S_LABEL_MAX, identity="/".join(parts))


def bucket_name(*parts: str) -> str:
    name = bounded("-".join(slug(p) for p in parts if slug(p)), 63, identity="/".join(parts))
    return name if len(name) >= 3 else name + "-" + short_hash("/".join(parts))


# Kubernetes label values are ASCII: the province's cities by their usual romanisation.
CITY_LABELS = {
    "省级": "province",
    "南京市": "nanjing",
    "无锡市": "wuxi",
    "徐州市": "xuzhou",
    "常州市": "changzhou",
    "苏州市": "suzhou",
    "南通市": "nantong",
    "连云港市": "lianyungang",
    "淮安市": "huaian",
    "盐城市": "yancheng",
    "扬州市": "yangzhou",
    "镇江市": "zhenjiang",
    "泰州市": "taizhou",
    "宿迁市": "suqian",
}


def city_label(city: str) -> str:
    """An ASCII label value for a city (南京 and 南京市 alike); the name goes in annotations."""
    known = CITY_LABELS.get(city) or CITY_LABELS.get(f"{city}市")
    return known or slug(city) or f"city-{short_hash(city)}"
