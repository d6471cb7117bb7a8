"""HTTP API of the alert rules, mounted by the web app under ``/api/alerts``.

The includer (``indexer.web``) adds its token guard router-wide
(``Depends(require_token_for_writes)``): reads are open, every POST/PATCH/DELETE needs the
bearer token. Settings come from ``request.app.state.settings``. The routes are plain
``def`` because the rules store is blocking Kafka I/O (FastAPI runs them in a thread pool).
"""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response
from kafka.errors import KafkaError
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from newswire import runtime
from newswire.records import Article
from processors.alerts.matcher import check_rule, rule_matches
from processors.alerts.rules import Channel, Rule, RuleFilters, secret_notes
from processors.alerts.settings import AlertSettings
from processors.alerts.store import RuleError, RuleStore

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/alerts", tags=["alerts"])
ALL_ALERTS = 1_000_000  # store.alerts() keeps every alert state in memory anyway


class RuleIn(BaseModel):
    """A rule as the API takes it (id, created, updated are set by the server)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    query: str = Field("", max_length=4000)
    filters: RuleFilters = RuleFilters()
    channels: list[Channel] = Field(default_factory=list)
    throttle: float = Field(0.0, ge=0)
    digest: Literal["hourly", "daily"] | None = None
    paused: bool = False


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    query: str | None = Field(None, max_length=4000)
    filters: RuleFilters | None = None
    channels: list[Channel] | None = None
    throttle: float | None = Field(None, ge=0)
    digest: Literal["hourly", "daily"] | None = None
    paused: bool | None = None


class DryRun(BaseModel):
    model_config = ConfigDict(extra="forbid")

    article: Article
    rule: RuleIn | None = None
    rule_id: str | None = None


def _store(request: Request) -> RuleStore:
    try:
        return RuleStore(runtime.with_kafka(request.app.state.settings))
    except RuntimeError as exc:
        raise HTTPException(503, str(exc)) from None


def _alert_settings(request: Request) -> AlertSettings:
    return getattr(request.app.state.settings, "alerts", None) or AlertSettings()


def _call(fn: Any, *args: Any, **kw: Any) -> Any:
    """Run a store operation, mapping its errors to HTTP statuses."""
    try:
        return fn(*args, **kw)
    except RuleError as exc:
        status = 404 if str(exc).startswith("no alert rule") else 400
        raise HTTPException(status, str(exc)) from None
    except (KafkaError, TimeoutError) as exc:
        log.warning("alerts api kafka unavailable error=%s", type(exc).__name__)
        raise HTTPException(503, "the rules store (Kafka) is not reachable") from None


def _found(store: RuleStore, ref: str) -> Rule:
    rule = _call(store.get, ref)
    if rule is None:
        raise HTTPException(404, f"no alert rule {ref!r}")
    return rule  # type: ignore[no-any-return]


@router.get("", summary="List alert rules (and, with ?alerts=N, each rule's latest N alerts)")
def list_rules(request: Request,
               alerts: Annotated[int, Query(ge=0, le=50, description=(
                   "latest alerts per rule to include under 'alerts' (rule id -> list); "
                   "0 = none"))] = 0) -> dict[str, Any]:
    with _store(request) as store:
        rules = _call(store.all_rules)
        # one read of the alerts topic for every rule (the page lists them all at once)
        recent = _call(store.alerts, None, limit=ALL_ALERTS) if alerts and rules else []
    out: dict[str, Any] = {"rules": [r.public() for r in rules]}
    if alerts:
        latest: dict[str, list[dict[str, Any]]] = {r.id: [] for r in rules}
        for alert in recent:  # newest first
            shown = latest.get(alert.rule_id)
            if shown is not None and len(shown) < alerts:
                shown.append(alert.model_dump(mode="json"))
        out["alerts"] = latest
    return out


@router.post("", status_code=201, summary="Create an alert rule")
def create_rule(request: Request, body: RuleIn) -> dict[str, Any]:
    # channels name their secrets (settings NEWSWIRE_ALERTS__SECRETS__<NAME>); a channel
    # with a secret value inline is refused by the store with that explanation (400), and
    # so is a webhook to a private address unless fetch.allow_private_networks. 'notes' say
    # which secret signs each webhook (default 'default') and which secrets this server
    # lacks: only a note, as the workers that deliver may run elsewhere with their own
    try:
        rule = Rule(**{**body.model_dump(exclude={"channels"}), "channels": tuple(body.channels)})
    except ValidationError as exc:
        raise HTTPException(422, exc.errors(include_url=False, include_input=False)) from None
    with _store(request) as store:
        _call(store.save, rule)
    return {"rule": rule.public(), "notes": secret_notes(rule, _alert_settings(request))}


@router.post("/test", summary="Dry-run: does an article match a rule?")
def dry_run(request: Request, body: DryRun) -> dict[str, Any]:
    if (body.rule is None) == (body.rule_id is None):
        raise HTTPException(400, "give exactly one of 'rule' or 'rule_id'")
    if body.rule_id is not None:
        with _store(request) as store:
            rule = _found(store, body.rule_id)
    else:
        assert body.rule is not None
        rule = Rule(**body.rule.model_dump(exclude={"channels"}))
    problem = check_rule(rule)
    if problem:
        raise HTTPException(400, problem)
    return {"match": rule_matches(rule, body.article), "rule_id": rule.id,
            "article_id": body.article.id}


@router.get("/{rule}", summary="One rule and its latest alerts")
def show_rule(request: Request, rule: str, limit: int = 20) -> dict[str, Any]:
    with _store(request) as store:
        found = _found(store, rule)
        recent = _call(store.alerts, found.id, limit=max(1, min(limit, 500)))
    return {"rule": found.public(), "alerts": [a.model_dump(mode="json") for a in recent]}


@router.patch("/{rule}", summary="Change a rule")
def patch_rule(request: Request, rule: str,
               body: Annotated[RulePatch, Body()]) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    if "channels" in changes:  # keep typed channels (their secrets) rather than dumped dicts
        changes["channels"] = tuple(body.channels or ())
    with _store(request) as store:
        updated = _call(store.update, rule, **changes)
    return {"rule": updated.public(), "notes": secret_notes(updated, _alert_settings(request))}


@router.post("/{rule}/pause", summary="Pause a rule")
def pause_rule(request: Request, rule: str) -> dict[str, Any]:
    with _store(request) as store:
        return {"rule": _call(store.set_paused, rule, True).public()}


@router.post("/{rule}/resume", summary="Resume a rule")
def resume_rule(request: Request, rule: str) -> dict[str, Any]:
    with _store(request) as store:
        return {"rule": _call(store.set_paused, rule, False).public()}


@router.delete("/{rule}", status_code=204, summary="Delete a rule")
def delete_rule(request: Request, rule: str) -> Response:
    with _store(request) as store:
        _call(store.delete, rule)
    return Response(status_code=204)
