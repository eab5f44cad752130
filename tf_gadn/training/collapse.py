"""Collapse warnings: training that has stopped learning says so, by name, with the flags that usually fix it.

A stage declares what to watch (`Stage.WATCH`, a `Watch`); the training loop feeds every logged set of values to a
`CollapseMonitor`, which prints each symptom once per stage. Symptoms (each after a warm-up of WARMUP_FRACTION of the
steps, at least MIN_WARMUP_STEPS or half of a shorter run):
- a code is unused: its KL to the prior is below KL_FLOOR nats and not rising (a style table of many artists starts
  at the prior and grows slowly, which is not a collapse; the decoder ignoring a code is);
- the output no longer depends on the input: the spread of the generator's outputs over a batch is below
  SPREAD_FLOOR times the spread of the real images (one image drawn for every input);
- a classifier that should learn sits at chance (accuracy below CHANCE_FACTOR x 1/num_artists);
- the reconstruction stopped improving early: no 1% gain over the last PLATEAU_FRACTION of the run so far (at least
  the warm-up's length), before half of the steps are done.
A `StyleWatch` reads the --eval_every numbers instead: transfers that lose the target style they had earlier in the
run (style attribution, or without ground truth the feature network's artist accuracy on transfers, STYLE_DROP below
the run's best) are named too.
"""

from __future__ import annotations

import dataclasses

WARMUP_FRACTION = 0.25
MIN_WARMUP_STEPS = 200
KL_FLOOR = 0.5
SPREAD_FLOOR = (
    0.1  # a collapsed line-art run: 0.013-0.07; healthy runs: 0.19 and rising at the end of warm-up
)
CHANCE_FACTOR = 1.5
PLATEAU_FRACTION = 0.3
RISING = 1.5  # a KL this many times its value one warm-up length ago is still growing
# 4 standard deviations of attribution on the probe's 64 pairs at 90%; GADN's stage 1 trained 3x past the demo's
# budget fell from 94% (step 2000) to 78% (step 7000) and 66% (step 10000)
STYLE_DROP = 0.15

CODE_FIX = (
    "usually fixed by --generator_output=clip (a tanh output saturates on white images and its gradient "
    "dies), a lower --lambda_e_kl, or a lower learning rate"
)
CLASSIFIER_FIX = "usually fixed by a lower learning rate or more images per artist; check the labels (artists.json)"


@dataclasses.dataclass(frozen=True)
class Watch:
    """Names of tracked values a stage wants watched."""

    kl: tuple[str, ...] = ()
    output_spread: str | None = None
    learning_classifiers: tuple[str, ...] = ()
    reconstruction: str | None = None


class CollapseMonitor:
    def __init__(self, watch: Watch, stage_name: str, total_steps: int, num_artists: int):
        self.watch, self.stage_name, self.total_steps = watch, stage_name, total_steps
        self.chance = 1.0 / max(num_artists, 1)
        self.warmup = max(
            min(MIN_WARMUP_STEPS, total_steps // 2), int(WARMUP_FRACTION * total_steps)
        )
        self.history: list[tuple[int, float]] = []
        self.logged: dict[str, list[tuple[int, float]]] = {}
        self.reported: set[str] = set()

    def observe(self, step: int, values: dict[str, float]) -> list[str]:
        """New warnings for this step's logged values (the loop prints them)."""
        w = self.watch
        if w.reconstruction and w.reconstruction in values:
            self.history.append((step, values[w.reconstruction]))
        for name in w.kl:
            if name in values:
                self.logged.setdefault(name, []).append((step, values[name]))
        if step < self.warmup:
            return []
        found = {}
        for name in w.kl:
            if name in values and values[name] < KL_FLOOR and not self._rising(name, step):
                found[name] = (
                    f"{name}={values[name]:.3g} nats < {KL_FLOOR}: that code is unused, the generator "
                    f"ignores it; {CODE_FIX}"
                )
        if w.output_spread in values and values[w.output_spread] < SPREAD_FLOOR:
            found[w.output_spread] = (
                f"{w.output_spread}={values[w.output_spread]:.3g} < {SPREAD_FLOOR}: the "
                f"generator draws nearly the same image for every input; {CODE_FIX}"
            )
        for name in w.learning_classifiers:
            if name in values and values[name] < CHANCE_FACTOR * self.chance:
                found[name] = (
                    f"{name}={values[name]:.3g} is at chance ({self.chance:.3g}): the classifier is not "
                    f"learning; {CLASSIFIER_FIX}"
                )
        plateau = self._plateau(step)
        if plateau:
            found[w.reconstruction] = plateau
        new = []
        for key, message in found.items():
            if key not in self.reported:
                self.reported.add(key)
                new.append(f"[{self.stage_name}] WARNING at step {step}: {message}")
        return new

    def _rising(self, name: str, step: int) -> bool:
        """A KL well above its value one warm-up length ago (a 100-artist style table grows slowly from the prior)."""
        earlier = [v for s, v in self.logged[name] if s >= step - self.warmup]
        return bool(earlier) and self.logged[name][-1][1] > RISING * earlier[0]

    def _plateau(self, step: int) -> str | None:
        if not self.history or step > self.total_steps // 2:
            return None
        window_start = step - max(
            int(PLATEAU_FRACTION * step), self.warmup
        )  # short dips early are not plateaus
        before = [v for s, v in self.history if s <= window_start]
        recent = [v for s, v in self.history if s > window_start]
        if not before or not recent or min(recent) < 0.99 * min(before):
            return None
        return (
            f"{self.watch.reconstruction} stopped improving (best {min(before):.4g} by step {window_start}, "
            f"{min(recent):.4g} since); {CODE_FIX}"
        )


class StyleWatch:
    """Fed each --eval_every result: warns once when transfers lose the target style they carried earlier in the run.
    Measured on GADN's stage 1 run far past the demo's budget: reconstruction kept improving while the content code
    came to carry the style, so G drew the source artist whatever S(a') said (BUILD.md "Weight averaging")."""

    KEYS = ("style_attribution", "artist_accuracy_on_transfers")  # ground truth first

    def __init__(self, stage_name: str):
        self.stage_name = stage_name
        self.best: tuple[int, float] | None = None
        self.reported = False

    def observe(self, step: int, numbers: dict[str, float]) -> list[str]:
        key = next((k for k in self.KEYS if k in numbers), None)
        if key is None:
            return []
        value = numbers[key]
        if self.best is None or value > self.best[1]:
            self.best = (step, value)
        best_step, best = self.best
        if self.reported or best - value <= STYLE_DROP:
            return []
        self.reported = True
        return [
            f"[{self.stage_name}] WARNING at step {step}: {key}={value:.3g}, down from {best:.3g} at step "
            f"{best_step}: the transfers are losing the target style (the content code is taking it over and the "
            f"generator draws the source artist); in the runs measured more steps did not bring it back: stop this "
            f"stage near step {best_step} (its <stage>_steps flag)"
        ]
