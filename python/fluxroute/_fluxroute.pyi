from os import PathLike
from typing import Any, Iterable, Literal, Mapping, Optional, Union

Api = Literal["chat", "responses", "messages"]
Body = Union[bytes, bytearray, str, Mapping[str, Any]]

EMBEDDED_POLICY: str

class RouteError(Exception):
    """A rejected request."""

    code: str
    status: int
    param: Optional[str]
    message: str
    body: dict[str, Any]

class PolicyError(ValueError):
    """A policy that does not load."""

    diagnostics: list[dict[str, Any]]

class Decision:
    """Which backing model serves a request, and why."""

    @property
    def model(self) -> str: ...
    @property
    def requested(self) -> str: ...
    @property
    def mode(self) -> Literal["auto", "tier", "pinned", "passthrough", "redirect"]: ...
    @property
    def routed(self) -> bool: ...
    @property
    def tier(self) -> str: ...
    @property
    def rule(self) -> Optional[str]: ...
    @property
    def fallbacks(self) -> list[str]: ...
    @property
    def headers(self) -> dict[str, str]: ...
    @property
    def features(self) -> dict[str, Any]: ...
    @property
    def cost(self) -> float: ...
    @property
    def meta(self) -> dict[str, str]: ...
    def headers_for(self, model: str) -> Optional[dict[str, str]]: ...
    def forward(self, model: Optional[str] = None) -> bytes: ...
    def to_dict(self) -> dict[str, Any]: ...

class Router:
    """The routing engine with a hot-swappable policy."""

    def __init__(self, policy_path: Optional[Union[str, PathLike[str]]] = None) -> None: ...
    def route(
        self,
        body: Body,
        tenant: Optional[str] = None,
        tags: Iterable[str] = (),
        unavailable: Iterable[str] = (),
        api: Api = "chat",
    ) -> Decision: ...
    def models(self, tenant: Optional[str] = None) -> dict[str, Any]: ...
    def reload(self) -> dict[str, Any]: ...
    @property
    def policy_name(self) -> str: ...
    @property
    def fingerprint(self) -> str: ...

def check(path: Union[str, PathLike[str]]) -> list[dict[str, Any]]: ...
