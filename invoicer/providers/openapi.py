"""Request bodies checked against a vendor's OpenAPI 3.0 spec (JSON or YAML) or Swagger 2.0 (simulators and contract tests only).

The specs live in ../shared/vendor-specs/ beside the repository; the product runs without them, and
then nothing is checked (`validator` answers None). Needs the test extras (jsonschema,
openapi-schema-validator); without them there is no checking either.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

SPECS = Path(__file__).resolve().parents[3] / "shared" / "vendor-specs"


@lru_cache(maxsize=8)
def _components(path: str) -> dict:
    with open(path, encoding="utf-8") as fh:
        if path.endswith((".yml", ".yaml")):  # ServiceTitan's definitions are YAML
            import yaml

            spec = yaml.safe_load(fh)
        else:
            spec = json.load(fh)
    if "components" in spec:
        return spec["components"]
    return {"schemas": spec.get("definitions") or {}}  # Swagger 2.0 (DocuSign): the same schemas, elsewhere


@lru_cache(maxsize=64)
def validator(path: str, schema: str):
    """A validator of one component schema with OpenAPI's write rules (readOnly refused, nullable
    honoured, formats checked), or None when the spec or the libraries are not here."""
    if not Path(path).exists():
        return None
    try:
        from openapi_schema_validator import OAS30WriteValidator, oas30_format_checker
    except ImportError:
        return None
    components = _components(path)
    return OAS30WriteValidator({"$ref": f"#/components/schemas/{schema}", "components": components,
                                "definitions": components["schemas"]},  # Swagger 2.0 refs #/definitions/..
                               format_checker=oas30_format_checker)


def errors(check, body: Any) -> list[str]:
    """What the schema refuses in `body`, one line each ("field/path: message"); [] without a validator."""
    if check is None:
        return []
    found = sorted(check.iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    return [f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"[:300] for e in found]


def _properties(components: dict, schema: dict) -> tuple[dict | None, dict]:
    """(declared properties, or None for a schema that declares none; the schema) after $ref and allOf."""
    while "$ref" in schema:
        schema = components["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    props = dict(schema["properties"]) if "properties" in schema else None
    for part in schema.get("allOf") or []:
        more, _ = _properties(components, part)
        if more is not None:
            props = {**(props or {}), **more}
    return props, schema


def unknown(path: str, schema: str, body: Any) -> list[str]:
    """Property names in `body` that the schema does not declare, at any depth ("a/b/c"): a vendor
    ignores or refuses them, and either way a misspelt field would go unnoticed. [] without the spec."""
    if not Path(path).exists():
        return []
    components = _components(path)
    found: list[str] = []

    def walk(node: Any, sch: dict, where: str) -> None:
        props, sch = _properties(components, sch)
        if isinstance(node, dict) and props is not None:
            for k, v in node.items():
                if k in props:
                    walk(v, props[k], f"{where}/{k}" if where else k)
                elif not sch.get("additionalProperties"):
                    found.append(f"{where}/{k}" if where else k)
        elif isinstance(node, list) and "items" in sch:
            for i, item in enumerate(node):
                walk(item, sch["items"], f"{where}/{i}")

    walk(body, {"$ref": f"#/components/schemas/{schema}"}, "")
    return found
