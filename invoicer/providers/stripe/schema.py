"""Stripe's request parameters, as the `stripe` package declares them, checked on a decoded form body.

The oracle is the `stripe` PyPI package's typed request params (`stripe.params.InvoiceCreateParams`, ...:
TypedDicts "generated from our OpenAPI spec"). `validator()` turns them into a checker of what Stripe
receives: a form body in bracket notation, decoded into nested dicts/lists with strings at the leaves
(`transform.decode`, as the simulator does). It reports what Stripe refuses with a 400
invalid_request_error, in Stripe's words where known:
- a name the operation does not take, at any depth: "Received unknown parameter: automatic_tax[x]"
  (code parameter_unknown, `param` the bracketed path);
- a required parameter left out: "Missing required param: query." (code parameter_missing);
- integers that do not parse ("Invalid integer: 1.5", code parameter_invalid_integer), booleans other
  than true/false ("Invalid boolean: yes"), enums (Literal) outside their values ("Invalid
  collection_method: must be one of charge_automatically or send_invoice"), lists ("Invalid array") and
  objects ("Invalid hash"), decimals (at most 12 decimal places), nested objects recursively.
An enum the SDK declares open (`Literal[...] | str`, so that old clients survive new values) is held to
its documented values, as the API of the pinned version is. Wording marked "(unconfirmed)" was not
found in Stripe's documentation or in errors seen from Stripe.

The `stripe` package is a test dependency, not a runtime one: it is imported only when `validator()` is
first called, and without it `validator()` returns None. So it does with a release older than the
`stripe.params` module (stripe-python 13; before it the params were classes inside the resources, not
read here). The introspection is done once per process.
"""
from __future__ import annotations

import functools
import json
import math
import re
import sys
import threading
import types
import typing
from collections.abc import Callable
from decimal import Decimal, InvalidOperation

# operation -> the stripe.params TypedDict that declares its parameters
OPERATIONS: dict[str, str] = {
    "customers.create": "CustomerCreateParams",
    "customers.retrieve": "CustomerRetrieveParams",
    "customers.list": "CustomerListParams",
    "customers.search": "CustomerSearchParams",
    "invoices.create": "InvoiceCreateParams",
    "invoices.retrieve": "InvoiceRetrieveParams",
    "invoices.list": "InvoiceListParams",
    "invoices.search": "InvoiceSearchParams",
    "invoices.finalize_invoice": "InvoiceFinalizeInvoiceParams",
    "invoices.send_invoice": "InvoiceSendInvoiceParams",
    "invoiceitems.create": "InvoiceItemCreateParams",
    "invoiceitems.list": "InvoiceItemListParams",
}

Validate = Callable[[str, dict], list[str]]


class Problem(str):
    """One refusal: the string is Stripe's message; `param` the parameter (bracket path), `code` Stripe's
    error code (None where Stripe sends none or it is not known)."""

    def __new__(cls, message: str, param: str | None, code: str | None = None):
        self = super().__new__(cls, message)
        self.param = param
        self.code = code
        return self

    def __repr__(self) -> str:
        return f"Problem({str(self)!r}, param={self.param!r})"


def _child(path: str, key) -> str:
    return f"{path}[{key}]" if path else str(key)


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _shape(value) -> str:
    return "object" if isinstance(value, dict) else "array" if isinstance(value, list) else "scalar"


def _as_map(value):
    # the decoder turns a[0]=x&a[1]=y into a list whatever a is; as a hash its keys are "0", "1"
    return {str(i): v for i, v in enumerate(value)} if isinstance(value, list) else value


# ---------------------------------------------------------------- checkers of decoded values

class _Node:
    shape = "scalar"

    def check(self, value, path: str, out: list) -> None:
        raise NotImplementedError


class _Str(_Node):
    def check(self, value, path, out):
        if not isinstance(value, str):
            out.append(Problem(f"Invalid string: {_show(value)}", path))  # (unconfirmed wording)


class _Int(_Node):
    def check(self, value, path, out):
        if not (isinstance(value, str) and re.fullmatch(r"-?\d+", value)):
            out.append(Problem(f"Invalid integer: {_show(value)}", path, "parameter_invalid_integer"))


class _Bool(_Node):
    def check(self, value, path, out):
        if value not in ("true", "false"):
            out.append(Problem(f"Invalid boolean: {_show(value)}", path))


class _Decimal(_Node):
    def check(self, value, path, out):
        try:
            number = Decimal(value) if isinstance(value, str) else None
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            out.append(Problem(f"Invalid decimal: {_show(value)}", path))  # (unconfirmed wording)
        elif -number.as_tuple().exponent > 12:
            out.append(Problem(f"Invalid decimal: {value} (at most 12 decimal places)", path))  # (unconfirmed)


class _Float(_Node):
    def check(self, value, path, out):
        try:
            ok = isinstance(value, str) and value == value.strip() and math.isfinite(float(value))
        except ValueError:
            ok = False
        if not ok:
            out.append(Problem(f"Invalid float: {_show(value)}", path))  # (unconfirmed wording)


class _Enum(_Node):
    def __init__(self, values):
        self.values = tuple(values)

    def check(self, value, path, out):
        if value not in self.values:
            shown = [v for v in self.values if v != ""] or list(self.values)
            listed = " or ".join(shown) if len(shown) <= 2 else ", ".join(shown[:-1]) + f", or {shown[-1]}"
            out.append(Problem(f"Invalid {path}: must be one of {listed}", path))  # (unconfirmed for 3+ values)


class _Array(_Node):
    shape = "array"

    def __init__(self, item: _Node):
        self.item = item

    def check(self, value, path, out):
        if not isinstance(value, list):
            out.append(Problem("Invalid array", path))
            return
        for i, v in enumerate(value):
            self.item.check(v, _child(path, i), out)


class _Map(_Node):
    """Dict[str, X]: any keys (metadata)."""
    shape = "object"

    def __init__(self, item: _Node | None):
        self.item = item

    def check(self, value, path, out):
        value = _as_map(value)
        if not isinstance(value, dict):
            out.append(Problem("Invalid hash", path))  # (unconfirmed wording)
            return
        if self.item is not None:
            for k, v in value.items():
                self.item.check(v, _child(path, k), out)


class _Object(_Node):
    """A TypedDict: only its names, its required names present, each value of its type."""
    shape = "object"

    def __init__(self, name: str):
        self.name = name
        self.fields: dict[str, _Node] = {}
        self.required: tuple[str, ...] = ()

    def check(self, value, path, out):
        value = _as_map(value)
        if not isinstance(value, dict):
            out.append(Problem("Invalid hash", path))  # (unconfirmed wording)
            return
        for k in value:
            if k not in self.fields:
                out.append(Problem(f"Received unknown parameter: {_child(path, k)}", _child(path, k),
                                   "parameter_unknown"))
        for k in self.required:
            if k not in value:
                out.append(Problem(f"Missing required param: {_child(path, k)}.", _child(path, k),
                                   "parameter_missing"))
        for k, v in value.items():
            if k in self.fields:
                self.fields[k].check(v, _child(path, k), out)


class _Union(_Node):
    shape = "any"

    def __init__(self, alternatives: list[_Node], empty: bool):
        self.alternatives = alternatives
        self.empty = empty  # Literal[''] among them: an empty string unsets

    def check(self, value, path, out):
        if self.empty and value == "":
            return
        tried = []
        for alt in self.alternatives:
            found: list = []
            alt.check(value, path, found)
            if not found:
                return
            tried.append((alt, found))
        # report what the alternative of the value's own shape says (an object for a hash, ...)
        shape = _shape(value)
        for alt, found in tried:
            if alt.shape == shape:
                out.extend(found)
                return
        out.extend(tried[0][1])


class _Unchecked(_Node):
    shape = "any"

    def check(self, value, path, out):
        pass


# ---------------------------------------------------------------- TypedDict -> checkers

_LOCK = threading.RLock()
_COMPILED: dict[type, _Object] = {}
_UNCHECKED: set[str] = set()


def _namespaces(owner) -> list[dict]:
    """Where the string annotations of `owner` resolve: its module, then its bases' modules."""
    spaces, todo, seen = [], [owner], set()
    while todo:
        cls = todo.pop(0)
        if id(cls) in seen:
            continue
        seen.add(id(cls))
        module = sys.modules.get(getattr(cls, "__module__", ""), None)
        if module is not None:
            spaces.append(vars(module))
        todo += [b for b in getattr(cls, "__orig_bases__", ()) if isinstance(b, type)]
    return spaces


def _resolve(annotation, owner):
    if isinstance(annotation, typing.ForwardRef):
        annotation = annotation.__forward_arg__
    if not isinstance(annotation, str):
        return annotation
    error: Exception | None = None
    for space in _namespaces(owner):
        try:
            return eval(annotation, dict(space))  # the installed SDK's own annotations
        except NameError as exc:
            error = exc
    raise error or NameError(annotation)


def _request_options(cls) -> set[str]:
    """Keys a params TypedDict inherits from stripe's RequestOptions (api_key, idempotency_key, ...):
    options of the client, never sent as parameters."""
    for base in getattr(cls, "__orig_bases__", ()):
        if getattr(base, "__name__", "") == "RequestOptions":
            return set(getattr(base, "__annotations__", {}))
        if isinstance(base, type):
            found = _request_options(base)
            if found:
                return found
    return set()


def _object(cls) -> _Object:
    node = _COMPILED.get(cls)
    if node is not None:
        return node
    node = _COMPILED[cls] = _Object(cls.__name__)  # before the fields: a type may contain itself
    options = _request_options(cls)
    node.fields = {k: _compile(v, cls) for k, v in cls.__annotations__.items() if k not in options}
    node.required = tuple(sorted(k for k in getattr(cls, "__required_keys__", ()) if k not in options))
    return node


def _compile(annotation, owner) -> _Node:
    import typing_extensions  # a dependency of the stripe package

    annotation = _resolve(annotation, owner)
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    wrappers = {typing.NotRequired, typing.Required, typing_extensions.NotRequired, typing_extensions.Required}
    for name in ("ReadOnly",):
        for module in (typing, typing_extensions):
            if hasattr(module, name):
                wrappers.add(getattr(module, name))
    if origin in wrappers:
        return _compile(args[0], owner)
    if typing_extensions.is_typeddict(annotation):
        return _object(annotation)
    if origin in (typing.Union, types.UnionType):
        literals = [v for a in args if typing.get_origin(a) is typing.Literal for v in typing.get_args(a)]
        others = [a for a in args if typing.get_origin(a) is not typing.Literal and a is not type(None)]
        alternatives: list[_Node] = []
        named = [v for v in literals if v != ""]
        if named:  # `Literal[...] | str` is an open enum in the SDK; the API takes the listed values
            alternatives.append(_Enum(named))
            others = [a for a in others if a is not str]
        alternatives += [_compile(a, owner) for a in others]
        if not alternatives:
            return _Enum(literals)
        return _Union(alternatives, "" in literals)
    if origin is typing.Literal:
        return _Enum(args)
    if origin is list:
        return _Array(_compile(args[0], owner) if args else _Unchecked())
    if origin is dict:
        return _Map(_compile(args[1], owner) if len(args) == 2 else None)
    if getattr(origin or annotation, "__name__", "") == "UntypedStripeObject":
        return _Map(None)
    leaf = {str: _Str, int: _Int, bool: _Bool, Decimal: _Decimal, float: _Float}.get(annotation)
    if leaf is not None:
        return leaf()
    if annotation is not typing.Any:
        _UNCHECKED.add(f"{getattr(owner, '__name__', owner)}: {annotation!r}")
    return _Unchecked()


def check(params: dict, typed) -> list[Problem]:
    """What Stripe would refuse in `params` (decoded form, strings at the leaves) for the TypedDict `typed`."""
    with _LOCK:
        node = _object(typed)
    out: list[Problem] = []
    node.check(_as_map(params), "", out)
    return out


def unchecked() -> set[str]:
    """Annotations met so far that no rule here understands (accepted as they are): should stay empty."""
    return set(_UNCHECKED)


def _params_module():
    try:
        import stripe.params as params_module
    except ImportError:
        return None
    return params_module


def params_type(operation: str):
    """The stripe.params TypedDict of an operation; None without the stripe package."""
    if operation not in OPERATIONS:
        raise ValueError(f"unknown Stripe operation {operation!r}; known: {sorted(OPERATIONS)}")
    module = _params_module()
    return getattr(module, OPERATIONS[operation], None) if module is not None else None


@functools.cache
def validator() -> Validate | None:
    """`validate(operation, decoded_params) -> [Problem, ...]` (empty: Stripe would accept the parameters),
    or None when the stripe package is not installed. Operations: OPERATIONS' keys; one whose TypedDict
    the installed package lacks is not checked (see `validate.operations`)."""
    if _params_module() is None:
        return None
    with _LOCK:
        nodes = {op: _object(typed) for op in OPERATIONS if (typed := params_type(op)) is not None}

    def validate(operation: str, params: dict) -> list[Problem]:
        if operation not in OPERATIONS:
            raise ValueError(f"unknown Stripe operation {operation!r}; known: {sorted(OPERATIONS)}")
        node = nodes.get(operation)
        out: list[Problem] = []
        if node is not None:
            node.check(_as_map(params), "", out)
        return out

    validate.operations = frozenset(nodes)
    return validate
