#!/usr/bin/env python3
"""Writes body-schemas.json: the JSON request bodies of Engine API v1.41 and v1.56, per route,
as the gate's canonicaliser reads them (the union of both versions' fields).

Usage: gen-body-schemas.py ENGINE_API_DIR > host/src/policy/body-schemas.json

A node is "s" (string), "i" (integer), "n" (number), "b" (boolean), "*" (any JSON),
{"a": node} (a list), or {"o": {field: node}, "m": node} (an object: its known fields, and the
node of every other key when it is a map). An object the spec gives no fields is a Go struct
with none: it takes no keys.
"""
import json
import sys

import yaml


def resolve(spec, s, depth=0):
    if depth > 40:
        return "*"
    if "$ref" in s:
        name = s["$ref"].split("/")[-1]
        return resolve(spec, spec["definitions"][name], depth + 1)
    if "allOf" in s:
        out = None
        for part in s["allOf"]:
            node = resolve(spec, part, depth + 1)
            if node == {"o": {}}:
                continue  # `type: object` beside the parts that name the fields
            out = union(out, node)
        extra = {k: v for k, v in s.items() if k != "allOf"}
        if "properties" in extra:
            out = union(out, resolve(spec, extra, depth + 1))
        return out
    t = s.get("type")
    if t == "object" or "properties" in s or "additionalProperties" in s:
        node = {"o": {}}
        for k, v in (s.get("properties") or {}).items():
            node["o"][k] = resolve(spec, v, depth + 1)
        ap = s.get("additionalProperties")
        if isinstance(ap, dict):
            node["m"] = resolve(spec, ap, depth + 1)
        elif ap is True:
            node["m"] = "*"
        return node
    if t == "array":
        return {"a": resolve(spec, s.get("items", {}), depth + 1)}
    return {"string": "s", "integer": "i", "number": "n", "boolean": "b"}.get(t, "*")


def union(a, b):
    if a is None:
        return b
    if b is None or a == b:
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        if "o" in a and "o" in b:
            props = dict(a["o"])
            for k, v in b["o"].items():
                props[k] = union(props.get(k), v)
            node = {"o": props}
            m = union(a.get("m"), b.get("m"))
            if m is not None:
                node["m"] = m
            return node
        if "a" in a and "a" in b:
            return {"a": union(a["a"], b["a"])}
    if {a, b} == {"i", "n"} if isinstance(a, str) and isinstance(b, str) else False:
        return "n"
    return "*"


def main():
    root = sys.argv[1]
    out = {}
    for version in ["v1.41", "v1.56"]:
        spec = yaml.safe_load(open(f"{root}/{version}.yaml"))
        for path, ops in spec["paths"].items():
            for method, op in ops.items():
                if not isinstance(op, dict):
                    continue
                for p in op.get("parameters", []):
                    if p.get("in") != "body":
                        continue
                    s = p.get("schema", {})
                    if s.get("type") == "string":
                        continue  # a stream: tar, image, context
                    key = f"{method.upper()} {path}"
                    out[key] = union(out.get(key), resolve(spec, s))
    json.dump(dict(sorted(out.items())), sys.stdout, sort_keys=True, separators=(",", ":"))
    sys.stdout.write("\n")


main()
