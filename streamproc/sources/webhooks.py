"""CI/CD webhooks -> cicd-events records (topics/cicd-events.yaml). No I/O.

One function per provider reads its native payload and returns the record it means (in the
contract's field names, so the binding's decoder validates it as it would a Kafka record),
or why it is ignored (an event or a state that says nothing final: a run still in progress,
a ping). Each provider also names the delivery id replays are recognised by, and how its
requests are authenticated:

    provider  authenticated by                             delivery id
    github    X-Hub-Signature-256: sha256=HMAC(secret,     X-GitHub-Delivery
              body) (hex)
    gitlab    X-Gitlab-Token: secret                       X-Gitlab-Event-UUID
    jenkins   ?token=secret in the URL, or                 build url + number + phase
              X-Streamproc-Token: secret                   (the Notification plugin sends
              (the Notification plugin sends no header)     none)

Mapping (what pipeline_failed and deployment read):

    GitHub workflow_run (action completed)  -> pipeline: project owner/repo/<workflow name>,
        branch head_branch, status conclusion (failure, timed_out, startup_failure: failure),
        commit head_sha, author triggering_actor/actor, duration updated_at - run_started_at
    GitHub deployment_status (success, failure, error) -> deployment: service owner/repo,
        environment, version deployment.ref, deployer creator, status
    GitLab Pipeline Hook (success, failed, canceled, skipped) -> pipeline: project
        path_with_namespace, branch ref, duration, build_url object_attributes.url
    GitLab Deployment Hook (success, failed, canceled) -> deployment
    Jenkins (phase FINALIZED: after post-build steps; QUEUED/STARTED/COMPLETED are ignored,
        so a build is judged once) -> pipeline: project name, status SUCCESS/FAILURE/
        UNSTABLE/ABORTED/NOT_BUILT -> success/failure/warning/cancelled/skipped
"""

from __future__ import annotations

import hashlib
import hmac
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any


@dataclass(slots=True, frozen=True)
class Mapped:
    record: dict[str, Any]
    delivery: str | None  # the replay key; None: the provider gave none


@dataclass(slots=True, frozen=True)
class Ignored:
    reason: str  # one of IGNORED_REASONS (a metric label)
    detail: str


class BadPayload(ValueError):
    """The body is not what the provider sends for this event (400)."""


# Why an event is not judged: closed, so it can label a counter.
IGNORED_REASONS = ("event_type", "in_progress", "phase")


def verify(
    provider: str, secret: str, headers: Mapping[str, str], body: bytes, query: Mapping[str, str]
) -> bool:
    """Whether the request carries the provider's proof of ``secret`` (constant time)."""
    if provider == "github":
        given = headers.get("X-Hub-Signature-256", "")
        want = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(given.strip().lower().encode(), want.encode())
    if provider == "gitlab":
        return hmac.compare_digest(headers.get("X-Gitlab-Token", "").encode(), secret.encode())
    if provider == "jenkins":
        given = headers.get("X-Streamproc-Token") or query.get("token") or ""
        return hmac.compare_digest(given.encode(), secret.encode())
    return False


def iso(value: Any) -> str | None:
    """ISO 8601 (UTC, ``Z``) of a provider's time: ISO 8601 (GitHub), GitLab's
    ``2016-08-12 15:23:28 UTC`` / ``2021-04-28 21:50:00 +0200``, or epoch milliseconds
    (Jenkins). A fraction of a second is kept to the millisecond (two builds ending in the
    same second stay in order); none is written when there is none. None when absent or
    unreadable."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, int | float) and not isinstance(value, bool):
            seconds = value / 1000.0 if value > 1e11 else float(value)
            whole = math.floor(seconds)
            # the milliseconds from the number as given: a float's micro-second rounding
            # (1795939395.7 -> .699999) must not move the time back a millisecond
            millis = round((seconds - whole) * 1000)
            if millis == 1000:
                whole, millis = whole + 1, 0
            dt = datetime.fromtimestamp(whole, UTC).replace(microsecond=millis * 1000)
        else:
            text = str(value).strip()
            if text.endswith(" UTC"):
                text = text[:-4] + "+00:00"
            text = text.replace(" +", "+").replace(" -", "-")
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            if dt.tzinfo is None:
                dt = dt.replace(tzinfo=UTC)
        dt = dt.astimezone(UTC)
        text = dt.strftime("%Y-%m-%dT%H:%M:%S")
        millis = dt.microsecond // 1000
        return f"{text}.{millis:03d}Z" if millis else f"{text}Z"
    except (ValueError, OverflowError, OSError):
        return None


def _now() -> str:
    return datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _get(data: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


def _object(payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        raise BadPayload(f"a webhook body is a JSON object, not {type(payload).__name__}")
    return payload


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if v is not None and v != ""}


def _seconds_between(start: Any, end: Any) -> float | None:
    a, b = iso(start), iso(end)
    if a is None or b is None:
        return None
    delta = (
        datetime.fromisoformat(b.replace("Z", "+00:00"))
        - datetime.fromisoformat(a.replace("Z", "+00:00"))
    ).total_seconds()
    return delta if delta >= 0 else None


# -- GitHub -----------------------------------------------------------------------------------

_GITHUB_CONCLUSION = {
    "failure": "failure",
    "timed_out": "failure",
    "startup_failure": "failure",
    "success": "success",
    "cancelled": "cancelled",
    "skipped": "skipped",
    "neutral": "neutral",
    "action_required": "action_required",
    "stale": "stale",
}


def github(headers: Mapping[str, str], payload: Any) -> Mapped | Ignored:
    event = headers.get("X-GitHub-Event", "")
    delivery = headers.get("X-GitHub-Delivery") or None
    if event == "workflow_run":
        return _github_workflow_run(_object(payload), delivery)
    if event == "deployment_status":
        return _github_deployment_status(_object(payload), delivery)
    return Ignored(
        "event_type",
        f"GitHub event {event[:60]!r} is not judged (workflow_run and deployment_status are)",
    )


def _github_workflow_run(p: dict[str, Any], delivery: str | None) -> Mapped | Ignored:
    run = p.get("workflow_run")
    if not isinstance(run, dict):
        raise BadPayload("workflow_run event without a workflow_run object")
    action = p.get("action")
    if action != "completed":
        return Ignored(
            "in_progress",
            f"workflow_run action {str(action)[:40]!r}: only completed runs are judged",
        )
    conclusion = str(run.get("conclusion") or "")
    repo = _get(p, "repository", "full_name") or _get(run, "repository", "full_name") or ""
    name = run.get("name") or run.get("path") or "workflow"
    actor = (
        _get(run, "triggering_actor", "login")
        or _get(run, "actor", "login")
        or _get(p, "sender", "login")
    )
    number = run.get("run_number")
    title = run.get("display_title") or ""
    return Mapped(
        _clean(
            {
                "timestamp": iso(run.get("updated_at")) or _now(),
                "type": "pipeline",
                "status": _GITHUB_CONCLUSION.get(conclusion, conclusion or "unknown"),
                "project": f"{repo}/{name}" if repo else str(name),
                "branch": run.get("head_branch"),
                "commit": run.get("head_sha"),
                "author": actor,
                "duration": _seconds_between(run.get("run_started_at"), run.get("updated_at")),
                "build_url": run.get("html_url"),
                "description": f"{name} #{number} {conclusion}: {title}".strip(": ")
                if number is not None
                else f"{name} {conclusion}",
            }
        ),
        delivery,
    )


_DEPLOY_FINAL = {
    "success": "success",
    "failure": "failure",
    "error": "failure",
    "failed": "failure",
    "canceled": "cancelled",
    "cancelled": "cancelled",
}


def _github_deployment_status(p: dict[str, Any], delivery: str | None) -> Mapped | Ignored:
    status = p.get("deployment_status")
    deployment = p.get("deployment") or {}
    if not isinstance(status, dict) or not isinstance(deployment, dict):
        raise BadPayload("deployment_status event without deployment_status and deployment objects")
    state = str(status.get("state") or "")
    if state not in _DEPLOY_FINAL or state in ("canceled", "cancelled"):
        return Ignored(
            "in_progress", f"deployment state {state[:40]!r}: success, failure and error are judged"
        )
    return Mapped(
        _clean(
            {
                "timestamp": iso(status.get("updated_at") or status.get("created_at")) or _now(),
                "type": "deployment",
                "status": _DEPLOY_FINAL[state],
                "service": _get(p, "repository", "full_name"),
                "environment": status.get("environment") or deployment.get("environment"),
                "version": deployment.get("ref") or str(deployment.get("sha") or "")[:12] or None,
                "commit": deployment.get("sha"),
                "deployer": _get(status, "creator", "login")
                or _get(deployment, "creator", "login"),
                "release_notes": status.get("description") or deployment.get("description"),
            }
        ),
        delivery,
    )


# -- GitLab -----------------------------------------------------------------------------------

_GITLAB_PIPELINE = {
    "success": "success",
    "failed": "failure",
    "canceled": "cancelled",
    "skipped": "skipped",
}


def gitlab(headers: Mapping[str, str], payload: Any) -> Mapped | Ignored:
    event = headers.get("X-Gitlab-Event", "")
    delivery = headers.get("X-Gitlab-Event-UUID") or None
    if event == "Pipeline Hook":
        return _gitlab_pipeline(_object(payload), delivery)
    if event == "Deployment Hook":
        return _gitlab_deployment(_object(payload), delivery)
    return Ignored(
        "event_type",
        f"GitLab event {event[:60]!r} is not judged (Pipeline Hook and Deployment Hook are)",
    )


def _gitlab_pipeline(p: dict[str, Any], delivery: str | None) -> Mapped | Ignored:
    attrs = p.get("object_attributes")
    if not isinstance(attrs, dict):
        raise BadPayload("Pipeline Hook without object_attributes")
    status = str(attrs.get("status") or "")
    if status not in _GITLAB_PIPELINE:
        return Ignored(
            "in_progress",
            f"pipeline status {status[:40]!r}: success, failed, canceled and skipped are judged",
        )
    project = _get(p, "project", "path_with_namespace") or _get(p, "project", "name") or ""
    number = attrs.get("iid") or attrs.get("id")
    return Mapped(
        _clean(
            {
                "timestamp": iso(attrs.get("finished_at"))
                or iso(attrs.get("created_at"))
                or _now(),
                "type": "pipeline",
                "status": _GITLAB_PIPELINE[status],
                "project": project,
                "branch": attrs.get("ref"),
                "commit": attrs.get("sha"),
                "author": _get(p, "user", "username") or _get(p, "user", "name"),
                "duration": attrs.get("duration")
                if isinstance(attrs.get("duration"), int | float)
                else None,
                "build_url": attrs.get("url")
                or (
                    f"{_get(p, 'project', 'web_url')}/-/pipelines/{attrs.get('id')}"
                    if _get(p, "project", "web_url")
                    else None
                ),
                "description": attrs.get("name") or f"Pipeline #{number} {status}",
            }
        ),
        delivery,
    )


def _gitlab_deployment(p: dict[str, Any], delivery: str | None) -> Mapped | Ignored:
    status = str(p.get("status") or "")
    if status not in _DEPLOY_FINAL or status in ("canceled", "cancelled"):
        return Ignored(
            "in_progress", f"deployment status {status[:40]!r}: success and failed are judged"
        )
    return Mapped(
        _clean(
            {
                "timestamp": iso(p.get("status_changed_at")) or _now(),
                "type": "deployment",
                "status": _DEPLOY_FINAL[status],
                "service": _get(p, "project", "path_with_namespace") or _get(p, "project", "name"),
                "environment": p.get("environment"),
                "version": p.get("ref") or p.get("short_sha"),
                "commit": p.get("short_sha"),
                "deployer": _get(p, "user", "username") or _get(p, "user", "name"),
                "release_notes": p.get("commit_title"),
            }
        ),
        delivery,
    )


# -- Jenkins (Notification plugin) --------------------------------------------------------------

_JENKINS_STATUS = {
    "SUCCESS": "success",
    "FAILURE": "failure",
    "UNSTABLE": "warning",
    "ABORTED": "cancelled",
    "NOT_BUILT": "skipped",
}


def jenkins(headers: Mapping[str, str], payload: Any) -> Mapped | Ignored:
    p = _object(payload)
    build = p.get("build")
    if not isinstance(build, dict):
        raise BadPayload("a Jenkins Notification plugin body has a build object")
    phase = str(build.get("phase") or "").upper()
    url = build.get("full_url") or build.get("url") or p.get("url") or ""
    delivery = f"{url}#{build.get('number')}#{phase}"
    if phase != "FINALIZED":
        return Ignored(
            "phase", f"build phase {phase[:40]!r}: a build is judged once, when FINALIZED"
        )
    status = str(build.get("status") or "").upper()
    given_scm = build.get("scm")
    scm: dict[str, Any] = given_scm if isinstance(given_scm, dict) else {}
    branch = scm.get("branch") or _get(build, "parameters", "branch")
    if isinstance(branch, str) and branch.startswith("origin/"):
        branch = branch[len("origin/") :]
    duration = build.get("duration", p.get("duration"))
    millis = (
        float(duration)
        if isinstance(duration, int | float) and not isinstance(duration, bool)
        else None
    )
    seconds = None if millis is None else millis / 1000.0
    started = build.get("timestamp")  # epoch ms of the build's start
    ended = started + millis if isinstance(started, int | float) and millis is not None else started
    name = p.get("display_name") or p.get("name") or ""
    return Mapped(
        _clean(
            {
                "timestamp": iso(ended) or _now(),
                "type": "pipeline",
                "status": _JENKINS_STATUS.get(status, status.lower() or "unknown"),
                "project": name,
                "branch": branch,
                "commit": scm.get("commit"),
                "duration": seconds,
                "build_url": url or None,
                "description": f"{name} #{build.get('number')} {status or phase}",
            }
        ),
        delivery,
    )


PARSERS: dict[str, Callable[[Mapping[str, str], Any], Mapped | Ignored]] = {
    "github": github,
    "gitlab": gitlab,
    "jenkins": jenkins,
}
