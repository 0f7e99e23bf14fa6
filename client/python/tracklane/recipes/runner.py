"""Running a target step: key every step it needs, skip those in the cache, run the others in order.

The recipe's run (on the tracking server) is made when a step first needs it (``train``), or to
hold a failure card; the cards of the steps before it are logged to it then, and each later
step's card as it finishes. When ``train`` is cached its run is the recipe's run, so a re-run
that changes only ``evaluate``'s thresholds logs to the run that holds the model, as MLflow does.
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tracklane.exceptions import NotFound
from tracklane.recipes import graph
from tracklane.recipes.cache import CARD_FILE, Entry, StepCache
from tracklane.recipes.cards import Card
from tracklane.recipes.code import user_code
from tracklane.recipes.config import RecipeConfig
from tracklane.recipes.errors import RecipeConfigError, RecipeError, StepFailedError
from tracklane.recipes.keys import compute_keys
from tracklane.recipes.tracking import RecipeTracking

__all__ = ["Plan", "Runner", "StepOutcome"]

log = logging.getLogger("tracklane.recipes")


@dataclass(frozen=True)
class StepOutcome:
    """What happened to one step: ``cached``, ``ran`` or ``failed``."""

    step: str
    status: str
    seconds: float
    key: str


@dataclass
class Plan:
    """The steps a target needs, their keys, and the cache entries already there."""

    steps: list[str]
    keys: dict[str, str]
    hits: dict[str, Entry]
    extra: dict[str, Any] = field(default_factory=dict)


class Runner:
    """Executes one recipe under one profile."""

    def __init__(self, config: RecipeConfig, tracking_uri: str | None = None) -> None:
        self.config = config
        self.cache = StepCache(config.root)
        self.tracking = RecipeTracking.of(config, tracking_uri)
        self._run_id: str | None = None
        self._created_run = False
        self._pending: list[tuple[str, Path]] = []

    def check(self) -> None:
        """Everything that can be known wrong before a step runs (metrics, missing engines).

        Raises:
            RecipeConfigError: listing the problems.
        """
        from tracklane.recipes.metrics import check_metric_names
        from tracklane.recipes.steps import ingest, predict, train

        check_metric_names(self.config.schema)
        steps = self.config.schema.steps
        problems = [
            ingest.missing_engine(steps.ingest, "steps.ingest"),
            ingest.missing_engine(steps.ingest_scoring, "steps.ingest_scoring")
            if steps.ingest_scoring
            else None,
            train.missing_engine(self.config.schema),
            predict.missing_engine(steps.predict),
        ]
        found = [p for p in problems if p]
        if found:
            raise RecipeConfigError("; ".join(found))

    def plan(self, target: str, resolve_model: bool = True) -> Plan:
        """Keys of ``target`` and of what it depends on; which of them the cache holds."""
        steps = graph.closure(target)
        keyed = list(steps)
        if "predict" in steps:
            keyed = [*graph.closure(graph.DEFAULT_TARGET), *steps]
        keys = compute_keys(self.config, keyed, self.tracking.identity())
        extra: dict[str, Any] = {}
        if "predict" in steps and resolve_model:
            uri = self._scoring_model(keys)
            try:
                points_at = self.tracking.model_identity(uri)
            except NotFound as exc:
                raise RecipeError(
                    f"steps.predict: no model to score with at {uri} ({exc}): run the training recipe first "
                    "(tracklane recipes run), or set steps.predict.model_uri"
                ) from None
            extra["predict"] = {"model_uri": uri, "points_at": points_at}
            keys.update(compute_keys(self.config, steps, self.tracking.identity(), extra))
        hits = {s: e for s in keyed if (e := self.cache.get(s, keys[s])) is not None}
        return Plan(steps, keys, hits, extra)

    def _scoring_model(self, keys: dict[str, str]) -> str:
        registered = self.cache.get("register", keys["register"])
        if registered is not None and registered.meta.get("registered"):
            return str(registered.meta["model_uri"])
        predict = self.config.schema.steps.predict
        if predict is not None and predict.model_uri:
            return predict.model_uri
        registry = self.config.schema.model_registry
        if registry is None or not registry.model_name:
            raise RecipeConfigError(
                "steps.predict: give model_uri, or model_registry.model_name in the profile"
            )
        return f"models:/{registry.model_name}/latest"

    def run(self, target: str) -> list[StepOutcome]:
        """Runs ``target`` and what it needs that is not cached.

        Raises:
            StepFailedError: a step raised (its failure card is kept; earlier entries stay).
        """
        try:
            return self._run(target)
        finally:
            self.tracking.close()

    def _run(self, target: str) -> list[StepOutcome]:
        self.check()
        plan = self.plan(target)
        train = plan.hits.get("train")
        if train is not None:
            self._run_id = str(train.meta["run_id"])
        outcomes = []
        try:
            for step in plan.steps:
                hit = plan.hits.get(step)
                if hit is not None:
                    self.cache.mark_last(step, hit.key)
                    outcomes.append(StepOutcome(step, "cached", 0.0, hit.key))
                    log.info("%s: cached, skipped", step)
                    if self._run_id is None:
                        self._pending.append((step, hit.file(CARD_FILE)))
                    continue
                entry, seconds = self._execute(step, plan)
                plan.hits[step] = entry
                outcomes.append(StepOutcome(step, "ran", seconds, entry.key))
        except BaseException:
            if self._created_run and self._run_id is not None:
                self.tracking.fail_run(self._run_id)
            raise
        if self._created_run and self._run_id is not None:
            self.tracking.finish_run(self._run_id)
        return outcomes

    def _ensure_run(self) -> str:
        if self._run_id is None:
            self._run_id = self.tracking.create_run()
            self._created_run = True
            for step, card in self._pending:
                if card.is_file():
                    self.tracking.log_card(self._run_id, step, card)
            self._pending.clear()
        return self._run_id

    def _execute(self, step: str, plan: Plan) -> tuple[Entry, float]:
        from tracklane.recipes.steps import StepContext, runner_of

        spec = graph.STEPS[step]
        key = plan.keys[step]
        schema = self.config.schema
        card = Card(self.config.name, schema.template_name, self.config.profile, step, spec.description, key)
        tmp = self.cache.begin(step)
        inputs = {up: plan.hits[up] for up in spec.upstream}
        ctx = StepContext(
            self.config, step, key, tmp, inputs, card, self._ensure_run, plan.extra.get(step, {})
        )
        started = time.time()
        log.info("%s: running", step)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                with user_code(self.config.root):
                    facts = runner_of(step)(ctx)
            except Exception as exc:
                seconds = time.time() - started
                card.add_text("Traceback", traceback.format_exc())
                _add_warnings(card, caught)
                path = self.cache.fail(
                    step, tmp, card.render("FAILED", seconds, "miss (ran, failed)", started)
                )
                self._log_failure(step, path)
                raise StepFailedError(step, f"{type(exc).__name__}: {exc}", str(path)) from exc
        seconds = time.time() - started
        _add_warnings(card, caught)
        (tmp / CARD_FILE).write_text(card.render("SUCCEEDED", seconds, "miss (ran)", started), "utf-8")
        meta = {
            "step": step,
            "key": key,
            "started": started,
            "seconds": seconds,
            "profile": self.config.profile,
            **facts,
        }
        entry = self.cache.commit(step, key, tmp, meta)
        if self._run_id is not None:
            self.tracking.log_card(self._run_id, step, entry.file(CARD_FILE))
        else:
            self._pending.append((step, entry.file(CARD_FILE)))
        log.info("%s: done in %.2f s", step, seconds)
        return entry, seconds

    def _log_failure(self, step: str, card: Path) -> None:
        try:
            run_id = self._ensure_run()
            self.tracking.log_card(run_id, step, card)
        except Exception:  # the step's own error matters more than a card that could not be logged
            log.exception("could not log the failure card of %s", step)


def _add_warnings(card: Card, caught: list[warnings.WarningMessage]) -> None:
    if caught:
        lines = dict.fromkeys(
            f"{w.category.__name__}: {w.message} ({Path(w.filename).name}:{w.lineno})" for w in caught
        )
        card.add_text(f"Warnings ({len(caught)})", "\n".join(list(lines)[:50]))
